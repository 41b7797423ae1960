"""Letting go of the library pages a process ran only while it started.

Starting runs library code that the master of ``registry serve`` never runs again: OpenSSL's
set-up in ``libcrypto``, Python's importer and compiler, each C extension's initialisation.
Those pages stay mapped, counted in the master's resident set and in the registry's PSS, for
as long as it runs: unmapping them takes 6-7 MiB off the 52 an idle registry maps
(benchmarks/README.md). A worker does not inherit them: a fork copies no page-table entries
of a file mapping that has no private pages, so each worker maps only the code it runs.

:func:`release` unmaps them (``MADV_DONTNEED``). The pages stay in the page cache, where a
later fault finds them again without reading the disk, and the kernel may reclaim them like
any unmapped file page. Only read-only mappings of a file with no private page qualify: a
mapping holding a private page (a relocated one, say) would lose it and read the file's
bytes back instead, so ``/proc/self/smaps`` must say ``Anonymous: 0 kB`` for it.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator

SMAPS = "/proc/self/smaps"
#: ``madvise`` advice (linux/mman.h): drop the mapping's pages, not the file's.
MADV_DONTNEED = 4
#: Permissions of a read-only private mapping, executable or not.
_READ_ONLY = frozenset({"r-xp", "r--p"})


def release() -> int:
    """Unmap the pages of this process's read-only file mappings; return the bytes advised.

    Only a hint: where ``/proc`` or ``madvise`` is missing it does nothing.
    """
    try:
        madvise = ctypes.CDLL(None).madvise
        with open(SMAPS, encoding="ascii", errors="replace") as lines:
            ranges = list(read_only_ranges(lines))
    except (OSError, AttributeError):
        return 0
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    advised = 0
    for start, end in ranges:
        if madvise(start, end - start, MADV_DONTNEED) == 0:
            advised += end - start
    return advised


def read_only_ranges(smaps: Iterable[str]) -> Iterator[tuple[int, int]]:
    """The address ranges of read-only private file mappings without a private page.

    ``smaps`` is the text of ``/proc/<pid>/smaps``, line by line: a header line per mapping
    (``start-end perms offset dev inode path``), then its ``Key: value`` lines.
    """
    candidate: tuple[int, int] | None = None
    for line in smaps:
        fields = line.split()
        if not fields:
            continue
        if not fields[0].endswith(":"):  # a mapping's header
            candidate = None
            if len(fields) >= 6 and fields[1] in _READ_ONLY and fields[5].startswith("/"):
                start, _, end = fields[0].partition("-")
                candidate = int(start, 16), int(end, 16)
        elif fields[0] == "Anonymous:" and candidate is not None:
            if fields[1] == "0":
                yield candidate
            candidate = None
