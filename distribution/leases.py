"""Leases in Redis: a key that holds its owner's id and expires unless the owner renews it.

Used for the cluster's maintenance lease and for upload locks: exactly one owner holds a key
at a time, and if the owner dies the key frees itself within its time to live.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

#: Seconds a lease lasts without renewal; its holder renews it every third of that.
LEASE_TTL = 30.0

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class LeaseUnreachable(Exception):
    """The store holding a lease (Redis, or the storage) could not be asked."""


class Lease(Protocol):
    """Something one owner holds at a time; ``acquire`` also renews a lease already held."""

    ttl: float

    def acquire(self) -> bool: ...

    def release(self) -> None: ...


class RedisLease:
    """A Redis ``key`` holding ``owner``, set with ``SET NX PX``; renewed and released only by
    its owner (compare-and-expire, compare-and-delete in scripts)."""

    def __init__(self, client: Any, key: str, owner: str, ttl: float = LEASE_TTL) -> None:
        self.client = client
        self.key = key
        self.owner = owner
        self.ttl = ttl

    def acquire(self) -> bool:
        ttl_ms = int(self.ttl * 1000)
        if self.client.set(self.key, self.owner, nx=True, px=ttl_ms):
            return True
        return bool(self.client.eval(_RENEW, 1, self.key, self.owner, ttl_ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.owner)


@contextlib.contextmanager
def holding(lease: Lease, strict: bool = False) -> Iterator[Callable[[], bool]]:
    """Take ``lease`` and renew it in a thread; yields "is it still held?". Released at exit.

    A store that cannot be reached (Redis down) counts as not held, and a release it refuses
    is left to the lease's expiry: neither raises. With ``strict``, a store that cannot be
    reached when the lease is first taken raises :class:`LeaseUnreachable`, so that a command
    can say so rather than blame another holder.
    """
    held = threading.Event()
    done = threading.Event()
    try:
        if lease.acquire():
            held.set()
    except Exception as err:  # unreachable: not held
        if strict:
            raise LeaseUnreachable(str(err)) from err
        log.warning("lease: cannot take it: %s", err)

    def renew() -> None:
        while not done.wait(lease.ttl / 3):
            try:
                still = lease.acquire()
            except Exception:  # unreachable: no longer sure to hold it
                still = False
            if not still:
                held.clear()
                return

    renewer = threading.Thread(target=renew, name="lease", daemon=True)
    if held.is_set():
        renewer.start()
    try:
        yield held.is_set
    finally:
        done.set()
        if held.is_set():
            try:
                lease.release()
            except Exception as err:  # it expires within its time to live
                log.warning("lease: cannot release it, it expires by itself: %s", err)
