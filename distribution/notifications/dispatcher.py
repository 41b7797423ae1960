"""The endpoints of ``notifications.endpoints`` and the threads that deliver to them.

:meth:`Dispatcher.emit` only appends to queues: it never waits on an endpoint or on Redis.
Each worker process runs, per endpoint, one thread that takes events from the queue and posts
them one envelope per event (as Go), retrying for ever; with Redis, one more thread moves this
process's events into Redis (see :mod:`distribution.notifications.queues`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from distribution import metrics, redisconn
from distribution.config import Configuration, Redis
from distribution.config import Endpoint as EndpointConfig
from distribution.notifications import events
from distribution.notifications.delivery import Breaker, HTTPSender, deliver, redacted
from distribution.notifications.queues import BLOCK_MS, MemoryQueue, Outbox, RedisQueue

log = logging.getLogger(__name__)

#: Dispatchers running in this process, flushed when a gunicorn worker exits.
_running: weakref.WeakSet[Dispatcher] = weakref.WeakSet()


@dataclass
class Endpoint:
    """One enabled endpoint: where its events go and which it ignores."""

    name: str
    config: EndpointConfig
    sender: HTTPSender
    queue: MemoryQueue | RedisQueue
    ignored_media_types: frozenset[str]
    ignored_actions: frozenset[str]

    def wants(self, event: Mapping[str, Any]) -> bool:
        return not events.ignored(event, self.ignored_media_types, self.ignored_actions)


def queue_redis(config: Configuration) -> Redis | None:
    """The Redis holding the notification queues: ``notifications.redis`` (our extension),
    else the top-level ``redis``; None keeps them in memory, as Go does."""
    own = config.notifications.redis
    if own is not None and redisconn.configured(own):
        return own
    return config.redis if redisconn.configured(config.redis) else None


def endpoint_name(config: EndpointConfig) -> str:
    """The endpoint's ``name``; its URL (password left out) when unnamed."""
    return config.name or redacted(config.url or "")


class Dispatcher:
    """Queues and delivery threads of this process for every enabled endpoint."""

    def __init__(self, config: Configuration, client: Any = None) -> None:
        settings = queue_redis(config)
        self.prefix = settings.keyprefix if settings is not None else ""
        self.include_references = config.notifications.events.includereferences
        self.source = events.source_record(config.http.addr)
        self.outbox = Outbox(client) if client is not None else None
        self.endpoints = [
            self._endpoint(endpoint, client)
            for endpoint in config.notifications.endpoints
            if not endpoint.disabled
        ]
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def from_config(cls, config: Configuration) -> Dispatcher | None:
        """A dispatcher for the enabled endpoints, None when there are none."""
        if not any(not endpoint.disabled for endpoint in config.notifications.endpoints):
            return None
        client = None
        settings = queue_redis(config)
        if settings is not None:
            client = redisconn.connect(settings, blocking=BLOCK_MS / 1000)
        return cls(config, client)

    @property
    def durable(self) -> bool:
        return self.outbox is not None

    def emit(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for every endpoint that does not ignore it."""
        self.start()
        data = json.dumps(event).encode()
        for endpoint in self.endpoints:
            if endpoint.wants(event):
                endpoint.queue.put(data)
                metrics.notifications.queued(endpoint.name)

    def start(self) -> None:
        """Start this process's threads, once per process (again in a forked child)."""
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stopping = threading.Event()
            self._threads = []
            if self.outbox is not None:
                self._spawn("notifications-outbox", self.outbox.run)
            for endpoint in self.endpoints:
                self._spawn(f"notifications-{endpoint.name}", self._consumer(endpoint))
            _running.add(self)
        for endpoint in self.endpoints:
            config = endpoint.config
            log.info(
                "notifications: configured endpoint %s (%s), timeout=%ss, threshold=%d, "
                "backoff=%ss, queue=%s",
                endpoint.name,
                redacted(config.url or ""),
                config.timeout,
                config.threshold,
                config.backoff,
                "redis" if self.durable else "memory",
            )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads (tests); queued events stay queued."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
        self._pid = None

    def flush(self, timeout: float) -> None:
        """The process is exiting: stop delivering, release the events being delivered and hand
        queued ones to Redis (in memory they are lost, as in Go)."""
        if self.outbox is not None:
            self._stopping.set()
            for endpoint in self.endpoints:
                if isinstance(endpoint.queue, RedisQueue):
                    endpoint.queue.release()
            self.outbox.flush(timeout)
        else:
            pending = sum(len(e.queue) for e in self.endpoints if isinstance(e.queue, MemoryQueue))
            if pending:
                log.warning("notifications: %d undelivered events lost at exit", pending)

    def _endpoint(self, config: EndpointConfig, client: Any) -> Endpoint:
        name = endpoint_name(config)
        queue: MemoryQueue | RedisQueue
        if client is not None and self.outbox is not None:
            queue = RedisQueue(client, self.outbox, name, config.timeout, self.prefix)
        else:
            queue = MemoryQueue()
        return Endpoint(
            name=name,
            config=config,
            sender=HTTPSender(config.url or "", config.headers, config.timeout),
            queue=queue,
            ignored_media_types=frozenset(config.ignore.mediatypes + config.ignoredmediatypes),
            ignored_actions=frozenset(config.ignore.actions),
        )

    def _consumer(self, endpoint: Endpoint) -> Callable[[threading.Event], None]:
        breaker = Breaker(endpoint.config.threshold, endpoint.config.backoff)

        def run(stopping: threading.Event) -> None:
            def attempt(event: bytes, heartbeat: Callable[[], None]) -> bool:
                body = events.envelope([json.loads(event)])
                return deliver(
                    body, endpoint.sender.send, breaker, stopping, endpoint.name, heartbeat
                )

            endpoint.queue.consume(attempt, stopping)

        return run

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        stopping = self._stopping

        def run() -> None:
            while not stopping.is_set():
                try:
                    target(stopping)
                except Exception:
                    log.exception("notifications: %s failed; restarting it", name)
                    stopping.wait(1.0)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def running() -> Dispatcher | None:
    """A dispatcher started in this process (a worker's application has one), if any."""
    return next(iter(list(_running)), None)


def flush_all(timeout: float) -> None:
    """Flush every dispatcher of this process (a gunicorn worker is exiting)."""
    for dispatcher in list(_running):
        dispatcher.flush(timeout)
