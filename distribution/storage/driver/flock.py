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
import stat
import tempfile
import time
from collections.abc import Iterator

from distribution.storage.driver.base import (
    LockTimeoutError,
    PathNotFoundError,
    StorageDriverError,
)

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

    A lock file per key in a folder of this user's in the temp dir, removed by its holder when
    done.
    """
    directory = _private_folder(f"registry-locks-{os.getuid()}")
    name = hashlib.sha256(key.encode()).hexdigest()[:40]
    with _holding(os.path.join(directory, name), timeout, key, create=True):
        yield


def _private_folder(name: str) -> str:
    """The folder ``name`` in the temp dir, made if missing, refused unless this user alone
    owns and writes it: another user of a shared ``/tmp`` who made it first would otherwise
    hold or remove the locks (a symbolic link, or a folder others may write)."""
    directory = os.path.join(tempfile.gettempdir(), name)
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise StorageDriverError(
            f"{directory} must be a folder of user {os.getuid()} that only it may open; "
            "remove it, or set TMPDIR to a private folder"
        )
    return directory


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
