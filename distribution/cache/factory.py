"""Build the configured blob descriptor cache (``storage.cache``)."""

from __future__ import annotations

import logging

from distribution import proxy, redisconn
from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE, BlobDescriptorCache
from distribution.cache.guard import GuardedCache
from distribution.cache.memory import DEFAULT_SIZE, InMemoryCache
from distribution.cache.redis import RedisCache
from distribution.config import ConfigError, Configuration
from distribution.retention.policy import parse as retention_settings

log = logging.getLogger("distribution.cache")

_KEY = "storage.cache.blobdescriptor"


def check(config: Configuration) -> None:
    """Raise :class:`ConfigError` for a cache that cannot work; ``serve`` runs it at start-up."""
    settings = config.storage.cache
    if settings.kind == "redis":
        if not redisconn.configured(config.redis):
            raise ConfigError(_KEY, "redis needs the redis section (redis.addr)")
        redisconn.connect(config.redis)  # checks the addresses; connects lazily


def from_config(config: Configuration) -> BlobDescriptorCache:
    """The configured cache, or ``NO_CACHE``; :class:`ConfigError` for an unusable config.

    An unknown name disables caching with a warning, as the Go registry does, so a config
    that starts Go starts us.
    """
    check(config)
    settings = config.storage.cache
    name = settings.kind
    deletes = config.storage.delete.enabled
    if not name:
        return NO_CACHE
    if name == "redis":
        if settings.blobdescriptorsize is not None:
            log.warning("blobdescriptorsize parameter is not supported with redis cache")
        kinds = frozenset({LAYERS} if deletes else {LAYERS, MANIFESTS})
        return GuardedCache(RedisCache(redisconn.connect(config.redis)), "redis", kinds)
    if name == "inmemory":
        if deletes:
            log.warning(
                "%s inmemory is not used while storage.delete.enabled is on: a delete on one "
                "worker or replica cannot clear the others' memory; use redis",
                _KEY,
            )
            return NO_CACHE
        if _deletes_in_background(config):
            log.warning(
                "%s inmemory is not used while maintenance deletes (storage.maintenance.gc or "
                "retention, the pull-through cache's expiry): it runs apart from the workers "
                "and cannot clear their memory; use redis",
                _KEY,
            )
            return NO_CACHE
        return GuardedCache(
            InMemoryCache(_size(settings.blobdescriptorsize)),
            "inmemory",
            frozenset({LAYERS, MANIFESTS}),
        )
    log.warning("unknown cache type %r, caching disabled", name)
    return NO_CACHE


def shared(config: Configuration) -> BlobDescriptorCache:
    """The cache every serving process reads (Redis), for a process that deletes and serves
    nothing, such as a collection; ``NO_CACHE`` without one (an in-process cache is each
    worker's own, out of reach) or when its config is unusable (the Go registry's commands
    read no cache at all)."""
    if config.storage.cache.kind != "redis":
        return NO_CACHE
    try:
        return from_config(config)
    except ConfigError:
        return NO_CACHE


def _deletes_in_background(config: Configuration) -> bool:
    """Whether a maintenance job deletes blobs or manifests while the registry serves (none
    runs in read-only mode)."""
    maintenance = config.storage.maintenance
    if maintenance.readonly.enabled:
        return False
    return maintenance.gc.enabled or retention_settings(config).enabled or proxy.expires(config)


def _size(configured: int | None) -> int | None:
    """Go's ``blobdescriptorsize``: 10000 when unset, no limit for 0 or less."""
    if configured is None:
        return DEFAULT_SIZE
    return configured if configured > 0 else None
