"""The guarded cache against a real Redis that is stopped, flushed and restarted mid-run."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from distribution import metrics, redisconn
from distribution.cache.base import LAYERS, MANIFESTS
from distribution.cache.guard import GuardedCache
from distribution.cache.redis import RedisCache
from distribution.config import Redis
from distribution.digest import Digest
from distribution.storage.blobs import Descriptor
from tests.redis_server import RedisServer

LAYER = Digest.of(b"layer")
DESCRIPTOR = Descriptor(LAYER, 5)
BACKOFF = 0.3


@pytest.fixture
def guarded(redis_cache: RedisCache) -> GuardedCache:
    return GuardedCache(redis_cache, "redis", frozenset({LAYERS}), backoff=BACKOFF)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "distribution.cache"]


def test_hits_and_misses_are_counted(guarded: GuardedCache) -> None:
    assert guarded.stat(LAYER, "r") is None
    guarded.set(LAYER, DESCRIPTOR, "r")
    assert guarded.stat(LAYER, "r") == DESCRIPTOR
    assert (guarded.hits, guarded.misses) == (1, 1)


def test_uncached_kinds_are_neither_asked_nor_set(
    guarded: GuardedCache, redis_server: RedisServer
) -> None:
    guarded.set(LAYER, DESCRIPTOR, "r", MANIFESTS)
    assert redis_server.client().keys() == []
    assert guarded.stat(LAYER, "r", MANIFESTS) is None


def test_stopped_redis_is_a_miss_logged_once_then_recovered_once(
    guarded: GuardedCache, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "distribution.cache")
    guarded.set(LAYER, DESCRIPTOR, "r")
    redis_server.stop()
    for _ in range(50):
        assert guarded.stat(LAYER, "r") is None
        guarded.set(LAYER, DESCRIPTOR, "r")
    assert not guarded.available
    logged = messages(caplog)
    assert len(logged) == 1
    assert "unavailable" in logged[0]
    redis_server.start()  # empty: no persistence
    time.sleep(BACKOFF + 0.1)
    assert guarded.stat(LAYER, "r") is None  # a miss, but Redis answered
    assert guarded.available
    guarded.set(LAYER, DESCRIPTOR, "r")
    assert guarded.stat(LAYER, "r") == DESCRIPTOR
    assert messages(caplog)[1:] == ["blob descriptor cache (redis) is back"]


def test_backoff_spares_calls_to_a_dead_redis(
    guarded: GuardedCache, redis_server: RedisServer
) -> None:
    redis_server.stop()
    assert guarded.stat(LAYER, "r") is None
    redis_server.start()
    guarded.set(LAYER, DESCRIPTOR, "r")  # within the back-off: not sent
    assert redis_server.client().keys() == []
    time.sleep(BACKOFF + 0.1)
    guarded.set(LAYER, DESCRIPTOR, "r")
    assert guarded.stat(LAYER, "r") == DESCRIPTOR


def test_flushed_redis_is_a_miss_then_refilled(
    guarded: GuardedCache, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    guarded.set(LAYER, DESCRIPTOR, "r")
    redis_server.client().flushall()
    assert guarded.stat(LAYER, "r") is None
    guarded.set(LAYER, DESCRIPTOR, "r")
    assert guarded.stat(LAYER, "r") == DESCRIPTOR
    assert messages(caplog) == []


def test_a_clear_missed_while_redis_was_away_is_replayed(
    guarded: GuardedCache, redis_server: RedisServer
) -> None:
    """Redis returns with its data (saved at shutdown): the stale entry is cleared first."""
    guarded.set(LAYER, DESCRIPTOR, "r")
    redis_server.client().shutdown(save=True)
    redis_server.stop()
    guarded.clear(LAYER, "r")  # the delete happened; Redis could not hear of it
    redis_server.start()
    assert redis_server.client().sismember("repository::r::blobs", str(LAYER))  # stale
    time.sleep(BACKOFF + 0.1)
    assert guarded.stat(LAYER, "r") is None
    assert not redis_server.client().sismember("repository::r::blobs", str(LAYER))


def test_a_dead_redis_is_not_dialled_again_within_the_backoff() -> None:
    """A listener that hangs up on every connection: each dial attempt is counted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = 0

    def hang_up() -> None:
        nonlocal accepted
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted += 1
            connection.close()

    threading.Thread(target=hang_up, daemon=True).start()
    port = listener.getsockname()[1]
    client = redisconn.connect(Redis(addr=f"127.0.0.1:{port}", dialtimeout=1.0))
    guarded = GuardedCache(RedisCache(client), "redis", frozenset({LAYERS}), backoff=600)
    assert guarded.stat(LAYER, "r") is None
    dialled = accepted
    for _ in range(200):
        assert guarded.stat(LAYER, "r") is None
        guarded.set(LAYER, DESCRIPTOR, "r")
    listener.close()
    assert guarded.misses == 201
    assert dialled >= 1
    assert accepted == dialled


@pytest.mark.usefixtures("recorded_metrics")
def test_lookups_are_counted_in_the_go_metrics(
    guarded: GuardedCache, redis_server: RedisServer
) -> None:
    def count(name: str) -> float:
        exposition = metrics.exposition()[0].decode()
        for family in text_string_to_metric_families(exposition):
            for sample in family.samples:
                if sample.name == f"registry_storage_cache_{name}_total":
                    return sample.value
        return 0.0

    before = {name: count(name) for name in ("requests", "hits", "misses", "errors")}
    guarded.stat(LAYER, "r")
    guarded.set(LAYER, DESCRIPTOR, "r")
    guarded.stat(LAYER, "r")
    redis_server.stop()
    guarded.stat(LAYER, "r")
    after = {name: count(name) - before[name] for name in before}
    assert after == {"requests": 3, "hits": 1, "misses": 1, "errors": 1}
