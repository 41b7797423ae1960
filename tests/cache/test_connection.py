"""The Redis client ``redisconn.connect`` builds, against a real redis-server: pool and TLS."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff

from distribution import redisconn
from distribution.config import ConfigError, Redis, RedisPool, RedisTLS
from tests.conftest import free_port, make_certificate
from tests.redis_server import RedisServer, start_sentinel
from tests.tls.pki import Authority


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
def test_tls_verifies_the_server_with_ca_files(
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


@pytest.fixture
def mutual_tls_redis(tmp_path: Path) -> Iterator[tuple[RedisServer, int, dict[str, Path]]]:
    """A redis-server on TLS that asks for a client certificate of its client CA."""
    directory = tmp_path / "pki"
    server_ca = Authority.root("Redis Server CA")
    client_ca = Authority.root("Redis Client CA")
    cert, key = server_ca.issue("redis", directory)
    client_cert, client_key = client_ca.issue("client", directory, client=True)
    files = {
        "server_ca": server_ca.write_ca(directory / "server-ca.crt"),
        "other_ca": Authority.root("Unrelated CA").write_ca(directory / "other-ca.crt"),
        "client_cert": client_cert,
        "client_key": client_key,
    }
    tls_port = free_port()
    server = RedisServer(
        tmp_path / "redis-mtls",
        [
            *("--tls-port", str(tls_port), "--tls-auth-clients", "yes"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(client_ca.write_ca(directory / "client-ca.crt"))),
        ],
    ).start()
    yield server, tls_port, files
    server.stop()


@pytest.mark.parametrize("cas", ["rootcas", "clientcas"])
def test_gos_tls_keys_turn_tls_on_and_every_ca_counts(
    mutual_tls_redis: tuple[RedisServer, int, dict[str, Path]], cas: str
) -> None:
    """Go 3.1's ``rootcas`` (3.0: ``clientcas``) with a client certificate, no ``enabled``:
    the server's CA is the second file of the list."""
    server, tls_port, files = mutual_tls_redis
    tls = RedisTLS(
        certificate=str(files["client_cert"]),
        key=str(files["client_key"]),
        **{cas: (str(files["other_ca"]), str(files["server_ca"]))},
    )
    redisconn.check_tls(tls)
    client = redisconn.connect(Redis(addr=f"127.0.0.1:{tls_port}", maxretries=-1, tls=tls))
    client.set("over-mtls", b"yes")
    assert server.client().get("over-mtls") == b"yes"


def test_without_a_client_certificate_mutual_tls_fails(
    mutual_tls_redis: tuple[RedisServer, int, dict[str, Path]], caplog: pytest.LogCaptureFixture
) -> None:
    """Go 3.1: a certificate without its key is warned about, and TLS goes on without it."""
    _, tls_port, files = mutual_tls_redis
    tls = RedisTLS(certificate=str(files["client_cert"]), rootcas=(str(files["server_ca"]),))
    with caplog.at_level(logging.WARNING, logger="distribution.redisconn"):
        redisconn.check_tls(tls)
    assert caplog.messages == [
        "redis TLS client certificate configuration is incomplete; both "
        "redis.tls.certificate and redis.tls.key must be set to enable mTLS, continuing "
        "without client certificates"
    ]
    client = redisconn.connect(Redis(addr=f"127.0.0.1:{tls_port}", maxretries=-1, tls=tls))
    with pytest.raises(redis.ConnectionError):
        client.ping()


def test_bad_tls_files_stop_start_up_with_their_key(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path)
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("nothing here")
    with pytest.raises(ConfigError) as info:
        redisconn.check_tls(RedisTLS(rootcas=(str(cert), str(not_pem))))
    assert info.value.key == "redis.tls.rootcas[1]"
    with pytest.raises(ConfigError) as info:
        redisconn.check_tls(RedisTLS(clientcas=(str(tmp_path / "missing.pem"),)))
    assert info.value.key == "redis.tls.clientcas[0]"
    (tmp_path / "other").mkdir()
    other_key = make_certificate(tmp_path / "other")[1]
    with pytest.raises(ConfigError) as info:
        redisconn.check_tls(RedisTLS(certificate=str(cert), key=str(other_key)))
    assert info.value.key == "redis.tls.certificate"


def test_clientname_names_every_connection(redis_server: RedisServer) -> None:
    client = redisconn.connect(Redis(addr=redis_server.addr, clientname="registry-a"))
    client.ping()
    names = [entry["name"] for entry in redis_server.client().client_list()]
    assert "registry-a" in names


def test_pooltimeout_bounds_the_wait_for_a_free_connection(redis_server: RedisServer) -> None:
    client = redisconn.connect(
        Redis(addr=redis_server.addr, pool=RedisPool(maxactive=1), pooltimeout=0.3)
    )
    blocked = threading.Thread(target=client.blpop, args=("nothing", 2))
    blocked.start()
    time.sleep(0.2)
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError, match="No connection available"):
        client.ping()
    assert 0.25 < time.monotonic() - started < 1.5
    blocked.join()


@pytest.mark.parametrize(
    ("settings", "retries", "backoff"),
    [
        ({}, 3, (0.008, 0.512)),
        ({"maxretries": -1}, 0, (0.008, 0.512)),
        ({"minretrybackoff": 0.05, "maxretrybackoff": 2.0}, 3, (0.05, 2.0)),
        ({"minretrybackoff": -1e-9}, 3, None),
    ],
)
def test_retries_and_backoff_are_go_redis(
    settings: dict, retries: int, backoff: tuple[float, float] | None
) -> None:
    retry = redisconn.connect(Redis(addr="127.0.0.1:1", **settings)).get_retry()
    assert retry.get_retries() == retries
    if backoff is None:
        assert isinstance(retry._backoff, NoBackoff)
    else:
        assert (retry._backoff._base, retry._backoff._cap) == backoff


def test_disableidentity_sends_no_client_setinfo() -> None:
    """Redis 7.0 (Debian's) has no ``CLIENT SETINFO`` to observe: the connection settings show
    that none is sent."""
    client = redisconn.connect(Redis(addr="127.0.0.1:1", disableidentity=True))
    connection = client.connection_pool.make_connection()
    assert connection.driver_info is None
