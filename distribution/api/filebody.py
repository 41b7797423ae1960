"""Blob response bodies, sent from the page cache at socket speed under gunicorn.

gunicorn sends a ``wsgi.file_wrapper`` with ``sendfile`` and any other body with ``write``,
which takes ``bytes`` only: each piece is copied out of the page cache before the socket copies
it again. Over loopback on our 2-core VM (benchmarks/README.md) a 1 GiB blob went out at about
2.0 GB/s with ``sendfile``, 2.8 GB/s with reads and sends, and 4 GB/s when sent from a memory
map of the file, which saves the first copy. So :class:`FileBody` gives gunicorn the first piece
as ``bytes`` (gunicorn writes the headers with it and, as PEP 3333 requires of a server, has
sent both before it asks for the next piece), then sends the rest itself on the connection's
socket: from ``mmap`` windows of the file what the page cache holds, and with ``sendfile`` what
it does not. The kernel's read path behind ``sendfile`` reads ahead up to the device's
``read_ahead_kb`` and fills the cache with large folios, which the mapped sends of later pulls
copy faster: a cold 1 GiB send went at 1.7-2.5 GB/s against 0.7-1.4 with the mapped windows
and a read-ahead hint, and the sends after it at 3.2-4.7 GB/s against 2.3-3.0. One case went the
other way on our VM, which hands memory that stays free back to its host: filling large folios
with memory the host must give again is slow, so a cold send into such memory (the first pull
right after a push, on an idle machine) went at 0.6-0.8 GB/s against 1.0-1.5 (benchmarks/).
In a whole-blob ``GET`` the read-ahead of the first piece and of each mapped window keeps the
next window's first page cached, so ``sendfile`` serves mostly a range that starts cold.

The bytes sent on the socket are counted in the ``environ`` under :data:`DIRECT_BYTES`, for the
access log and the metrics. Without gunicorn's socket (another server, the Flask test client),
over HTTP/2, or for a file with no descriptor (the cloud drivers' streams), the body is read and
yielded piece by piece.

A mapped page must not vanish while it is sent: a file truncated under a mapping kills the
process with SIGBUS. Blob files are written once and land by rename, never truncated; the
window never reaches past the file's size at the time it is mapped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import mmap
import os
import socket
import ssl
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

#: Bytes read and yielded at a time where the body is not sent from mapped windows: each piece
#: is a buffer of its own per pull.
SEND_CHUNK = 1 << 20
#: Bytes of a mapped window sent at a time: larger sends cost fewer system calls and wake-ups of
#: the receiver, smaller ones stay in the CPU's cache while the kernel copies them. 2 MiB pulled
#: 4.1-4.3 GB/s against 3.4-4.0 with 1 MiB and about the same with 4 MiB (benchmarks/README.md).
MAPPED_PIECE = 2 << 20
#: Bytes mapped at a time, and asked of the disk ahead of the one being sent.
MAP_WINDOW = 8 << 20
#: Bytes read for the first piece when the rest goes from mapped windows: what the worker
#: sends in one with the head (``worker.COALESCE_MAX``). A larger read would be a buffer of
#: its own per pull, which glibc keeps in the thread's arena after it is freed.
FIRST_PIECE = 64 << 10
#: ``environ`` key: bytes of the body sent on the socket around the server.
DIRECT_BYTES = "distribution.direct_bytes"


class FileCutShort(Exception):
    """The file ended before the length the response announced.

    Raised after the headers went out, it makes the server log it and close the connection,
    so the client sees a short body instead of waiting for bytes that will never come.
    """


class FileBody:
    """``length`` bytes of ``file`` from its current position, as a WSGI response body."""

    def __init__(self, environ: dict[str, Any], file: BinaryIO, length: int) -> None:
        self._environ = environ
        self._file = file
        self._remaining = length

    def __iter__(self) -> Iterator[bytes]:
        sock = _direct_socket(self._environ)
        data = self._read(FIRST_PIECE if sock is not None else SEND_CHUNK)
        if data:
            yield data
        if sock is not None and self._remaining:
            self._send_mapped(sock)
        while data := self._read(SEND_CHUNK):
            yield data

    def close(self) -> None:
        self._file.close()

    def _read(self, most: int) -> bytes:
        if not self._remaining:
            return b""
        data = self._file.read(min(most, self._remaining))
        if not data:
            name = getattr(self._file, "name", "the file")
            raise FileCutShort(f"{name}: {self._remaining} bytes missing at its end")
        self._remaining -= len(data)
        return data

    def _send_mapped(self, sock: socket.socket) -> None:
        """Send what remains, or as much as the file holds: from mapped windows what the page
        cache holds, the rest with ``sendfile`` (plain sockets) or from windows read ahead."""
        try:
            fd = self._file.fileno()
            position = self._file.tell()
            end = min(position + self._remaining, os.fstat(fd).st_size)
        except (AttributeError, OSError, io.UnsupportedOperation):
            return
        plain = not isinstance(sock, ssl.SSLSocket)
        while position < end:
            base = position - position % mmap.ALLOCATIONGRANULARITY
            size = min(base + MAP_WINDOW, end) - base
            if plain and not _cached(fd, position):
                sent = sock.sendfile(self._file, position, base + size - position)
                self._sent_directly(sent)
                position += sent
                if position < base + size:
                    break  # the file ended early: the read that follows finds it cut short
                continue
            try:
                window = mmap.mmap(fd, size, offset=base, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                break  # a file system that cannot map, or a file cut short: read the rest
            if not plain and base + size < end:
                _read_ahead(fd, base + size, min(MAP_WINDOW, end - base - size))
            with window, memoryview(window) as view:
                for offset in range(position - base, size, MAPPED_PIECE):
                    with view[offset : offset + MAPPED_PIECE] as piece:
                        sock.sendall(piece)
                    self._sent_directly(min(MAPPED_PIECE, size - offset))
                    _forget(window, offset, MAPPED_PIECE)
            position = base + size
        self._file.seek(position)

    def _sent_directly(self, count: int) -> None:
        self._remaining -= count
        self._environ[DIRECT_BYTES] = self._environ.get(DIRECT_BYTES, 0) + count


def _forget(window: mmap.mmap, offset: int, length: int) -> None:
    """Unmap the pages of a piece the socket has copied, so they leave the worker's memory.

    A mapped page stays in the process's resident set until the window is unmapped: 8 MiB per
    pull on top of the worker's own memory (its VmHWM grew from 38.9 to 47.3 MiB in one pull).
    The page cache keeps the pages; only this mapping of them goes.
    """
    start = offset - offset % mmap.PAGESIZE
    with contextlib.suppress(OSError, ValueError):  # only a hint
        window.madvise(mmap.MADV_DONTNEED, start, min(offset + length, len(window)) - start)


def _cached(fd: int, offset: int) -> bool:
    """Whether the page at ``offset`` is in the page cache.

    ``cachestat`` (Linux 6.5) answers without reading anything. Where it is missing (an older
    kernel, a seccomp profile that lacks it) a one-byte read that may not wait for the disk
    (``RWF_NOWAIT``) answers instead. That read starts reading the page when it is not cached,
    and a quick disk may finish before the answer: on our VM it called a page just dropped
    cached one time in three, and that window was then mapped instead of sent with
    ``sendfile``. Where neither can tell, the page counts as cached, and the window is mapped.
    """
    global _cachestat
    if _cachestat is not None:
        stat = _CacheStat()
        if _cachestat(_NR_CACHESTAT, fd, _CacheStatRange(offset, 1), stat, 0) == 0:
            return stat.nr_cache > 0
        if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):
            _cachestat = None  # not on this kernel, or not allowed: not worth asking again
    try:
        os.preadv(fd, [_PROBE], offset, os.RWF_NOWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


class _CacheStatRange(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _CacheStat(ctypes.Structure):
    _fields_ = [
        (field, ctypes.c_uint64)
        for field in ("nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")
    ]


def _load_cachestat() -> Any:
    """libc's ``syscall``, to call ``cachestat`` with; None off Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_long
    function.argtypes = [
        ctypes.c_long,
        ctypes.c_uint,
        ctypes.POINTER(_CacheStatRange),
        ctypes.POINTER(_CacheStat),
        ctypes.c_uint,
    ]
    return function


#: ``cachestat``'s number on every architecture Linux numbers alike (all but alpha).
_NR_CACHESTAT = 451
_cachestat = _load_cachestat()
#: The byte the ``RWF_NOWAIT`` probe reads into; what lands in it is never looked at.
_PROBE = bytearray(1)


def _read_ahead(fd: int, offset: int, length: int) -> None:
    """Have the kernel read the next window from disk while this one is sent (over TLS, where
    ``sendfile`` does not apply).

    A blob that is not in the page cache then streams at disk and socket speed together
    instead of one after the other. The pages the hint reads in are single-page folios, which
    later sends serve slower than the large folios the read path (``sendfile``) makes.
    """
    with contextlib.suppress(OSError):  # only a hint
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


def _direct_socket(environ: dict[str, Any]) -> socket.socket | None:
    """gunicorn's connection socket, when the response goes on it as plain HTTP/1."""
    if environ.get("SERVER_PROTOCOL") not in ("HTTP/1.0", "HTTP/1.1"):
        return None
    sock = environ.get("gunicorn.socket")
    return sock if isinstance(sock, socket.socket) else None
