"""URLs the registry hands to clients (``Location``, ``Link``), as distribution builds them.

The base is ``http.host`` when configured; else the request's scheme and host as the client
saw them, which a TLS-terminating proxy reports as Go's ``NewURLBuilderFromRequest`` reads it:
the scheme from ``X-Forwarded-Proto``, else ``Forwarded: proto=``; the host from
``X-Forwarded-Host``, else ``Forwarded: host=``, else ``Host``; and, for a host without a port,
the port from ``X-Forwarded-Port``. (Go also takes ``Forwarded: for=``, the *client's* address,
as the host; that would send clients to themselves, so it is not copied.) Which peers may set
these headers is ``http.trustedproxies`` (distribution/proxyheaders.py). With
``http.relativeurls`` only the path is given.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import request, url_for

from distribution.api import context


def external_url(endpoint: str, **values: Any) -> str:
    """The URL of ``endpoint`` for the client: absolute unless ``http.relativeurls``.

    Go builds URLs from ``http.host`` alone, without ``http.prefix``, so a host whose path
    already ends with the prefix (``https://example.com/reg/``) is not given it again.
    """
    path = url_for(endpoint, **values)
    http = context.config().http
    if http.relativeurls:
        return path
    base = base_url(http.host)
    prefix = request.script_root
    if http.host and prefix and urlsplit(base).path.endswith(prefix):
        path = path.removeprefix(prefix)
    return base + path


def base_url(configured_host: str | None) -> str:
    """``scheme://host`` of the registry as the client reached it."""
    if configured_host:
        return configured_host.rstrip("/")
    headers = request.headers
    forwarded = parse_forwarded(headers.get("Forwarded", ""))
    scheme = _first(headers.get("X-Forwarded-Proto")) or forwarded.get("proto") or request.scheme
    host = _first(headers.get("X-Forwarded-Host")) or forwarded.get("host") or request.host
    return f"{scheme}://{with_port(host, _first(headers.get('X-Forwarded-Port')))}"


def parse_forwarded(header: str) -> dict[str, str]:
    """The parameters of the first element of an RFC 7239 ``Forwarded`` header, names in
    lower case, quotes removed; malformed pairs are skipped."""
    params: dict[str, str] = {}
    for pair in header.split(",", 1)[0].split(";"):
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            params.setdefault(name.strip().lower(), value.strip().strip('"'))
    return params


def with_port(host: str, forwarded_port: str) -> str:
    """``host``, given ``forwarded_port`` when it has no port of its own (and the port is a
    number); IPv6 literals bracketed."""
    name, port = split_host_port(host)
    if not port and forwarded_port.isdigit():
        port = forwarded_port
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if port else name


def split_host_port(host: str) -> tuple[str, str]:
    """``(name, port)`` of a Host value: ``[::1]:5000``, ``::1``, ``example.com:443``."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":")
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port
    return host, ""


def _first(header: str | None) -> str:
    """The first entry of a comma-separated header that proxies append to."""
    return header.split(",", 1)[0].strip() if header else ""
