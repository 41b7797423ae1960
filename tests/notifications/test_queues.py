"""The Redis queue against a real redis-server: outbox, delivery, acknowledgement, takeover."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distribution import redisconn
from distribution.config import Redis
from distribution.notifications.queues import GROUP, MemoryQueue, Outbox, RedisQueue, stream_key
from tests.redis_server import RedisServer

WAIT = 30.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def wait_until(check, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"not true after {timeout}s")


class Consumer:
    """A queue's consume loop in a thread, recording what it was asked to deliver."""

    def __init__(self, queue, accept: bool = True) -> None:
        self.delivered: list[bytes] = []
        self.accept = accept
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=queue.consume, args=(self.deliver, self.stopping))
        self.thread.start()

    def deliver(self, event: bytes, heartbeat) -> bool:
        heartbeat()
        self.delivered.append(event)
        return self.accept

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(WAIT)


def client_for(server: RedisServer):
    return redisconn.connect(Redis(addr=server.addr))


def test_memory_queue_keeps_the_head_until_delivered() -> None:
    queue = MemoryQueue()
    attempts: list[bytes] = []

    def deliver(event: bytes, heartbeat) -> bool:
        attempts.append(event)
        return len(attempts) > 1  # the first attempt fails

    stopping = threading.Event()
    thread = threading.Thread(target=queue.consume, args=(deliver, stopping))
    thread.start()
    queue.put(b"a")
    queue.put(b"b")
    wait_until(lambda: len(queue) == 0)
    stopping.set()
    thread.join(WAIT)
    assert attempts == [b"a", b"a", b"b"]


def test_redis_events_leave_the_stream_once_delivered(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    outbox = Outbox(client)
    queue = RedisQueue(client, outbox, "hook", timeout=1.0)
    stopping = threading.Event()
    pump = threading.Thread(target=outbox.run, args=(stopping,))
    pump.start()
    consumer = Consumer(queue)
    try:
        for i in range(5):
            queue.put(b"event-%d" % i)
        wait_until(lambda: len(consumer.delivered) == 5)
        wait_until(lambda: redis_server.client().xlen(stream_key("hook")) == 0)
        assert consumer.delivered == [b"event-%d" % i for i in range(5)]
        assert redis_server.client().xpending(stream_key("hook"), GROUP)["pending"] == 0
    finally:
        consumer.stop()
        stopping.set()
        pump.join(WAIT)


def test_an_event_held_by_a_dead_consumer_is_taken_over(redis_server: RedisServer) -> None:
    raw = redis_server.client()
    key = stream_key("hook")
    raw.xgroup_create(key, GROUP, id="0", mkstream=True)
    raw.xadd(key, {"event": b"orphan"})
    raw.xadd(key, {"event": b"fresh"})
    raw.xreadgroup(GROUP, "dead-worker", {key: ">"}, count=1)  # taken, never acknowledged

    client = client_for(redis_server)
    queue = RedisQueue(client, Outbox(client), "hook", timeout=1.0)
    queue.stale_ms = 300
    consumer = Consumer(queue)
    try:
        wait_until(lambda: len(consumer.delivered) == 2)
        wait_until(lambda: raw.xlen(key) == 0)
        assert sorted(consumer.delivered) == [b"fresh", b"orphan"]
    finally:
        consumer.stop()


def test_a_touched_event_is_not_taken_over(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    key = stream_key("hook")
    outbox = Outbox(client)
    holder = RedisQueue(client, outbox, "hook", timeout=1.0)
    holder.stale_ms = 1500
    holder.put(b"slow")
    outbox.send_batch()
    busy = threading.Event()

    def slow(event: bytes, heartbeat) -> bool:
        busy.set()
        for _ in range(30):  # 3 s, touching the event every 0.1 s
            heartbeat()
            time.sleep(0.1)
        return True

    stopping = threading.Event()
    thread = threading.Thread(target=holder.consume, args=(slow, stopping))
    thread.start()
    assert busy.wait(WAIT)
    other = RedisQueue(client, outbox, "hook", timeout=1.0)
    other.stale_ms = 1500
    rival = Consumer(other)
    try:
        wait_until(lambda: redis_server.client().xlen(key) == 0)
        assert rival.delivered == []
    finally:
        rival.stop()
        stopping.set()
        thread.join(WAIT)


def test_outbox_keeps_events_while_redis_is_down(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    outbox = Outbox(client)
    redis_server.stop()
    outbox.put(stream_key("hook"), b"kept")
    stopping = threading.Event()
    pump = threading.Thread(target=outbox.run, args=(stopping,))
    pump.start()
    try:
        time.sleep(0.5)
        assert len(outbox) == 1
        redis_server.start()
        wait_until(lambda: len(outbox) == 0)
        entries = redis_server.client().xrange(stream_key("hook"))
        assert [fields[b"event"] for _, fields in entries] == [b"kept"]
    finally:
        stopping.set()
        pump.join(WAIT)


def test_outbox_is_bounded_while_redis_is_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = Outbox(client_for(redis_server), limit=3)
    redis_server.stop()
    for i in range(5):
        outbox.put(stream_key("hook"), b"%d" % i)
    assert (len(outbox), outbox.dropped) == (3, 2)
    redis_server.start()
    stopping = threading.Event()
    pump = threading.Thread(target=outbox.run, args=(stopping,))
    pump.start()
    try:
        wait_until(lambda: len(outbox) == 0 and outbox.dropped == 0)
        entries = redis_server.client().xrange(stream_key("hook"))
        assert [fields[b"event"] for _, fields in entries] == [b"0", b"1", b"2"]
        assert "2 events were dropped while Redis was away" in caplog.text
    finally:
        stopping.set()
        pump.join(WAIT)


def test_flush_reports_what_it_could_not_hand_over(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    outbox = Outbox(client)
    outbox.put(stream_key("hook"), b"one")
    assert outbox.flush(5.0) is True
    assert redis_server.client().xlen(stream_key("hook")) == 1
    redis_server.stop()
    outbox.put(stream_key("hook"), b"two")
    assert outbox.flush(0.5) is False


def test_a_stopping_consumer_releases_its_event_at_once(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    outbox = Outbox(client)
    first = RedisQueue(client, outbox, "hook", timeout=1.0)
    first.put(b"handed-over")
    outbox.send_batch()
    refusing = Consumer(first, accept=False)
    wait_until(lambda: refusing.delivered)
    refusing.stop()
    second = RedisQueue(client, outbox, "hook", timeout=1.0)
    assert second.stale_ms >= 10_000  # only the release lets it take the event this soon
    taker = Consumer(second)
    try:
        wait_until(lambda: taker.delivered == [b"handed-over"], timeout=5)
    finally:
        taker.stop()
