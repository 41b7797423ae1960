"""Pull-through cache mode (``proxy.remoteurl``): a read-only mirror of an upstream registry.

:func:`init_app` switches an application into the mode; :func:`check` refuses a bad
``proxy`` section at start-up. The expiry job is in :mod:`distribution.proxy.schedule` and
runs with the other maintenance jobs (:mod:`distribution.maintenance`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from distribution.config import ConfigError, Configuration

if TYPE_CHECKING:
    from flask import Flask


def enabled(config: Configuration) -> bool:
    return bool(config.proxy.remoteurl)


def expires(config: Configuration) -> bool:
    """Whether fetched content is scheduled for removal (``ttl`` 0 keeps it for ever)."""
    return enabled(config) and config.proxy.ttl > 0


def check(config: Configuration) -> None:
    """``proxy.remoteurl`` must be an http(s) URL with a host."""
    if not enabled(config):
        return
    parts = urlsplit(config.proxy.remoteurl or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "proxy.remoteurl", f"{config.proxy.remoteurl!r} is not an http or https URL"
        )
    if config.proxy.ttl < 0:
        raise ConfigError("proxy.ttl", "must not be negative")


def init_app(app: Flask, config: Configuration) -> None:
    """In proxy mode, answer reads through the cache and refuse writes; else do nothing."""
    if not enabled(config):
        return
    from distribution.api import context
    from distribution.proxy import views  # a mirror's HTTP client, loaded only in one
    from distribution.proxy.cache import PullThrough
    from distribution.proxy.upstream import Upstream

    proxy = config.proxy
    upstream = Upstream(proxy.remoteurl or "", proxy.username, proxy.password)
    registry = app.extensions[context.EXTENSION]
    app.extensions[views.EXTENSION] = PullThrough(registry, upstream, proxy.ttl)
    views.wrap(app.view_functions)
