"""A driver on a local directory, laid out byte for byte like distribution's.

Storage path ``/docker/registry/v2/...`` is the file ``<rootdirectory>/docker/registry/v2/...``,
so a data directory can be shared with, or handed over to, the Go registry. Readers are real
file objects, so blobs can be sent from memory maps (:mod:`distribution.api.filebody`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import secrets
import shutil
import time
from collections.abc import Hashable, Iterator, Mapping
from datetime import UTC, datetime
from stat import S_ISDIR
from typing import Any, BinaryIO

from distribution.storage.driver import flock
from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidParameterError,
    PathNotFoundError,
    SkipFn,
    StorageDriver,
)

DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
DEFAULT_MAXTHREADS = 100
MIN_MAXTHREADS = 25
#: Bytes a writer lets pile up in the page cache before it starts their writeback.
WRITEBACK_STEP = 8 << 20
#: Seconds a directory's last change must be old before :meth:`FilesystemDriver.version` dates
#: it (the kernel's file clock ticks every few milliseconds; other hosts' clocks drift).
VERSION_SETTLE = 2.0
#: Times a write or a removal is tried when a concurrent request removes the directory it
#: writes into, or writes into the directory it removes (a tag pushed while it is deleted).
RACE_ATTEMPTS = 20
_RACES = (errno.ENOTEMPTY, errno.EISDIR, None)
#: Bytes at the end of a file that a writer leaves in the page cache; those before it are
#: dropped once on disk, so a large upload streams through a bounded window of page cache.
CACHED_TAIL = 32 << 20
#: What the dropped ranges end on: the page cache holds a file in naturally aligned folios of
#: up to 2 MiB, and dropping a range leaves whatever page or folio its ends cut through.
DROP_ALIGN = 2 << 20
#: Bytes asked of each ``read`` by :meth:`FilesystemDriver.get_content`: links and most
#: manifests fit in one.
READ_SIZE = 64 << 10

logger = logging.getLogger(__name__)


def from_parameters(parameters: Mapping[str, Any]) -> FilesystemDriver:
    """Build the driver from the ``storage.filesystem`` config section, as Go reads it."""
    return FilesystemDriver(
        rootdirectory=_rootdirectory(parameters.get("rootdirectory", DEFAULT_ROOTDIRECTORY)),
        maxthreads=_maxthreads(parameters.get("maxthreads")),
    )


class FilesystemDriver(StorageDriver):
    """Stores each path as a file under ``rootdirectory``, created on first write.

    ``maxthreads`` is accepted and validated for config compatibility only: Go uses it to
    bound the OS threads its blocking syscalls spawn, while here every worker thread already
    is an OS thread, so there is nothing further to bound.
    """

    directory_versions = True

    def __init__(
        self, rootdirectory: str = DEFAULT_ROOTDIRECTORY, maxthreads: int = DEFAULT_MAXTHREADS
    ) -> None:
        self.rootdirectory = os.path.abspath(rootdirectory)
        self.maxthreads = maxthreads

    @property
    def name(self) -> str:
        return "filesystem"

    def get_content(self, path: str) -> bytes:
        """Four system calls for a small file (``open`` costs nine: it asks ``fstat``,
        ``lseek`` and ``isatty`` for a buffer it does not need here). Each call hands the
        GIL to another thread, which is what a hot read mostly pays under load."""
        try:
            fd = os.open(self._full(path), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None
        try:
            chunks = []
            while chunk := os.read(fd, READ_SIZE):
                chunks.append(chunk)
        except IsADirectoryError:
            raise PathNotFoundError(path) from None
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Write a temp file beside the target, fsync it (if ``durable``), then rename it over
        the target.

        The directory is not fsynced: a crash may lose the rename, never expose a torn file.
        Without the fsync a crash may leave the target empty. With it, the device flushes its
        write cache, which mid-push means waiting for most of the upload's data.
        """
        full = self._full(path)
        parent, base = os.path.split(full)
        for attempt in range(RACE_ATTEMPTS):
            tmp = os.path.join(parent, f".{base}.tmp-{secrets.token_hex(8)}")
            try:
                os.makedirs(parent, exist_ok=True)
                with open(tmp, "xb") as f:
                    f.write(data)
                    f.flush()
                    if durable:
                        os.fsync(f.fileno())
                os.replace(tmp, full)
                return
            except (FileNotFoundError, FileExistsError):
                # The directory went (a concurrent delete of its tree) while it was made or
                # written in (``makedirs`` says "exists" when it goes between its own steps).
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                if attempt == RACE_ATTEMPTS - 1:
                    raise
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        try:
            f = open(self._full(path), "rb")  # noqa: SIM115 - the caller owns and closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise PathNotFoundError(path) from None
        if offset > os.fstat(f.fileno()).st_size:
            f.close()
            raise InvalidOffsetError(path, offset)
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        full = self._full(path)
        if append:
            # O_APPEND: racing writers of one upload add bytes, never overwrite bytes that
            # another writer already wrote (and hashed).
            try:
                fd = os.open(full, os.O_WRONLY | os.O_APPEND)
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                raise PathNotFoundError(path) from None
            f = open(fd, "ab")  # noqa: SIM115 - owned by the writer
        else:
            os.makedirs(os.path.dirname(full), exist_ok=True)
            f = open(full, "wb")  # noqa: SIM115 - owned by the writer
        return _FileWriter(f, full)

    def stat(self, path: str) -> FileInfo:
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None
        is_dir = S_ISDIR(st.st_mode)
        return FileInfo(
            path=path,
            size=0 if is_dir else st.st_size,
            mtime=datetime.fromtimestamp(st.st_mtime, UTC),
            is_dir=is_dir,
        )

    def list(self, path: str) -> list[str]:
        prefix = path.rstrip("/")
        # Sorted by name: the same order as by path, and faster with no prefix to compare.
        return [f"{prefix}/{name}" for name in self.names(path)]

    def names(self, path: str) -> list[str]:
        try:
            names = os.listdir(self._full(path))
        except FileNotFoundError:
            if path == "/":
                return []
            raise PathNotFoundError(path) from None
        except NotADirectoryError:
            raise PathNotFoundError(path) from None
        names.sort()
        return names

    def has_children(self, path: str) -> bool:
        """A directory's link count is 2 plus its subdirectories on most filesystems (ext4,
        XFS, tmpfs; btrfs says 1): above 2, it has some, which a ``stat`` tells without
        reading the directory (on a cold cache, one disk read less per repository in the
        catalog). Otherwise its first entry is looked for."""
        full = self._full(path)
        try:
            st = os.stat(full)
            if S_ISDIR(st.st_mode) and st.st_nlink > 2:
                return True
            with os.scandir(full) as entries:
                return next(entries, None) is not None
        except (FileNotFoundError, NotADirectoryError):
            return False

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        """``os.scandir`` down the tree: one ``stat`` per file, none per folder."""
        pending = [path.rstrip("/") or ""]
        while pending:
            folder = pending.pop()
            try:
                entries = list(os.scandir(self._full(folder or "/")))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                child = f"{folder}/{entry.name}"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if not skip(child):
                            pending.append(child)
                        continue
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we looked
                yield FileInfo(child, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), False)

    def move(self, src: str, dst: str) -> None:
        source, dest = self._full(src), self._full(dst)
        if not os.path.exists(source):
            raise PathNotFoundError(src)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        try:
            os.replace(source, dest)
        except FileNotFoundError:
            raise PathNotFoundError(src) from None

    def delete(self, path: str) -> None:
        full = self._full(path)
        for attempt in range(RACE_ATTEMPTS):
            try:
                if os.path.isdir(full) and not os.path.islink(full):
                    shutil.rmtree(full)
                else:
                    os.remove(full)
                return
            except (FileNotFoundError, NotADirectoryError):
                if attempt:
                    return  # what a retry found gone, a concurrent delete removed
                raise PathNotFoundError(path) from None
            except OSError as exc:
                # A concurrent write put a file in a directory after ``rmtree`` listed it
                # (``ENOTEMPTY``), or made the directory again after it was found gone
                # (``EISDIR``) or between ``rmtree``'s own looks at it (no errno: "Cannot
                # call rmtree on a symbolic link").
                if exc.errno not in _RACES or attempt == RACE_ATTEMPTS - 1:
                    raise

    def version(self, path: str) -> Hashable | None:
        """The inode, modification time and size of a directory or file: adding or removing
        an entry, or writing the file in place (as Go does), changes the time; replacing it
        (as we do), the inode. None while the last change is younger than
        :data:`VERSION_SETTLE`: the kernel dates files with a coarse clock, so a second change
        within the same tick would keep the time."""
        try:
            st = os.stat(self._full(path))
        except (FileNotFoundError, NotADirectoryError):
            raise PathNotFoundError(path) from None
        if time.time_ns() - st.st_mtime_ns < VERSION_SETTLE * 1e9:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def lock(
        self, path: str, timeout: float, check: bool = True
    ) -> contextlib.AbstractContextManager[None]:
        """``flock`` on the file itself: it excludes every process of every host that shares
        this directory, NFS included (so a missing file is always found, ``check`` or not)."""
        return flock.held(self._full(path), timeout, path)

    def _full(self, path: str) -> str:
        return os.path.join(self.rootdirectory, path.lstrip("/"))


class _FileWriter(FileWriter):
    def __init__(self, file: BinaryIO, full_path: str) -> None:
        super().__init__(size=file.seek(0, os.SEEK_END))
        self._file = file
        self._full_path = full_path
        self._flushed = self._size
        self._dropped = _aligned(max(0, self._size - CACHED_TAIL))

    def _write(self, data: bytes) -> int:
        n = self._file.write(data)
        end = self._size + n
        if end - self._flushed >= WRITEBACK_STEP:
            self._start_writeback(end)
            self._drop_behind(end - CACHED_TAIL)
        return n

    def _close(self) -> None:
        # The tail since the last step too: a chunked upload's commit then finds its PATCHes
        # on disk instead of the last few MiB of each (half of a 16 MiB-chunk upload).
        try:
            if self._size > self._flushed:
                self._start_writeback(self._size)
            self._drop_behind(self._size - CACHED_TAIL)
        finally:
            self._file.close()

    def _start_writeback(self, end: int) -> None:
        self._file.flush()
        _start_writeback(self._file.fileno(), self._flushed, end - self._flushed)
        self._flushed = end

    def _drop_behind(self, end: int) -> None:
        end = _aligned(end)
        if end > self._dropped:
            _drop_from_cache(self._file.fileno(), self._dropped, end - self._dropped)
            self._dropped = end

    def _cancel(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._full_path)

    def _commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._flushed = self._size


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting for it.

    Large uploads then reach the disk while they are still arriving, and the fsync at commit
    has little left to do, instead of the whole blob.
    """
    if _sync_file_range is not None:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _aligned(offset: int) -> int:
    return offset - offset % DROP_ALIGN


def _drop_from_cache(fd: int, offset: int, length: int) -> None:
    """Wait until a written range is on disk, then take it out of the page cache.

    Without this a large upload claims new page-cache memory for every byte, which costs a
    page allocation per 4 KiB (on a VM whose host reclaims free memory, a fault on the host
    too: push ran 2x slower), and pushes out what pulls read. Dropped pages are reused at
    once by the next writes. The price: the first pull of a large blob reads it from disk.
    """
    if _sync_file_range is None:
        return
    if _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WAIT_ALL) != 0:
        # The write fails (503) rather than dropping pages that did not reach the disk.
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _load_sync_file_range():
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE_WRITE = 2
#: SYNC_FILE_RANGE_WAIT_BEFORE | WRITE | WAIT_AFTER: the range is on disk when the call returns.
_SYNC_FILE_RANGE_WAIT_ALL = 1 | 2 | 4
_sync_file_range = _load_sync_file_range()


def _rootdirectory(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidParameterError("rootdirectory", f"must be a non-empty string, got {value!r}")
    return value


def _maxthreads(value: Any) -> int:
    """Accept an integer or a decimal string as Go does: None is the default, below 25 is 25."""
    if value is None:
        return DEFAULT_MAXTHREADS
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameterError("maxthreads", f"must be an integer, got {value!r}")
    if value < MIN_MAXTHREADS:
        logger.warning(
            "storage.filesystem.maxthreads %d is below the minimum; using %d",
            value,
            MIN_MAXTHREADS,
        )
        return MIN_MAXTHREADS
    return value
