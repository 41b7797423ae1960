"""Pull times and changed repositories, noted in memory by each process and written in batches.

A manifest ``GET`` or ``HEAD`` costs one dictionary update under a lock (no I/O); a manifest
push or delete notes its repository as changed. Every :data:`FLUSH_INTERVAL` seconds (more
often when the usage job runs more often) and when the process exits, each process writes what
it noted as one batch: to a Redis list when
``redis`` is configured (the Redis of every replica), else to a file of its own under
``_maintenance/journal/`` in storage, which every replica shares. The maintenance job merges
the batches into its state and removes them (:func:`read` then :func:`remove`), so pulls
recorded on any replica count, and a batch is lost only with its process before a flush.
"""

from __future__ import annotations

import atexit
import gzip
import json
import logging
import os
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver

log = logging.getLogger(__name__)

#: Seconds between two writes of a process's batch.
FLUSH_INTERVAL = 10.0
#: Seconds between two looks of the flushing thread at its journals.
TICK = 0.5
#: Seconds a stopping process waits for its last batches to be written.
EXIT_FLUSH_TIMEOUT = 5.0
#: Entries a process keeps before it writes its batch early.
MAX_PENDING = 100_000
#: The Redis list of batches (our own key; the Go registry has none).
REDIS_KEY = "registry::journal"
#: Batches read from Redis at a time.
REDIS_PAGE = 1000


@dataclass
class Batch:
    """Pull times (``repository -> reference -> time``) and changed repositories (``-> time``).

    A reference is a tag or a digest (digests hold a ``:``, tags cannot).
    """

    pulls: dict[str, dict[str, float]] = field(default_factory=dict)
    changed: dict[str, float] = field(default_factory=dict)

    def merge(self, other: Batch) -> None:
        """Keep the latest time of each entry."""
        for name, refs in other.pulls.items():
            mine = self.pulls.setdefault(name, {})
            for ref, when in refs.items():
                if when > mine.get(ref, 0.0):
                    mine[ref] = when
        for name, when in other.changed.items():
            if when > self.changed.get(name, 0.0):
                self.changed[name] = when

    def __bool__(self) -> bool:
        return bool(self.pulls or self.changed)

    def encode(self) -> bytes:
        return gzip.compress(json.dumps({"pulls": self.pulls, "changed": self.changed}).encode())

    @classmethod
    def decode(cls, data: bytes) -> Batch:
        value = json.loads(gzip.decompress(data))
        pulls = {
            str(name): {str(ref): float(when) for ref, when in refs.items()}
            for name, refs in value.get("pulls", {}).items()
        }
        changed = {str(name): float(when) for name, when in value.get("changed", {}).items()}
        return cls(pulls, changed)


class Sink(Protocol):
    def write(self, data: bytes) -> None: ...


class StorageSink:
    """Each batch a new file under ``_maintenance/journal/``, named to sort by time."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def write(self, data: bytes) -> None:
        # The writing process, not the one that built the sink (gunicorn's master).
        owner = f"{socket.gethostname()}-{os.getpid()}".replace("_", "-")
        name = f"{time.time_ns():020d}-{owner}-{uuid.uuid4().hex[:8]}"
        name = "".join(c if c.isalnum() or c in "._-" else "-" for c in name)
        self.driver.put_content(paths.journal_batch(name), data)


class RedisSink:
    """Batches pushed onto one Redis list; storage when Redis cannot be reached."""

    def __init__(self, client: Any, fallback: StorageSink) -> None:
        import redis  # only deployments with Redis load its client

        self.client = client
        self.fallback = fallback
        self._unreachable = redis.RedisError

    def write(self, data: bytes) -> None:
        try:
            self.client.rpush(REDIS_KEY, data)
        except self._unreachable as err:
            log.warning("usage: redis unreachable, writing the journal batch to storage: %s", err)
            self.fallback.write(data)


class Journal:
    """What this process noted since its last flush."""

    def __init__(
        self, sink: Sink, record_pulls: bool = True, every: float = FLUSH_INTERVAL
    ) -> None:
        self.sink = sink
        self.record_pulls = record_pulls
        #: Seconds between two flushes.
        self.every = every
        self._due = time.monotonic() + every
        self._lock = threading.Lock()
        self._pending = Batch()
        self._size = 0
        _journals.add(self)

    def pulled(self, name: str, tag: str | None, digest: object) -> None:
        """A manifest was fetched, by tag or by digest: remember both, with the time."""
        if not self.record_pulls:
            return
        _start_flusher()
        now = time.time()
        with self._lock:
            refs = self._pending.pulls.get(name)
            if refs is None:
                refs = self._pending.pulls[name] = {}
            refs[str(digest)] = now
            if tag is not None:
                refs[tag] = now
            self._size += 1
        if self._size > MAX_PENDING:
            _wake.set()

    def changed(self, name: str) -> None:
        """A manifest or tag of ``name`` was pushed or deleted: its usage needs a new look."""
        _start_flusher()
        with self._lock:
            self._pending.changed[name] = time.time()

    def flush(self) -> None:
        """Write what was noted as one batch (nothing when nothing was)."""
        self._due = time.monotonic() + self.every
        with self._lock:
            batch, self._pending, self._size = self._pending, Batch(), 0
        if not batch:
            return
        try:
            self.sink.write(batch.encode())
        except Exception as exc:  # storage down: keep the entries for the next flush
            log.warning("usage: cannot write the journal batch, keeping it: %s", exc)
            with self._lock:
                batch.merge(self._pending)
                self._pending = batch


@dataclass(frozen=True)
class Entry:
    """One batch read back, and how to remove it once merged."""

    key: str
    batch: Batch


def read(driver: StorageDriver, client: Any = None) -> list[Entry]:
    """Every batch waiting, from storage and (when configured) Redis, oldest first."""
    found = []
    try:
        names = sorted(driver.list(paths.JOURNAL))
    except PathNotFoundError:
        names = []
    for path in names:
        try:
            found.append(Entry(path, Batch.decode(driver.get_content(path))))
        except PathNotFoundError:
            continue
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("usage: dropping the unreadable journal batch %s: %s", path, exc)
            found.append(Entry(path, Batch()))
    if client is not None:
        found += _read_redis(client)
    return found


def waiting(driver: StorageDriver, client: Any = None) -> bool:
    """Whether any batch waits to be merged (a Redis that cannot answer may hold some)."""
    try:
        if driver.list(paths.JOURNAL):
            return True
    except PathNotFoundError:
        pass
    if client is None:
        return False
    import redis

    try:
        return bool(client.llen(REDIS_KEY))
    except redis.RedisError:
        return True


def remove(driver: StorageDriver, entries: list[Entry], client: Any = None) -> None:
    """Remove batches that were merged (and saved) from where they were read."""
    redis_count = 0
    for entry in entries:
        if entry.key.startswith("redis:"):
            redis_count += 1
            continue
        try:
            driver.delete(entry.key)
        except PathNotFoundError:
            continue
    if client is not None and redis_count:
        client.ltrim(REDIS_KEY, redis_count, -1)


def merged(entries: list[Entry]) -> Batch:
    total = Batch()
    for entry in entries:
        total.merge(entry.batch)
    return total


def _read_redis(client: Any) -> list[Entry]:
    """Batches from the head of the Redis list; new ones land at its tail meanwhile."""
    import redis

    found: list[Entry] = []
    try:
        while True:
            page = client.lrange(REDIS_KEY, len(found), len(found) + REDIS_PAGE - 1)
            for data in page:
                try:
                    batch = Batch.decode(data)
                except (OSError, ValueError, AttributeError, TypeError) as exc:
                    log.warning("usage: dropping an unreadable journal batch in redis: %s", exc)
                    batch = Batch()
                found.append(Entry(f"redis:{len(found)}", batch))
            if len(page) < REDIS_PAGE:
                return found
    except redis.RedisError as err:
        log.warning("usage: cannot read the journal from redis: %s", err)
        return found


_journals: weakref.WeakSet[Journal] = weakref.WeakSet()
_wake = threading.Event()
_flusher_pid: int | None = None
_flusher_lock = threading.Lock()


def flush_all() -> None:
    """Flush every journal of this process (at exit, and by the flusher thread)."""
    for journal in list(_journals):
        journal.flush()


def _start_flusher() -> None:
    """One thread per process flushes every journal, from the first entry noted there: not
    in gunicorn's master, which builds the app and forks the workers."""
    global _flusher_pid
    if _flusher_pid == os.getpid():
        return
    with _flusher_lock:
        if _flusher_pid == os.getpid():
            return
        _flusher_pid = os.getpid()
        threading.Thread(target=_flush_forever, name="usage-journal", daemon=True).start()


def _flush_forever() -> None:
    while True:
        woken = _wake.wait(TICK)
        _wake.clear()
        now = time.monotonic()
        for journal in list(_journals):
            if woken or journal._due <= now:
                try:
                    journal.flush()
                except Exception:
                    log.exception("usage: flushing the journal failed")


def _flush_at_exit() -> None:
    """Write the last batches, but never hold a stopping process longer than
    :data:`EXIT_FLUSH_TIMEOUT`: with storage down each write would wait out its retries."""
    last = threading.Thread(target=flush_all, name="usage-journal-exit", daemon=True)
    last.start()
    last.join(EXIT_FLUSH_TIMEOUT)
    if last.is_alive():
        log.warning(
            "usage: the last journal batch was not written within %.0f s; its pulls are lost",
            EXIT_FLUSH_TIMEOUT,
        )


atexit.register(_flush_at_exit)
