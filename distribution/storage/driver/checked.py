"""The wrapper every configured driver runs behind (distribution's ``storage/driver/base``).

It rejects bad paths before the driver sees them, tags errors with the driver's name and times
each operation, so each driver can trust its input and stay free of boilerplate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Hashable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import BinaryIO

from distribution import metrics, tracing
from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidPathError,
    SkipFn,
    StorageDriver,
    StorageDriverError,
    WalkFn,
)

#: distribution's path regexp, without ``.`` and ``..`` segments.
_PATH = re.compile(r"(?:/(?!\.\.?(?:/|$))[A-Za-z0-9._-]+)+")


def is_valid_path(path: str) -> bool:
    """Whether ``path`` matches distribution's path regexp and has no ``.``/``..`` segments.

    Go accepts ``/a/../b``; on a filesystem that escapes its directory, so we refuse it.
    """
    return _PATH.fullmatch(path) is not None


class CheckedDriver(StorageDriver):
    """Validates paths and offsets, then delegates to ``driver``.

    ``/`` is accepted only where distribution accepts it: ``stat``, ``list`` and ``walk``.
    """

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    @property
    def name(self) -> str:
        return self.driver.name

    @property
    def directory_versions(self) -> bool:  # type: ignore[override]
        return self.driver.directory_versions

    def verify(self) -> None:
        self.driver.verify()

    def get_content(self, path: str) -> bytes:
        self._check(path)
        with _tagged(self.name, "GetContent", path):
            return self.driver.get_content(path)

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        self._check(path)
        with _tagged(self.name, "PutContent", path):
            self.driver.put_content(path, data, durable=durable)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        self._check(path)
        if offset < 0:
            raise InvalidOffsetError(path, offset, self.name)
        with _tagged(self.name, "Reader", path):
            return self.driver.reader(path, offset)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._check(path)
        with _tagged(self.name, "Writer", path):
            return _CheckedWriter(self.driver.writer(path, append), self.name)

    def stat(self, path: str) -> FileInfo:
        self._check(path, root_ok=True)
        with _tagged(self.name, "Stat", path):
            return self.driver.stat(path)

    def list(self, path: str) -> list[str]:
        self._check(path, root_ok=True)
        with _tagged(self.name, "List", path):
            return self.driver.list(path)

    def names(self, path: str) -> list[str]:
        self._check(path, root_ok=True)
        with _tagged(self.name, "List", path):
            return self.driver.names(path)

    def has_children(self, path: str) -> bool:
        self._check(path, root_ok=True)
        with _tagged(self.name, "List", path):
            return self.driver.has_children(path)

    def move(self, src: str, dst: str) -> None:
        self._check(src)
        self._check(dst)
        with _tagged(self.name, "Move", src):
            self.driver.move(src, dst)

    def delete(self, path: str) -> None:
        self._check(path)
        with _tagged(self.name, "Delete", path):
            self.driver.delete(path)

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self._check(path)
        with _tagged(self.name, "URLFor", path):
            return self.driver.redirect_url(path, method)

    def version(self, path: str) -> Hashable | None:
        """Traced and timed as Go's ``Stat``, which is what it costs (the filesystem: one)."""
        self._check(path)
        with _tagged(self.name, "Stat", path):
            return self.driver.version(path)

    @contextmanager
    def lock(self, path: str, timeout: float, check: bool = True) -> Iterator[None]:
        """Only taking and letting go of the lock are the driver's: errors of the block pass."""
        self._check(path)
        held = ExitStack()
        with _tagged(self.name, None):
            held.enter_context(self.driver.lock(path, timeout, check))
        try:
            yield
        finally:
            with _tagged(self.name, None):
                held.close()

    def walk(self, path: str, fn: WalkFn) -> None:
        self._check(path, root_ok=True)
        with _tagged(self.name, None):
            self.driver.walk(path, fn)

    def files(self, path: str, skip: SkipFn = lambda folder: False) -> Iterator[FileInfo]:
        self._check(path, root_ok=True)
        found = self.driver.files(path, skip)
        while True:
            with _tagged(self.name, None):
                info = next(found, None)
            if info is None:
                return
            yield info

    def _check(self, path: str, root_ok: bool = False) -> None:
        if not (is_valid_path(path) or (root_ok and path == "/")):
            raise InvalidPathError(path, self.name)


class _CheckedWriter(FileWriter):
    """A driver's writer whose errors name the driver, as every other call's do.

    A full disk during an upload is then a storage error (503 and one log line), not an
    unexpected exception.
    """

    def __init__(self, writer: FileWriter, driver_name: str) -> None:
        super().__init__(writer.size)
        self._writer = writer
        self._driver_name = driver_name

    @property
    def size(self) -> int:
        """The driver's writer's: a write that fails may still have stored part of its data
        (S3 keeps the parts sent before the failure)."""
        return self._writer.size

    def _write(self, data: bytes) -> int:
        with _tagged(self._driver_name, None):
            return self._writer.write(data)

    def _close(self) -> None:
        with _tagged(self._driver_name, None):
            self._writer.close()

    def _cancel(self) -> None:
        with _tagged(self._driver_name, None):
            self._writer.cancel()

    def _commit(self) -> None:
        with _tagged(self._driver_name, None):
            self._writer.commit()


class _tagged:
    """Name the driver in its errors; I/O errors become :class:`StorageDriverError`.

    Only ``OSError`` is wrapped, so exceptions raised by a walk callback pass unchanged.
    The time taken goes to ``registry_storage_action_seconds`` under Go's name for the
    ``action`` when metrics are recorded, and into a trace span of that name when traces are on;
    a walk or a writer's call (None) is neither timed nor traced, as in Go. A class, not a
    generator: every storage call of every request passes here.
    """

    __slots__ = ("action", "driver_name", "span", "started")

    def __init__(self, driver_name: str, action: str | None, path: str = "") -> None:
        self.driver_name = driver_name
        self.span: AbstractContextManager[object] | None = (
            tracing.storage_span(action, driver_name, path) if action else None
        )
        self.action = action if metrics.recording() else None
        self.started = time.perf_counter() if self.action is not None else 0.0

    def __enter__(self) -> None:
        if self.span is not None:
            self.span.__enter__()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: object
    ) -> None:
        if self.span is not None:
            self.span.__exit__(kind, exc, traceback)  # type: ignore[arg-type]
        if self.action is not None:
            elapsed = time.perf_counter() - self.started
            metrics.storage_action.labels(self.driver_name, self.action).observe(elapsed)
        if isinstance(exc, StorageDriverError):
            exc.driver = self.driver_name
        elif isinstance(exc, OSError):
            raise StorageDriverError(str(exc), self.driver_name) from exc
