"""One Redis client from the ``redis`` config section, shared by the cache, events and leases.

Like distribution v3 (go-redis ``UniversalOptions``): ``mastername`` selects Sentinel, several
``addrs`` without it a cluster, else one server at ``addr`` (2.x) or ``addrs[0]``. ``redis.tls``
is Go's: any of its files turns TLS on. Timeouts default to go-redis's (dial 5 s, read 3 s,
write = read) rather than redis-py's "wait for ever", so an unreachable Redis costs a request
seconds, never a hang. A full pool (``pool.maxactive``) makes a caller wait for a free
connection, as go-redis's does, where redis-py's would fail it (single server, cluster and
Sentinel alike).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from distribution.config import ConfigError, Redis, RedisTLS

DIAL_TIMEOUT = 5.0
READ_TIMEOUT = 3.0
#: go-redis retries a failed command 3 times, backing off 8 ms to 512 ms; redis-py's default
#: (1 s to 10 s) made a refused connection cost a request 3.5 s.
MAX_RETRIES = 3

log = logging.getLogger(__name__)


def check(config: Redis, key: str) -> None:
    """Start-up checks of a ``redis`` section: its addresses and its TLS files."""
    if not configured(config):
        return
    for i, addr in enumerate(config.addrs):
        _host_port(addr, f"{key}.addrs[{i}]")
    if config.addr and not config.addrs:
        _host_port(config.addr, f"{key}.addr")
    check_tls(config.tls, f"{key}.tls")


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
        options.pop("pool_timeout", None)
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


def tls_options(tls: RedisTLS) -> dict[str, Any]:
    """redis-py's TLS settings for Go's ``redis.tls``: the server is verified against every
    CA of ``rootcas`` and ``clientcas`` (else the system's), and the client certificate is
    sent when both ``certificate`` and ``key`` are set (Go 3.1 warns and goes on without it
    when only one is)."""
    options: dict[str, Any] = {"ssl": True}
    if tls.certificate and tls.key:
        options.update(ssl_certfile=tls.certificate, ssl_keyfile=tls.key)
    cas = [*tls.rootcas, *tls.clientcas]
    if cas:
        options["ssl_ca_data"] = "".join(_read_ca(path) for path in cas)
    return options


def check_tls(tls: RedisTLS, key: str = "redis.tls") -> None:
    """Load the files of ``redis.tls`` once at start-up: a bad one stops the server with its
    key named, rather than failing every connection to Redis."""
    if not tls.active:
        return
    import ssl

    if bool(tls.certificate) != bool(tls.key):
        log.warning(
            "redis TLS client certificate configuration is incomplete; both "
            "%(key)s.certificate and %(key)s.key must be set to enable mTLS, continuing "
            "without client certificates",
            {"key": key},
        )
    context = ssl.create_default_context()
    for name in ("rootcas", "clientcas"):
        for i, path in enumerate(getattr(tls, name)):
            try:
                context.load_verify_locations(cadata=_read_ca(path))
            except (OSError, ssl.SSLError, ValueError) as err:
                message = f"cannot load CAs from {path}: {err}"
                raise ConfigError(f"{key}.{name}[{i}]", message) from None
    if tls.certificate and tls.key:
        try:
            context.load_cert_chain(tls.certificate, tls.key)
        except (OSError, ssl.SSLError) as err:
            message = f"cannot load {tls.certificate} with {tls.key}: {err}"
            raise ConfigError(f"{key}.certificate", message) from None


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
    """Seconds a caller waits for a connection of a full pool: ``pooltimeout``, else
    go-redis's default, the read timeout plus a second."""
    return options.pop("pool_timeout", None) or options["socket_timeout"] + 1


def _options(config: Redis) -> dict[str, Any]:
    read = config.readtimeout or READ_TIMEOUT
    options: dict[str, Any] = {
        "db": config.db,
        "username": config.username or None,
        "password": config.password or None,
        "client_name": config.clientname or None,
        "socket_connect_timeout": config.dialtimeout or DIAL_TIMEOUT,
        "socket_timeout": max(read, config.writetimeout or read),
        "health_check_interval": 30,
        "retry": _retry(config),
    }
    if config.disableidentity:  # go-redis's DisableIdentity: no CLIENT SETINFO
        options.update(_no_identity())
    pool_size = config.poolsize or config.maxactiveconns or config.pool.maxactive
    if pool_size:
        options["max_connections"] = pool_size
        options["pool_timeout"] = config.pooltimeout
    if config.tls.active:
        options.update(tls_options(config.tls))
    return options


@functools.cache
def _no_identity() -> dict[str, None]:
    """What makes redis-py send no ``CLIENT SETINFO``: ``driver_info=None`` from redis-py 7 on."""
    import inspect

    import redis

    if "driver_info" in inspect.signature(redis.Redis.__init__).parameters:
        return {"driver_info": None}
    return {"lib_name": None, "lib_version": None}


def _read_ca(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as file:
        return file.read()


def _retry(config: Redis) -> Any:
    """go-redis's retries: ``maxretries`` 0 is the default (3) and -1 none; the backoff grows
    from ``minretrybackoff`` (8 ms) to ``maxretrybackoff`` (512 ms), -1 meaning none."""
    from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
    from redis.retry import Retry

    retries = MAX_RETRIES if config.maxretries == 0 else max(config.maxretries, 0)
    if config.minretrybackoff < 0 or config.maxretrybackoff < 0:
        return Retry(NoBackoff(), retries)
    cap = config.maxretrybackoff or 0.512
    base = config.minretrybackoff or 0.008
    return Retry(ExponentialWithJitterBackoff(cap=cap, base=base), retries)


def _host_port(addr: str, key: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or "/" in host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(key, f"{addr!r} is not host:port")
    return host.strip("[]") or "localhost", int(port)
