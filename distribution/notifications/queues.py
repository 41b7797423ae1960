"""Where events wait for their endpoint: in memory like Go, or in Redis, durable and shared.

:class:`MemoryQueue` is Go's ``eventQueue``: unbounded, per process, lost when the process
ends. :class:`RedisQueue` keeps each endpoint's events in a Redis stream that every worker of
every replica consumes through one consumer group:

* a request never talks to Redis: it appends to this process's :class:`Outbox`, whose thread
  adds the events to the streams (``XADD``) within milliseconds, keeps them (up to
  :data:`OUTBOX_LIMIT`) while Redis is unreachable, and is flushed when a worker exits;
* a consumer takes one event (``XREADGROUP``), delivers it, and only then ``XACK``s and
  ``XDEL``s it: an event leaves Redis after its endpoint accepted it (at least once);
* while it retries, the consumer touches the event (``XCLAIM ... JUSTID``) so that nobody
  takes it over; an event that nobody touched for :func:`stale_after` seconds (its worker
  was killed) is taken over by any live consumer (``XAUTOCLAIM``). A worker that exits
  normally releases its event at once (``XCLAIM ... IDLE``), for the next consumer to take.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: Consumer group of every stream (our own keys; the Go registry keeps no events in Redis).
GROUP = "registry"
#: The stream of an endpoint's events.
KEY_FORMAT = "notifications::{name}::events"
#: Milliseconds a consumer blocks waiting for a new event (its client reads for longer).
BLOCK_MS = 1000
#: Seconds between looks for events whose consumer died.
RECLAIM_EVERY = 2.0
#: Seconds between removals of long-gone consumers from the group.
FORGET_EVERY = 600.0
#: A consumer with nothing pending and idle this long (milliseconds) is removed from the group.
FORGET_IDLE_MS = 3600 * 1000
#: Seconds to wait after Redis failed before trying again.
REDIS_RETRY = 1.0
#: Events added to Redis in one round trip.
OUTBOX_BATCH = 100
#: Events a process keeps while Redis is unreachable; newer ones are dropped (and counted)
#: rather than let the worker's memory grow without bound.
OUTBOX_LIMIT = 100_000

#: ``deliver(event, heartbeat) -> accepted``; False only when the dispatcher stops.
Deliver = Callable[[bytes, Callable[[], None]], bool]


def stream_key(endpoint_name: str, prefix: str = "") -> str:
    return prefix + KEY_FORMAT.format(name=endpoint_name)


def stale_after(timeout: float) -> float:
    """Seconds without a touch after which an event's consumer is presumed dead.

    A consumer touches its event at least every couple of seconds between attempts, and an
    attempt lasts at most the endpoint's ``timeout``.
    """
    return 10.0 + timeout


def _redis() -> Any:
    """redis-py, imported only where Redis queues are used (``except`` evaluates it late)."""
    import redis

    return redis


class MemoryQueue:
    """Go's in-memory queue: the head stays until delivered; lost when the process ends."""

    def __init__(self) -> None:
        self._items: collections.deque[bytes] = collections.deque()
        self._ready = threading.Condition()

    def put(self, event: bytes) -> None:
        with self._ready:
            self._items.append(event)
            self._ready.notify()

    def __len__(self) -> int:
        return len(self._items)

    def consume(self, deliver: Deliver, stopping: threading.Event) -> None:
        while not stopping.is_set():
            with self._ready:
                if not self._items:
                    self._ready.wait(1.0)
                    continue
                event = self._items[0]
            if deliver(event, _nothing):
                with self._ready:
                    self._items.popleft()


class Outbox:
    """This process's events on their way into Redis, added by a thread, never by a request."""

    def __init__(self, client: Any, limit: int = OUTBOX_LIMIT) -> None:
        self.client = client
        self.limit = limit
        self.dropped = 0
        self._items: collections.deque[tuple[str, bytes]] = collections.deque()
        self._ready = threading.Condition()
        self._sending = threading.Lock()

    def put(self, key: str, event: bytes) -> None:
        with self._ready:
            if len(self._items) >= self.limit:
                if not self.dropped:
                    log.error(
                        "notifications: %d events wait for Redis in this process; "
                        "dropping new ones until it takes them",
                        self.limit,
                    )
                self.dropped += 1
                return
            self._items.append((key, event))
            self._ready.notify()

    def __len__(self) -> int:
        return len(self._items)

    def run(self, stopping: threading.Event) -> None:
        failing = False
        while not stopping.is_set():
            with self._ready:
                if not self._items:
                    self._ready.wait(1.0)
                    continue
            try:
                self.send_batch()
            except _redis().RedisError as err:
                if not failing:
                    log.warning(
                        "notifications: cannot queue events in Redis: %s; keeping them", err
                    )
                failing = True
                stopping.wait(REDIS_RETRY)
                continue
            if failing:
                log.info("notifications: Redis reachable again; queueing events there")
            failing = False
            with self._ready:
                dropped, self.dropped = self.dropped, 0
            if dropped:
                log.error("notifications: %d events were dropped while Redis was away", dropped)

    def send_batch(self) -> int:
        """Add up to :data:`OUTBOX_BATCH` events to their streams; they leave the outbox only
        once Redis has them."""
        with self._sending:
            batch = [self._items[i] for i in range(min(OUTBOX_BATCH, len(self._items)))]
            if not batch:
                return 0
            pipeline = self.client.pipeline(transaction=False)
            for key, event in batch:
                pipeline.xadd(key, {"event": event})
            pipeline.execute()
            with self._ready:
                for _ in batch:
                    self._items.popleft()
            return len(batch)

    def flush(self, timeout: float) -> bool:
        """Move everything into Redis now (a worker is exiting); False if some is left."""
        deadline = time.monotonic() + timeout
        while self._items and time.monotonic() < deadline:
            try:
                self.send_batch()
            except _redis().RedisError as err:
                log.warning("notifications: cannot queue events in Redis at exit: %s", err)
                time.sleep(min(REDIS_RETRY, max(0.0, deadline - time.monotonic())))
        if self._items:
            log.error("notifications: %d events not queued in Redis are lost", len(self._items))
        return not self._items


class RedisQueue:
    """An endpoint's events in a Redis stream, consumed by every worker through one group."""

    def __init__(
        self, client: Any, outbox: Outbox, endpoint_name: str, timeout: float, prefix: str = ""
    ) -> None:
        self.client = client
        self.outbox = outbox
        self.key = stream_key(endpoint_name, prefix)
        self.stale_ms = int(stale_after(timeout) * 1000)
        self.consumer = ""
        self._group_ready = False
        self._holding: bytes | None = None

    def put(self, event: bytes) -> None:
        self.outbox.put(self.key, event)

    def consume(self, deliver: Deliver, stopping: threading.Event) -> None:
        """Deliver events for ever, as a consumer named for this host and process."""
        self.consumer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        next_reclaim = next_forget = 0.0
        failing = False
        while not stopping.is_set():
            try:
                self._ensure_group()
                entry = None
                now = time.monotonic()
                if now >= next_reclaim:
                    entry = self._reclaim()
                    if entry is None:
                        next_reclaim = now + RECLAIM_EVERY
                if now >= next_forget:
                    self._forget_gone_consumers()
                    next_forget = now + FORGET_EVERY
                if entry is None:
                    entry = self._read()
            except _redis().RedisError as err:
                if "NOGROUP" in str(err):
                    self._group_ready = False
                elif not failing:
                    log.warning("notifications: cannot read events from Redis: %s", err)
                failing = True
                stopping.wait(REDIS_RETRY)
                continue
            failing = False
            if entry is None:
                continue
            entry_id, event = entry
            if event is None:  # deleted while pending: nothing to deliver
                self._acknowledge(entry_id, stopping)
                continue
            self._holding = entry_id
            try:
                if deliver(event, lambda entry_id=entry_id: self._touch(entry_id)):
                    self._acknowledge(entry_id, stopping)
                else:
                    self.release()
            finally:
                self._holding = None

    def release(self) -> None:
        """Let another consumer take the event this one is delivering at once (the process
        is exiting), by marking it idle for longer than :func:`stale_after`."""
        entry_id = self._holding
        if entry_id is None:
            return
        try:
            self.client.xclaim(
                self.key, GROUP, self.consumer, 0, [entry_id], idle=self.stale_ms * 2, justid=True
            )
        except _redis().RedisError as err:
            log.warning("notifications: cannot release event %s: %s", _text(entry_id), err)

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(self.key, GROUP, id="0", mkstream=True)
        except _redis().ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        self._group_ready = True

    def _read(self) -> tuple[bytes, bytes | None] | None:
        answer = self.client.xreadgroup(
            GROUP, self.consumer, {self.key: ">"}, count=1, block=BLOCK_MS
        )
        for _stream, entries in _stream_entries(answer):
            for entry_id, fields in entries:
                return entry_id, (fields or {}).get(b"event")
        return None

    def _reclaim(self) -> tuple[bytes, bytes | None] | None:
        """One event whose consumer stopped touching it, now ours."""
        answer = self.client.xautoclaim(
            self.key, GROUP, self.consumer, self.stale_ms, start_id="0-0", count=1
        )
        entries = answer[1] if len(answer) > 1 else []
        for entry_id, fields in entries:
            log.info("notifications: taking over event %s of %s", _text(entry_id), self.key)
            return entry_id, (fields or {}).get(b"event")
        return None

    def _touch(self, entry_id: bytes) -> None:
        """Reset the event's idle time: it is still being delivered."""
        try:
            self.client.xclaim(self.key, GROUP, self.consumer, 0, [entry_id], justid=True)
        except _redis().RedisError as err:
            log.debug("notifications: cannot touch event %s: %s", _text(entry_id), err)

    def _acknowledge(self, entry_id: bytes, stopping: threading.Event) -> None:
        """Remove a delivered event; if Redis is away, retry until it is back or we stop
        (the event is then delivered again: at least once)."""
        while True:
            try:
                pipeline = self.client.pipeline(transaction=False)
                pipeline.xack(self.key, GROUP, entry_id)
                pipeline.xdel(self.key, entry_id)
                pipeline.execute()
                return
            except _redis().RedisError as err:
                log.warning("notifications: cannot remove delivered event from Redis: %s", err)
                if stopping.wait(REDIS_RETRY):
                    return

    def _forget_gone_consumers(self) -> None:
        for consumer in self.client.xinfo_consumers(self.key, GROUP):
            name = consumer.get("name")
            if (
                consumer.get("pending") == 0
                and consumer.get("idle", 0) > FORGET_IDLE_MS
                and _text(name) != self.consumer
            ):
                self.client.xgroup_delconsumer(self.key, GROUP, name)


def _stream_entries(answer: Any) -> list[tuple[Any, list[tuple[bytes, dict | None]]]]:
    """``XREADGROUP``'s answer (RESP2, as redisconn's clients speak) as ``[(stream, entries)]``."""
    return [(stream, entries) for stream, entries in answer or []]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nothing() -> None:
    return None
