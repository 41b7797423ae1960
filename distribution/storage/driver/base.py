"""The storage driver contract, mirroring distribution's Go ``storagedriver.StorageDriver``.

Every backend (filesystem, inmemory, later GCS and Azure) implements :class:`StorageDriver`
and passes the one shared test suite. Paths are absolute, ``/``-separated and checked by
:class:`~distribution.storage.driver.checked.CheckedDriver` before a driver sees them, so
drivers stay plain.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import BinaryIO


@dataclass(frozen=True)
class FileInfo:
    """What :meth:`StorageDriver.stat` knows about a path; ``size`` is 0 for directories."""

    path: str
    size: int
    mtime: datetime
    is_dir: bool


class StorageDriverError(Exception):
    """Any storage failure; ``driver`` names the backend, filled in by the checking wrapper."""

    def __init__(self, message: str, driver: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.driver = driver

    def __str__(self) -> str:
        return f"{self.driver}: {self.message}" if self.driver else self.message


class PathNotFoundError(StorageDriverError):
    """Nothing (or not the kind of thing asked for) exists at ``path``."""

    def __init__(self, path: str, driver: str = "") -> None:
        super().__init__(f"path not found: {path}", driver)
        self.path = path


class InvalidPathError(StorageDriverError):
    """``path`` is not an absolute path made of ``[A-Za-z0-9._-]`` segments."""

    def __init__(self, path: str, driver: str = "") -> None:
        super().__init__(f"invalid path: {path!r}", driver)
        self.path = path


class InvalidOffsetError(StorageDriverError):
    """A reader was asked to start before the beginning or past the end of a file."""

    def __init__(self, path: str, offset: int, driver: str = "") -> None:
        super().__init__(f"invalid offset: {offset} for path: {path}", driver)
        self.path = path
        self.offset = offset


class LockTimeoutError(StorageDriverError):
    """A lock asked for with :meth:`StorageDriver.lock` stayed held by another in time."""

    def __init__(self, path: str, driver: str = "") -> None:
        super().__init__(f"lock busy: {path}", driver)
        self.path = path


class InvalidParameterError(ValueError):
    """A driver parameter from the config is unusable; the message names the parameter."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class SkipDir(Exception):
    """Raised by a :meth:`StorageDriver.walk` callback to prune the walk.

    For a directory, the walk does not descend into it; for a file, the walk ends (as in
    distribution's ``WalkFallback``).
    """


WalkFn = Callable[[FileInfo], None]
#: ``skip(folder)``: whether :meth:`StorageDriver.files` leaves ``folder`` out.
SkipFn = Callable[[str], bool]


def skipped(path: str, top: str, skip: SkipFn) -> bool:
    """Whether a folder between ``top`` and the file at ``path`` is one ``skip`` leaves out:
    for drivers that list everything under a prefix and filter afterwards."""
    folder = top.rstrip("/")
    for part in path[len(folder) + 1 :].split("/")[:-1]:
        folder = f"{folder}/{part}"
        if skip(folder):
            return True
    return False


class FileWriter(abc.ABC):
    """A streaming writer that can be closed and later resumed with ``append=True``.

    The base class keeps the state machine (write until commit/close/cancel) and the size, so
    drivers only move bytes. Closing twice is harmless; a ``with`` block closes, keeping what
    was written so an upload can resume.
    """

    def __init__(self, size: int = 0) -> None:
        self._size = size
        self._closed = False
        self._committed = False
        self._cancelled = False

    @property
    def size(self) -> int:
        """Bytes in the file, including those written before this writer was opened."""
        return self._size

    def write(self, data: bytes) -> int:
        self._check_writable()
        n = self._write(data)
        self._size += n
        return n

    def close(self) -> None:
        """Flush and release the writer; the content stays and may be appended to later."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def cancel(self) -> None:
        """Give up: the file at the writer's path is removed, earlier appends included."""
        if self._closed:
            raise StorageDriverError("writer already closed")
        self._closed = self._cancelled = True
        self._cancel()

    def commit(self) -> None:
        """Flush and make the content durable; no writes are accepted afterwards."""
        self._check_writable()
        self._commit()
        self._committed = True

    def __enter__(self) -> FileWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_writable(self) -> None:
        if self._cancelled:
            raise StorageDriverError("writer already cancelled")
        if self._closed:
            raise StorageDriverError("writer already closed")
        if self._committed:
            raise StorageDriverError("writer already committed")

    @abc.abstractmethod
    def _write(self, data: bytes) -> int:
        """Write all of ``data`` and return its length."""

    @abc.abstractmethod
    def _close(self) -> None:
        """Flush and release resources (called once, committed or not)."""

    @abc.abstractmethod
    def _cancel(self) -> None:
        """Release resources and remove the file."""

    @abc.abstractmethod
    def _commit(self) -> None:
        """Flush and make durable."""


class StorageDriver(abc.ABC):
    """A key/value view of storage where keys look like absolute paths.

    Drivers trust their paths (the checking wrapper validates them) and raise
    :class:`PathNotFoundError` for anything missing; other failures may surface as
    ``OSError``, which the wrapper turns into :class:`StorageDriverError`.
    """

    #: Whether :meth:`version` dates directories and files (local filesystems); object stores
    #: have no directories to date, and callers of theirs list and read every time.
    directory_versions: bool = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name the driver is registered and configured under."""

    def verify(self) -> None:
        """Raise :class:`StorageDriverError` (or :class:`InvalidParameterError`, naming the
        parameter) when the storage cannot be used: a bucket or container missing, credentials
        refused, a service that does not answer. Called once at start-up by
        :func:`~distribution.storage.driver.factory.create`; nothing to check by default."""
        return None

    @abc.abstractmethod
    def get_content(self, path: str) -> bytes:
        """Return the whole file; meant for small files (links, manifests).

        A missing path or a directory raises :class:`PathNotFoundError`.
        """

    @abc.abstractmethod
    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Store ``data`` atomically: readers see the old content or the new, never a mix.

        Durably, unless ``durable`` is false: then a crash of the machine may lose the write
        (never tear it), which suits state a later request can do without. Drivers whose
        every write is durable ignore it.
        """

    @abc.abstractmethod
    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        """Open the file for streaming, positioned at ``offset`` (``== size`` reads nothing).

        An offset past the end raises :class:`InvalidOffsetError`. The caller closes it.
        """

    @abc.abstractmethod
    def writer(self, path: str, append: bool = False) -> FileWriter:
        """Open a streaming writer, truncating the file, or continuing it with ``append``.

        ``append`` resumes a file that any writer, in any process, closed earlier; with no
        file there it raises :class:`PathNotFoundError` (Go's drivers create one instead).
        """

    @abc.abstractmethod
    def stat(self, path: str) -> FileInfo:
        """Describe the file or directory at ``path``."""

    @abc.abstractmethod
    def list(self, path: str) -> list[str]:
        """Return the absolute paths of the direct children of a directory, sorted.

        A missing path or a file raises :class:`PathNotFoundError`, except that ``/`` of an
        empty driver is ``[]``.
        """

    def names(self, path: str) -> list[str]:
        """The names of the direct children of a directory, sorted: :meth:`list` without the
        folder's path in front, which a driver listing names (the filesystem) never builds.

        Raises :class:`PathNotFoundError` as :meth:`list` does.
        """
        start = len(path.rstrip("/")) + 1
        return [entry[start:] for entry in self.list(path)]

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None:
        """Move a file, replacing ``dst`` if it exists and creating its parents."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove a file, or a directory and everything below it."""

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        """Return a URL a client can fetch ``path`` from directly, or None to serve it here."""
        return None

    def version(self, path: str) -> Hashable | None:
        """A value that changes whenever the entries of the directory at ``path`` change, or
        the content of the file at ``path``, if the driver can tell cheaply (the filesystem:
        inode, modification time and size); None when it cannot (no versions here, or a
        change too recent to date apart from the next), and callers must list or read. Lets a
        cache stay correct whatever wrote the change: another worker, replica or the Go
        registry. A driver that looks raises :class:`PathNotFoundError` when nothing is at
        ``path``."""
        return None

    @contextlib.contextmanager
    def lock(self, path: str, timeout: float, check: bool = True) -> Iterator[None]:
        """Hold an exclusive lock on the file at ``path`` for the ``with`` block.

        It excludes every other holder of the same path's lock, in any thread or process,
        wherever this driver can: this default, on one host (a lock file per path); a driver
        whose storage can lock across hosts does so (filesystem: ``flock`` on the file itself,
        which NFS carries). Raises :class:`PathNotFoundError` when no file is there once the
        lock is held, :class:`LockTimeoutError` when another keeps it past ``timeout`` seconds.

        ``check=False`` is for a holder whose first act is to read the file: that read looks
        for it, so the driver need not (a cloud driver's look costs requests). A driver whose
        lock is the file itself still raises :class:`PathNotFoundError` without one.
        """
        from distribution.storage.driver import flock  # it raises this module's errors

        with flock.host_lock(f"{self.name}:{path}", timeout):
            if check and self.stat(path).is_dir:
                raise PathNotFoundError(path)
            yield

    def walk(self, path: str, fn: WalkFn) -> None:
        """Call ``fn`` for every file and directory below ``path``, depth-first, sorted.

        Built on :meth:`list` and :meth:`stat` so every driver gets it; a driver with a
        cheaper way to enumerate may override it. Paths deleted while walking are skipped.
        """
        self._walk(path, fn)

    def has_children(self, path: str) -> bool:
        """Whether the folder ``path`` holds anything; False when it is missing.

        Built on :meth:`list`; the drivers stop at the first entry (the cloud ones ask for a
        page of one or two), which spares the catalog a listing of every tag of a large
        repository to learn that it has one.
        """
        try:
            return bool(self.list(path))
        except PathNotFoundError:
            return False

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        """Every file below ``path``, in no set order, with its size and time, leaving out the
        folders ``skip`` is true for (and all below them); nothing when ``path`` is missing.

        Built on :meth:`list` and :meth:`stat` so every driver gets it; a driver that can
        enumerate more cheaply overrides it: the cloud drivers list every object under a prefix
        a page at a time (and drop what ``skip`` rules out), the filesystem scans directories.
        """
        try:
            children = self.list(path)
        except PathNotFoundError:
            return
        for child in children:
            try:
                info = self.stat(child)
            except PathNotFoundError:
                continue
            if not info.is_dir:
                yield info
            elif not skip(child):
                yield from self.files(child, skip)

    def _walk(self, path: str, fn: WalkFn) -> bool:
        for child in sorted(self.list(path)):
            try:
                info = self.stat(child)
            except PathNotFoundError:
                continue
            try:
                fn(info)
            except SkipDir:
                if not info.is_dir:
                    return False
                continue
            if info.is_dir and not self._walk(child, fn):
                return False
        return True
