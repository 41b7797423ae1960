"""The Go registry's configuration keys this registry reads but does not act on.

Every key of distribution's ``config.yml`` (2.8 and 3.x) is honoured as Go honours it, or named
here: a key whose absence of effect is harmless gets one warning line at start-up when it is
set; one whose absence would change what the registry does for its users stops start-up with
one line. Keys refused elsewhere (a storage driver we do not have, ``clientauth:
require-any-client-cert``) are refused by their own module; ``tests/test_config_parity.py``
holds the full table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distribution.config import ConfigError, Configuration, Redis

log = logging.getLogger(__name__)

Getter = Callable[[Configuration], Any]


@dataclass(frozen=True)
class Unsupported:
    """A key read and not acted on: ``value(config)`` is truthy when the key is set."""

    key: str
    reason: str
    value: Getter
    refused: bool = False

    @property
    def message(self) -> str:
        if self.refused:
            return f"not supported: {self.reason}"
        return f"{self.key} is not supported and is ignored: {self.reason}"


def _redis(prefix: str, section: Callable[[Configuration], Redis | None]) -> list[Unsupported]:
    """The go-redis options redis-py has no counterpart for, in ``prefix`` (a redis section)."""

    def get(attribute: str, nested: str | None = None) -> Getter:
        def value(config: Configuration) -> Any:
            settings = section(config)
            if settings is None:
                return None
            found = getattr(settings, attribute)
            return getattr(found, nested) if nested else found

        return value

    idle = "idle connections stay open until they fail (redis-py does not prune them)"
    resp2 = "the registry speaks RESP2 to Redis"
    primaries = "commands go to the cluster's primaries"
    return [
        Unsupported(f"{prefix}.pool.maxidle", idle, get("pool", "maxidle")),
        Unsupported(f"{prefix}.pool.idletimeout", idle, get("pool", "idletimeout")),
        Unsupported(f"{prefix}.minidleconns", idle, get("minidleconns")),
        Unsupported(f"{prefix}.maxidleconns", idle, get("maxidleconns")),
        Unsupported(f"{prefix}.connmaxidletime", idle, get("connmaxidletime")),
        Unsupported(
            f"{prefix}.connmaxlifetime",
            "connections are kept until they fail (redis-py does not recycle them)",
            get("connmaxlifetime"),
        ),
        Unsupported(
            f"{prefix}.contexttimeoutenabled",
            "every command is bounded by readtimeout and writetimeout already",
            get("contexttimeoutenabled"),
        ),
        Unsupported(
            f"{prefix}.poolfifo",
            "the last connection returned to the pool is used first",
            get("poolfifo"),
        ),
        Unsupported(
            f"{prefix}.protocol",
            resp2,
            lambda config: get("protocol")(config) not in (None, 0, 2),
        ),
        Unsupported(f"{prefix}.unstableresp3", resp2, get("unstableresp3")),
        Unsupported(
            f"{prefix}.maxredirects",
            "redis-py's cluster client follows MOVED and ASK redirects itself",
            get("maxredirects"),
        ),
        Unsupported(f"{prefix}.readonly", primaries, get("readonly")),
        Unsupported(f"{prefix}.routebylatency", primaries, get("routebylatency")),
        Unsupported(f"{prefix}.routerandomly", primaries, get("routerandomly")),
        Unsupported(
            f"{prefix}.identitysuffix",
            "redis-py names itself in CLIENT SETINFO",
            get("identitysuffix"),
        ),
    ]


def _parameter(driver: str, name: str) -> Getter:
    def value(config: Configuration) -> Any:
        if config.storage.driver != driver:
            return None
        return config.storage.parameters.get(name)

    return value


BOUNDED = "concurrent calls are bounded by http.workers and http.threads instead"

UNSUPPORTED: tuple[Unsupported, ...] = (
    Unsupported(
        "http.h2c.enabled",
        "this registry serves HTTP/1.1 only (no HTTP/2, in cleartext or over TLS)",
        lambda config: config.http.h2c.enabled,
    ),
    Unsupported("storage.filesystem.maxthreads", BOUNDED, _parameter("filesystem", "maxthreads")),
    Unsupported("storage.gcs.maxconcurrency", BOUNDED, _parameter("gcs", "maxconcurrency")),
    Unsupported(
        "proxy.exec",
        "credential helpers are not run here; give proxy.username and proxy.password",
        lambda config: config.proxy.exec is not None,
        refused=True,
    ),
    Unsupported(
        "proxy.cachewritetimeout",
        "a blob pulled through is stored as it streams to the client, never after",
        lambda config: config.proxy.cachewritetimeout is not None,
    ),
    Unsupported(
        "reporting.bugsnag",
        "errors are not reported to Bugsnag",
        lambda config: config.reporting.bugsnag.apikey,
    ),
    Unsupported(
        "reporting.newrelic",
        "requests are not reported to New Relic",
        lambda config: config.reporting.newrelic.licensekey,
    ),
    Unsupported(
        "compatibility.schema1.enabled",
        "schema 1 manifests cannot be pushed here (stored ones are served as stored)",
        lambda config: config.compatibility.schema1.enabled,
    ),
    Unsupported(
        "compatibility.schema1.signingkeyfile",
        "schema 1 manifests are never signed here",
        lambda config: config.compatibility.schema1.signingkeyfile,
    ),
    *_redis("redis", lambda config: config.redis),
    *_redis("notifications.redis", lambda config: config.notifications.redis),
)


def found(config: Configuration) -> list[Unsupported]:
    """The unsupported keys ``config`` sets, in table order."""
    return [entry for entry in UNSUPPORTED if entry.value(config)]


def check(config: Configuration) -> None:
    """Stop start-up (:class:`ConfigError`) on a refused key; warn once about each ignored one."""
    for entry in found(config):
        if entry.refused:
            raise ConfigError(entry.key, entry.message)
    for entry in found(config):
        log.warning("%s", entry.message)
