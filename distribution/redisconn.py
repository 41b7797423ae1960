"""One Redis client from the ``redis`` config section, shared by the cache, events and leases.

Like distribution v3 (go-redis ``UniversalOptions``): ``mastername`` selects Sentinel, several
``addrs`` without it a cluster, else one server at ``addr`` (2.x) or ``addrs[0]``. Timeouts
default to go-redis's (dial 5 s, read 3 s, write = read) rather than redis-py's "wait for ever",
so an unreachable Redis costs a request seconds, never a hang. A full pool (``pool.maxactive``)
makes a caller wait for a free connection, as go-redis's does, where redis-py's would fail it
(single server, cluster and Sentinel alike).
"""

from __future__ import annotations

import functools
from typing import Any

from distribution.config import ConfigError, Redis

DIAL_TIMEOUT = 5.0
READ_TIMEOUT = 3.0
#: go-redis retries a failed command 3 times, backing off 8 ms to 512 ms; redis-py's default
#: (1 s to 10 s) made a refused connection cost a request 3.5 s.
MAX_RETRIES = 3


def configured(config: Redis) -> bool:
    """Whether the config names a Redis at all."""
    return bool(config.addr or config.addrs)


def connect(config: Redis, blocking: float = 0.0) -> Any:
    """A client for ``config``; connects lazily, so an unreachable Redis does not fail here.

    ``blocking`` is the longest a command of the caller's waits in Redis (``XREADGROUP
    BLOCK``): the read timeout is raised above it, so a short ``readtimeout`` does not cut
    off a command that is only waiting as it was told to.
    """
    import redis  # only deployments with Redis load its client
    from redis.cluster import ClusterNode, RedisCluster
    from redis.sentinel import Sentinel

    addrs = list(config.addrs) or [config.addr or ""]
    nodes = [_host_port(addr, "redis.addrs" if config.addrs else "redis.addr") for addr in addrs]
    options = _options(config)
    if blocking:
        options["socket_timeout"] = max(options["socket_timeout"], blocking + 1.0)
    if config.mastername:
        sentinel_options = {
            key: value
            for key, value in (
                ("username", config.sentinelusername),
                ("password", config.sentinelpassword),
                ("socket_connect_timeout", options["socket_connect_timeout"]),
                ("socket_timeout", options["socket_timeout"]),
            )
            if value
        }
        sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_options)
        if "max_connections" in options:
            options["connection_pool_class"] = _blocking_sentinel_pool()
            options["timeout"] = _pool_timeout(options)
        return sentinel.master_for(config.mastername, **options)
    if len(nodes) > 1:
        options.pop("db")
        startup = [ClusterNode(host, port) for host, port in nodes]
        if "max_connections" in options:
            options["connection_pool_class"] = redis.BlockingConnectionPool
        return RedisCluster(startup_nodes=startup, **options)
    host, port = nodes[0]
    if "max_connections" not in options:
        return redis.Redis(host=host, port=port, **options)
    if options.pop("ssl", False):
        options["connection_class"] = redis.SSLConnection
    pool = redis.BlockingConnectionPool(
        host=host, port=port, timeout=_pool_timeout(options), **options
    )
    return redis.Redis(connection_pool=pool)


@functools.cache
def _blocking_sentinel_pool() -> type:
    """The master's connections found through Sentinel, in a pool that makes a caller wait
    for a free connection when full (redis-py has no such Sentinel pool of its own)."""
    import redis
    from redis.sentinel import SentinelConnectionPool

    class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
        pass

    return BlockingSentinelPool


def _pool_timeout(options: dict[str, Any]) -> float:
    """Seconds a caller waits for a connection of a full pool: go-redis's ``PoolTimeout``
    default, the read timeout plus a second."""
    return options["socket_timeout"] + 1


def _options(config: Redis) -> dict[str, Any]:
    read = config.readtimeout or READ_TIMEOUT
    options: dict[str, Any] = {
        "db": config.db,
        "username": config.username or None,
        "password": config.password or None,
        "socket_connect_timeout": config.dialtimeout or DIAL_TIMEOUT,
        "socket_timeout": max(read, config.writetimeout or read),
        "health_check_interval": 30,
        "retry": _retry(config.maxretries),
    }
    pool_size = config.poolsize or config.maxactiveconns or config.pool.maxactive
    if pool_size:
        options["max_connections"] = pool_size
    if config.tls.enabled:
        options["ssl"] = True
        if config.tls.certificate:
            options["ssl_certfile"] = config.tls.certificate
            options["ssl_keyfile"] = config.tls.key
        if config.tls.clientcas:
            options["ssl_ca_certs"] = config.tls.clientcas[0]
    return options


def _retry(maxretries: int) -> Any:
    """go-redis's ``MaxRetries``: 0 is the default (3), -1 disables retries."""
    retries = MAX_RETRIES if maxretries == 0 else max(maxretries, 0)
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.retry import Retry

    return Retry(ExponentialWithJitterBackoff(cap=0.512, base=0.008), retries)


def _host_port(addr: str, key: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"{addr!r} is not host:port")
    return host.strip("[]") or "localhost", int(port)
