"""``flock`` locks for :meth:`StorageDriver.lock`, waited for with a deadline.

A lock on a file that can be renamed or removed while others wait for it (an upload's data file
becomes a blob; a lock file is removed by its last holder) is only good if, once held, the path
still names the locked file. Otherwise the waiter holds a lock nobody else will ask for, so it
lets go and locks what the path names now, or finds nothing there.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator

from distribution.storage.driver.base import LockTimeoutError, PathNotFoundError

#: First and longest pause between two tries of a lock held by someone else.
FIRST_PAUSE = 0.002
LONGEST_PAUSE = 0.05


@contextlib.contextmanager
def held(full_path: str, timeout: float, path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the existing file ``full_path`` (``path`` to the driver).

    Opened for writing, so that NFS, which carries ``flock`` as a POSIX lock, grants it.
    """
    with _holding(full_path, timeout, path, create=False):
        yield


@contextlib.contextmanager
def host_lock(key: str, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock named ``key`` among every process of this host.

    A lock file per key in the temp dir, removed by its holder when done.
    """
    directory = os.path.join(tempfile.gettempdir(), f"registry-locks-{os.getuid()}")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:40]
    with _holding(os.path.join(directory, name), timeout, key, create=True):
        yield


@contextlib.contextmanager
def _holding(full_path: str, timeout: float, path: str, create: bool) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    while True:
        fd = _open(full_path, path, create)
        try:
            _wait(fd, deadline, path)
            if _names(full_path, fd):
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        if create:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(full_path)
        os.close(fd)


def _open(full_path: str, path: str, create: bool) -> int:
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        return os.open(full_path, flags, 0o600)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        raise PathNotFoundError(path) from None


def _wait(fd: int, deadline: float, path: str) -> None:
    pause = FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeoutError(path) from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, LONGEST_PAUSE)


def _names(full_path: str, fd: int) -> bool:
    """Whether ``full_path`` still names the file open at ``fd``."""
    try:
        named = os.stat(full_path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)
