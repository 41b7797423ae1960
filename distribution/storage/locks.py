"""One request at a time on an upload, in every worker of every replica; and a tag or a
manifest link that retention deletes is never rewritten by a push at the same moment.

With ``redis`` configured an upload's lock is a Redis lease (any driver, every replica).
Without, it is the storage driver's own lock: ``flock`` on the upload's data file for the
filesystem driver (every host sharing the directory), a lock file on this host for the others,
so several replicas on cloud storage need Redis for uploads to exclude each other. A Redis that
cannot be reached falls back to the driver's lock, with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

from distribution import redisconn
from distribution.config import Configuration
from distribution.leases import LEASE_TTL, RedisLease, holding
from distribution.storage.driver import LockTimeoutError, PathNotFoundError, StorageDriver

#: Seconds a request waits for an upload that another request is using.
LOCK_WAIT = 30.0
#: Longest pause between two tries of a Redis lock held by someone else.
LONGEST_PAUSE = 0.05
#: Prefix of the Redis keys of locks (our own; the Go registry has none).
REDIS_PREFIX = "lock::"

log = logging.getLogger(__name__)


class Locks(Protocol):
    def hold(self, path: str, check: bool = True) -> contextlib.AbstractContextManager[None]:
        """Hold ``path``'s lock for the block; :class:`PathNotFoundError` if no file is there,
        :class:`LockTimeoutError` if another keeps it past the wait. ``check=False``: the
        holder reads the file first thing, which looks for it (see :meth:`StorageDriver.lock`).
        """


class DriverLocks:
    """Locks from the storage driver (:meth:`StorageDriver.lock`)."""

    def __init__(self, driver: StorageDriver, wait: float = LOCK_WAIT) -> None:
        self.driver = driver
        self.wait = wait

    def hold(self, path: str, check: bool = True) -> contextlib.AbstractContextManager[None]:
        return self.driver.lock(path, self.wait, check)


class RedisLocks:
    """Locks as Redis leases, renewed while held; the driver's locks when Redis is down."""

    def __init__(self, client: Any, driver: StorageDriver, wait: float = LOCK_WAIT) -> None:
        import redis  # only deployments with Redis load its client

        self.client = client
        self.driver = driver
        self.wait = wait
        self.fallback = DriverLocks(driver, wait)
        self._unreachable = redis.RedisError

    @contextlib.contextmanager
    def hold(self, path: str, check: bool = True) -> Iterator[None]:
        lease: RedisLease | None = RedisLease(
            self.client, REDIS_PREFIX + path, uuid.uuid4().hex, LEASE_TTL
        )
        try:
            self._acquire(lease, path)  # type: ignore[arg-type]
        except self._unreachable as err:
            log.warning("redis unreachable for upload locks, locking through storage: %s", err)
            lease = None
        if lease is None:
            with self.fallback.hold(path, check):
                yield
            return
        with holding(lease):
            if check and self.driver.stat(path).is_dir:
                raise PathNotFoundError(path)
            yield

    def _acquire(self, lease: RedisLease, path: str) -> None:
        deadline = time.monotonic() + self.wait
        pause = 0.002
        while not lease.acquire():
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(path)
            time.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_PAUSE)


@contextlib.contextmanager
def holding_if_present(locks: Locks, path: str) -> Iterator[None]:
    """Hold ``path``'s lock for the block when a file is there; without one, nothing can race
    on it (retention only deletes what exists), so the block runs unlocked."""
    held = contextlib.ExitStack()
    with contextlib.suppress(PathNotFoundError):
        held.enter_context(locks.hold(path))
    with held:
        yield


def from_config(config: Configuration, driver: StorageDriver) -> Locks:
    if redisconn.configured(config.redis):
        return RedisLocks(redisconn.connect(config.redis), driver)
    return DriverLocks(driver)
