"""The Redis client ``redisconn.connect`` builds, against a real redis-server: pool and TLS."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distribution import redisconn
from distribution.config import Redis, RedisPool, RedisTLS
from tests.conftest import free_port, make_certificate
from tests.redis_server import RedisServer, start_sentinel


def test_a_full_pool_waits_for_a_free_connection(redis_server: RedisServer) -> None:
    """As go-redis's pool does; redis-py's default pool would fail the second caller at once."""
    client = redisconn.connect(Redis(addr=redis_server.addr, pool=RedisPool(maxactive=1)))
    _second_caller_waits(client)


def test_a_full_sentinel_pool_waits_too(redis_server: RedisServer, tmp_path: Path) -> None:
    sentinel = start_sentinel(tmp_path / "sentinel", redis_server, "main")
    try:
        config = Redis(addrs=[sentinel.addr], mastername="main", pool=RedisPool(maxactive=1))
        _second_caller_waits(redisconn.connect(config))
    finally:
        sentinel.stop()


def _second_caller_waits(client: redis.Redis) -> None:
    blocked = threading.Thread(target=client.blpop, args=("nothing", 1))
    blocked.start()
    time.sleep(0.2)  # the only connection is now inside BLPOP
    started = time.monotonic()
    assert client.ping() is True
    assert time.monotonic() - started > 0.3  # it waited for BLPOP to hand the connection back
    blocked.join()


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, int, Path]]:
    """A redis-server with a TLS port besides its plain one (the fixture's readiness probe)."""
    cert, key = make_certificate(tmp_path)
    tls_port = free_port()
    server = RedisServer(
        tmp_path / "redis-tls",
        [
            *("--tls-port", str(tls_port), "--tls-auth-clients", "no"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(cert)),
        ],
    ).start()
    yield server, tls_port, cert
    server.stop()


@pytest.mark.parametrize("pool", [RedisPool(), RedisPool(maxactive=4)], ids=["default", "sized"])
def test_tls_verifies_the_server_with_clientcas(
    tls_redis: tuple[RedisServer, int, Path], pool: RedisPool
) -> None:
    server, tls_port, cert = tls_redis
    settings = Redis(
        addr=f"127.0.0.1:{tls_port}",
        pool=pool,
        dialtimeout=2.0,
        maxretries=-1,
        tls=RedisTLS(enabled=True, clientcas=(str(cert),)),
    )
    client = redisconn.connect(settings)
    client.set("over-tls", b"yes")
    assert server.client().get("over-tls") == b"yes"
    untrusting = redisconn.connect(
        Redis(
            addr=settings.addr,
            pool=pool,
            dialtimeout=2.0,
            maxretries=-1,
            tls=RedisTLS(enabled=True),
        )
    )
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        untrusting.ping()
