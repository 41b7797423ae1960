"""Storage reads a few at a time, results in the order asked.

Reads that wait on the disk or the network (a cold folder, an object store) overlap in
threads: the system calls and the HTTP waits release the GIL. Used where a walk reads one
small thing per repository.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered(read: Callable[[T], R], items: Iterable[T], threads: int) -> Iterator[R]:
    """``read(item)`` of each item, in their order, ``threads`` at a time and a few ahead;
    a consumer that stops early waits only for the reads already started."""
    with ThreadPoolExecutor(threads, thread_name_prefix="storage-read") as pool:
        ahead: collections.deque[Future[R]] = collections.deque()
        for item in items:
            ahead.append(pool.submit(read, item))
            if len(ahead) >= threads * 4:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
