"""Storage reads made a few at a time ahead of the caller, handed back in order.

A walk of the tree reads one folder after another, and on a cold page cache (or a cloud
store) each read waits on the disk or the network while the CPU idles. Reading the next few
folders while the caller handles this one keeps several reads in flight: a cold catalog walk
of 10,000 repositories takes half the time with eight at once.
"""

from __future__ import annotations

import collections
import contextvars
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

#: Reads in flight per process, shared by every request that walks.
READ_THREADS = 8
#: A read this long waited on the disk or the network: from the page cache a folder listing
#: takes 5-20 us, from the disk here 60 us and more.
SLOW = 0.00005

T = TypeVar("T")
R = TypeVar("R")


def ordered(
    read: Callable[[T], R], items: Iterable[T], batch: int = 4, window: int = READ_THREADS
) -> Iterator[tuple[T, R]]:
    """``(item, read(item))`` for each item, in order.

    Items are read in the caller's thread while reads are quick: from the page cache a read
    takes microseconds, less than handing it to another thread costs under the GIL. Once two
    reads in a row wait on storage (:data:`SLOW` or longer; one may be a wait for the GIL),
    the next are read ``batch`` items to a thread, up to ``window`` batches ahead of the one
    handed back, until a batch finds one read quick again (the rest of the tree is cached).
    ``read`` must not wait on this pool. The caller may stop early: batches not yet started
    are cancelled, and ``items`` is drawn from only as far as the window reaches.
    """
    source = iter(items)
    pending: collections.deque[tuple[list[T], Future[tuple[list[R], float]]]]
    pending = collections.deque()
    slow = 0
    try:
        while True:
            if slow >= 2:
                while len(pending) < window and (group := list(itertools.islice(source, batch))):
                    # A copy of the caller's context: the storage spans and log fields are
                    # the request's.
                    context = contextvars.copy_context()
                    pending.append((group, _pool().submit(context.run, _read_all, read, group)))
            if pending:
                group, future = pending.popleft()
                results, quickest = future.result()
                yield from zip(group, results, strict=True)
                if quickest < SLOW:
                    slow = 0
                continue
            for item in source:
                started = time.perf_counter()
                result = read(item)
                slow = slow + 1 if time.perf_counter() - started >= SLOW else 0
                yield item, result
                if slow >= 2:
                    break
            else:
                return
    finally:
        for _, future in pending:
            future.cancel()


def _read_all(read: Callable[[T], R], group: list[T]) -> tuple[list[R], float]:
    """The results of a batch, and how long its quickest read took."""
    results: list[R] = []
    quickest = float("inf")
    for item in group:
        started = time.perf_counter()
        results.append(read(item))
        quickest = min(quickest, time.perf_counter() - started)
    return results, quickest


def _pool() -> ThreadPoolExecutor:
    """This process's reading threads, made on first use (so after a worker's fork)."""
    global _reading
    with _reading_lock:
        if _reading is None:
            _reading = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="read-ahead")
        return _reading


_reading: ThreadPoolExecutor | None = None
_reading_lock = threading.Lock()
