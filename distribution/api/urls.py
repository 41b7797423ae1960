"""URLs the registry hands to clients (``Location``, ``Link``), as distribution builds them.

The base is ``http.host`` when configured; else the request's scheme and host, overridden by
``X-Forwarded-Proto`` and ``X-Forwarded-Host`` from a TLS-terminating proxy. With
``http.relativeurls`` only the path is given.
"""

from __future__ import annotations

from typing import Any

from flask import request, url_for

from distribution.api import context


def external_url(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint`` for the client: absolute unless ``http.relativeurls``."""
    path = url_for(endpoint, **values)
    http = context.config().http
    if http.relativeurls:
        return path
    return base_url(http.host) + path


def base_url(configured_host: str | None) -> str:
    """``scheme://host`` of the registry as the client reached it."""
    if configured_host:
        return configured_host.rstrip("/")
    scheme = _first(request.headers.get("X-Forwarded-Proto")) or request.scheme
    host = _first(request.headers.get("X-Forwarded-Host")) or request.host
    return f"{scheme}://{host}"


def _first(header: str | None) -> str:
    """The first entry of a comma-separated header that proxies append to."""
    return header.split(",", 1)[0].strip() if header else ""
