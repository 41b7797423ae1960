"""Where the notification queues live in Redis: ``notifications.redis``, ``keyprefix``, and the
start-up warning when Redis may evict them (Go asks for ``allkeys-lru``; our queues hold events).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from distribution import maintenance, notifications
from distribution.config import parse
from distribution.notifications.dispatcher import Dispatcher
from distribution.storage.driver.inmemory import InMemoryDriver
from tests.conftest import make_app
from tests.notifications.test_app import push_image
from tests.redis_server import RedisServer

WAIT = 30.0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    main = RedisServer(tmp_path / "main").start()
    queues = RedisServer(tmp_path / "queues").start()
    yield main, queues
    main.stop()
    queues.stop()


def config(main: RedisServer, extra: str = "", main_extra: str = "") -> str:
    return f"""
version: 0.1
storage: {{inmemory: {{}}}}
http: {{secret: s}}
redis:
  addr: {main.addr}
{main_extra}
notifications:
  endpoints:
    - name: hook
      url: http://127.0.0.1:1/nothing-listens
      backoff: 1h
{extra}
"""


def stream_keys(server: RedisServer, timeout: float = WAIT) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        keys = sorted(server.client().keys("*notifications::*"))
        if keys:
            return keys
        time.sleep(0.05)
    return []


def push_once(text: str) -> None:
    """A push through the app; its outbox thread moves the events into Redis."""
    app = make_app(text)
    dispatcher: Dispatcher = app.extensions[notifications.EXTENSION]
    try:
        push_image(app.test_client(), "team/app", "v1")
        deadline = time.monotonic() + WAIT
        while (
            dispatcher.outbox is not None and len(dispatcher.outbox) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    finally:
        dispatcher.stop()


def test_queues_in_a_redis_of_their_own(servers: tuple[RedisServer, RedisServer]) -> None:
    main, queues = servers
    push_once(config(main, f"  redis:\n    addr: {queues.addr}\n    db: 3\n"))
    client = redis.Redis(host="127.0.0.1", port=queues.port, db=3)
    deadline = time.monotonic() + WAIT
    while client.xlen("notifications::hook::events") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.keys("*") == [b"notifications::hook::events"]
    assert client.xlen("notifications::hook::events") == 2  # the blob's push, the manifest's
    assert queues.client().keys("*") == []  # database 0
    assert main.client().keys("notifications::*") == []


def test_keyprefix_separates_deployments_sharing_a_database(
    servers: tuple[RedisServer, RedisServer],
) -> None:
    main, _ = servers
    push_once(config(main, main_extra="  keyprefix: 'staging:'"))
    push_once(config(main, main_extra="  keyprefix: 'prod:'"))
    keys = stream_keys(main)
    deadline = time.monotonic() + WAIT
    while len(keys) < 2 and time.monotonic() < deadline:
        keys = stream_keys(main)
    assert keys == [b"prod:notifications::hook::events", b"staging:notifications::hook::events"]
    lease = maintenance.make_lease(
        parse(config(main, main_extra="  keyprefix: 'prod:'"), {}), InMemoryDriver()
    )
    assert lease.acquire()
    assert main.client().exists("prod:maintenance::lease")


def test_an_evicting_redis_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lru = RedisServer(
        tmp_path / "lru", ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]
    ).start()
    safe = RedisServer(tmp_path / "safe", ["--maxmemory", "64mb"]).start()
    try:
        with caplog.at_level(logging.WARNING, logger="distribution.notifications"):
            notifications.check_eviction(parse(config(lru), {}))
        assert caplog.messages == [
            "redis: maxmemory-policy allkeys-lru may evict the notification queues "
            "(notifications::<name>::events) and lose their events; give them a Redis database "
            "or server without eviction with notifications.redis (see the README's "
            "Notifications section)"
        ]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="distribution.notifications"):
            # The way out: the queues in a Redis that does not evict.
            notifications.check_eviction(
                parse(config(lru, f"  redis:\n    addr: {safe.addr}\n"), {})
            )
            # Without endpoints there is nothing to lose.
            notifications.check_eviction(
                parse(f"version: 0.1\nstorage: inmemory\nredis: {{addr: {lru.addr}}}\n", {})
            )
        assert caplog.messages == []
    finally:
        lru.stop()
        safe.stop()
