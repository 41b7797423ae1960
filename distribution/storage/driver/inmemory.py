"""A driver that keeps everything in a tree in process memory, for tests and development.

Nothing is shared between processes and nothing survives a restart; never use it for a
registry with more than one worker.
"""

from __future__ import annotations

import errno
import io
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, BinaryIO

from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    PathNotFoundError,
    StorageDriver,
)


def from_parameters(parameters: Mapping[str, Any]) -> InMemoryDriver:
    """Build the driver; like Go's inmemory driver it takes no parameters."""
    return InMemoryDriver()


class InMemoryDriver(StorageDriver):
    """A tree of directories and files guarded by one lock.

    Readers get a snapshot of the file taken when they are opened.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._root = _Dir()

    @property
    def name(self) -> str:
        return "inmemory"

    def get_content(self, path: str) -> bytes:
        with self._lock:
            return bytes(self._file(path).data)

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        with self._lock:
            self._create(path, _File(bytearray(data)))

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        with self._lock:
            data = bytes(self._file(path).data)
        if offset > len(data):
            raise InvalidOffsetError(path, offset)
        f = io.BytesIO(data)
        f.seek(offset)
        return f

    def writer(self, path: str, append: bool = False) -> FileWriter:
        with self._lock:
            node = self._file(path) if append else self._create(path, _File(bytearray()))
            return _Writer(self, path, node)

    def stat(self, path: str) -> FileInfo:
        with self._lock:
            node = self._find(path)
            if node is None:
                raise PathNotFoundError(path)
            is_dir = isinstance(node, _Dir)
            size = 0 if is_dir else len(node.data)
            return FileInfo(path=path, size=size, mtime=node.mtime, is_dir=is_dir)

    def list(self, path: str) -> list[str]:
        with self._lock:
            node = self._find(path)
            if not isinstance(node, _Dir):
                raise PathNotFoundError(path)
            prefix = path.rstrip("/")
            return sorted(f"{prefix}/{name}" for name in node.children)

    def move(self, src: str, dst: str) -> None:
        with self._lock:
            node = self._find(src)
            if node is None:
                raise PathNotFoundError(src)
            if dst.startswith(src + "/"):
                raise OSError(errno.EINVAL, f"cannot move {src} into itself: {dst}")
            if src != dst:
                self._create(dst, node)
                self._unlink(src)

    def delete(self, path: str) -> None:
        with self._lock:
            if self._find(path) is None:
                raise PathNotFoundError(path)
            self._unlink(path)

    def _find(self, path: str) -> _Dir | _File | None:
        node: _Dir | _File | None = self._root
        for name in _segments(path):
            if not isinstance(node, _Dir):
                return None
            node = node.children.get(name)
        return node

    def _file(self, path: str) -> _File:
        node = self._find(path)
        if not isinstance(node, _File):
            raise PathNotFoundError(path)
        return node

    def _create(self, path: str, node: _Dir | _File) -> _Dir | _File:
        """Put ``node`` at ``path``, replacing a file there and making missing parents."""
        *parents, name = _segments(path)
        parent = self._root
        for segment in parents:
            child = parent.children.setdefault(segment, _Dir())
            if not isinstance(child, _Dir):
                raise NotADirectoryError(f"not a directory: {segment} in {path}")
            parent = child
        if isinstance(parent.children.get(name), _Dir) and isinstance(node, _File):
            raise IsADirectoryError(f"is a directory: {path}")
        parent.children[name] = node
        parent.mtime = _now()
        return node

    def _unlink(self, path: str, node: _Dir | _File | None = None) -> None:
        """Remove ``path``; with ``node``, only if ``path`` still holds that node."""
        *parents, name = _segments(path)
        parent = self._find("/" + "/".join(parents))
        if isinstance(parent, _Dir) and (node is None or parent.children.get(name) is node):
            parent.children.pop(name, None)
            parent.mtime = _now()


class _File:
    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.mtime = _now()


class _Dir:
    def __init__(self) -> None:
        self.children: dict[str, _Dir | _File] = {}
        self.mtime = _now()


class _Writer(FileWriter):
    """Appends straight into the tree's bytearray, so a later ``append=True`` continues it."""

    def __init__(self, driver: InMemoryDriver, path: str, node: _File) -> None:
        super().__init__(size=len(node.data))
        self._driver = driver
        self._path = path
        self._node = node

    def _write(self, data: bytes) -> int:
        with self._driver._lock:
            self._node.data += data
            self._node.mtime = _now()
        return len(data)

    def _close(self) -> None:
        pass

    def _cancel(self) -> None:
        with self._driver._lock:
            self._driver._unlink(self._path, self._node)

    def _commit(self) -> None:
        pass


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _now() -> datetime:
    return datetime.now(UTC)
