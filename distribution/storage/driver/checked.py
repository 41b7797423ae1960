"""The wrapper every configured driver runs behind (distribution's ``storage/driver/base``).

It rejects bad paths before the driver sees them, tags errors with the driver's name and times
each operation, so each driver can trust its input and stay free of boilerplate.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from distribution import metrics
from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidPathError,
    StorageDriver,
    StorageDriverError,
    WalkFn,
)

_PATH = re.compile(r"(/[A-Za-z0-9._-]+)+")


def is_valid_path(path: str) -> bool:
    """Whether ``path`` matches distribution's path regexp and has no ``.``/``..`` segments.

    Go accepts ``/a/../b``; on a filesystem that escapes its directory, so we refuse it.
    """
    return _PATH.fullmatch(path) is not None and not any(
        segment in (".", "..") for segment in path.split("/")
    )


class CheckedDriver(StorageDriver):
    """Validates paths and offsets, then delegates to ``driver``.

    ``/`` is accepted only where distribution accepts it: ``stat``, ``list`` and ``walk``.
    """

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    @property
    def name(self) -> str:
        return self.driver.name

    def get_content(self, path: str) -> bytes:
        self._check(path)
        with self._tagged("GetContent"):
            return self.driver.get_content(path)

    def put_content(self, path: str, data: bytes) -> None:
        self._check(path)
        with self._tagged("PutContent"):
            self.driver.put_content(path, data)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        self._check(path)
        if offset < 0:
            raise InvalidOffsetError(path, offset, self.name)
        with self._tagged("Reader"):
            return self.driver.reader(path, offset)

    def writer(self, path: str, append: bool = False) -> FileWriter:
        self._check(path)
        with self._tagged("Writer"):
            return self.driver.writer(path, append)

    def stat(self, path: str) -> FileInfo:
        self._check(path, root_ok=True)
        with self._tagged("Stat"):
            return self.driver.stat(path)

    def list(self, path: str) -> list[str]:
        self._check(path, root_ok=True)
        with self._tagged("List"):
            return self.driver.list(path)

    def move(self, src: str, dst: str) -> None:
        self._check(src)
        self._check(dst)
        with self._tagged("Move"):
            self.driver.move(src, dst)

    def delete(self, path: str) -> None:
        self._check(path)
        with self._tagged("Delete"):
            self.driver.delete(path)

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        self._check(path)
        with self._tagged("URLFor"):
            return self.driver.redirect_url(path, method)

    def walk(self, path: str, fn: WalkFn) -> None:
        self._check(path, root_ok=True)
        with self._tagged(None):
            self.driver.walk(path, fn)

    def _check(self, path: str, root_ok: bool = False) -> None:
        if not (is_valid_path(path) or (root_ok and path == "/")):
            raise InvalidPathError(path, self.name)

    @contextmanager
    def _tagged(self, action: str | None) -> Iterator[None]:
        """Name the driver in its errors; I/O errors become :class:`StorageDriverError`.

        Only ``OSError`` is wrapped, so exceptions raised by a walk callback pass unchanged.
        The time taken goes to ``registry_storage_action_seconds`` under Go's name for the
        ``action``; a walk (None) is not timed, as in Go.
        """
        started = time.perf_counter()
        try:
            yield
        except StorageDriverError as exc:
            exc.driver = self.name
            raise
        except OSError as exc:
            raise StorageDriverError(str(exc), self.name) from exc
        finally:
            if action is not None:
                elapsed = time.perf_counter() - started
                metrics.storage_action.labels(self.name, action).observe(elapsed)
