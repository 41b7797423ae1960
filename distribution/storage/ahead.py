"""Storage reads made a few at a time ahead of the caller, handed back in order.

A walk of the tree reads one folder after another, and on a cold page cache (or a cloud
store) each read waits on the disk or the network while the CPU idles. Reading the next few
folders while the caller handles this one keeps several reads in flight: a cold catalog walk
of 10,000 repositories took 1.45 s instead of 3.0 (benchmarks/README.md).
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

#: Reads in flight per process, shared by every request that walks. On this 2-core VM a read's
#: cost in the kernel (a VM exit per disk read, thread wake-ups) bounds a cold walk more than
#: the reads in flight: four ran one in 2.1-2.8 s in process, eight in 3.0-3.7
#: (benchmarks/README.md).
READ_THREADS = 4
#: A read that spent this long waiting (off the CPU) waited on the disk or the network: a
#: folder listing from the page cache waits for nothing, one from the disk here 50 us and more.
SLOW = 0.00003

T = TypeVar("T")
R = TypeVar("R")


def ordered(
    read: Callable[[T], R], items: Iterable[T], batch: int = 4, window: int = READ_THREADS
) -> Iterator[tuple[T, R]]:
    """``(item, read(item))`` for each item, in order.

    Items are read in the caller's thread while reads do not wait: from the page cache a read
    takes microseconds, less than handing it to another thread costs under the GIL. Once two
    reads in a row wait on storage (:data:`SLOW` or longer off the CPU; one may be a wait
    for the GIL), the next are read ``batch`` items to a thread, up to ``window`` batches
    ahead of the one handed back, until most reads of a batch did not wait (the rest of the
    tree is cached).

    ``read`` must not wait on this pool. The caller may stop early: batches not yet started
    are cancelled, and ``items`` is drawn from only as far as the window reaches.
    """
    source = iter(items)
    pending: collections.deque[tuple[list[T], Future[tuple[list[R], int]]]]
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
                results, waits = future.result()
                yield from zip(group, results, strict=True)
                if 2 * waits <= len(group):
                    slow = 0
                continue
            for item in source:
                result, waited = _timed(read, item)
                slow = slow + 1 if waited >= SLOW else 0
                yield item, result
                if slow >= 2:
                    break
            else:
                return
    finally:
        for _, future in pending:
            future.cancel()


def _read_all(read: Callable[[T], R], group: list[T]) -> tuple[list[R], int]:
    """The results of a batch, and how many of its reads waited."""
    results: list[R] = []
    waits = 0
    for item in group:
        result, waited = _timed(read, item)
        results.append(result)
        waits += waited >= SLOW
    return results, waits


def _timed(read: Callable[[T], R], item: T) -> tuple[R, float]:
    """``read(item)``, and how long it waited off the CPU (its time less this thread's CPU
    time): a large folder listed from the page cache takes long, but waits for nothing."""
    started, cpu = time.perf_counter(), time.thread_time()
    result = read(item)
    return result, (time.perf_counter() - started) - (time.thread_time() - cpu)


def _pool() -> ThreadPoolExecutor:
    """This process's reading threads, made on first use (so after a worker's fork)."""
    global _reading
    with _reading_lock:
        if _reading is None:
            _reading = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="read-ahead")
        return _reading


_reading: ThreadPoolExecutor | None = None
_reading_lock = threading.Lock()
