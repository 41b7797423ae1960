"""Stored bytes on the UI's pages: the usage job's last report (:mod:`distribution.usage`).

The repositories page shows, per repository, the bytes its tags reach (worked out by
:mod:`distribution.ui.cache` from the manifests). What the registry *stores* per repository
and in total (blobs shared with other repositories counted apart, untagged manifests
included) is the usage job's to measure: the UI reads its report, again only when the job
wrote a new one, and looks for one at most every :data:`REFRESH` seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask

from distribution import usage
from distribution.config import Configuration
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError

log = logging.getLogger(__name__)

#: The ``app.extensions`` key of the UI's :class:`StoredUsage` (absent: usage is off).
EXTENSION = "distribution.ui.usage"
#: Seconds the UI trusts the report it read before it looks whether the job wrote another
#: (the job runs every minute by default).
REFRESH = 10.0


@dataclass(frozen=True)
class Usage:
    """Stored bytes: those no other repository shares, and those shared."""

    own: int
    shared: int = 0


class StoredUsage:
    """The figures of the usage job's last report, shared by the threads of a process."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self._lock = threading.Lock()
        self._checked = -REFRESH
        self._version: tuple[int, float] | None = None
        self._repositories: dict[str, Usage] = {}
        self._total: Usage | None = None

    def repository(self, name: str) -> Usage | None:
        """The usage of repository ``name`` as last measured, None if not measured yet."""
        self._refresh()
        return self._repositories.get(name)

    def total(self) -> Usage | None:
        """The usage of the whole registry as last measured."""
        self._refresh()
        return self._total

    def _refresh(self) -> None:
        if time.monotonic() - self._checked < REFRESH or not self._lock.acquire(blocking=False):
            return  # fresh enough, or another thread is reading: show what we have
        try:
            self._checked = time.monotonic()
            try:
                info = self.driver.stat(paths.USAGE_REPORT)
            except PathNotFoundError:
                return
            version = (info.size, info.mtime.timestamp())
            if version != self._version:
                report = usage.load_report(self.driver)
                if report is not None:
                    self._read(report)
                self._version = version
        except (StorageDriverError, OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ui: cannot read the usage report, keeping the last one: %r", exc)
        finally:
            self._lock.release()

    def _read(self, report: dict[str, Any]) -> None:
        self._repositories = {
            row["name"]: Usage(row["exclusive_bytes"], row["shared_bytes"])
            for row in report.get("repositories", [])
        }
        total = report.get("total", {})
        self._total = Usage(total.get("exclusive_bytes", 0), total.get("shared_bytes", 0))


def init_app(app: Flask, config: Configuration, driver: StorageDriver) -> None:
    """Show stored bytes when the usage job measures them."""
    if usage.settings.parse(config).enabled:
        app.extensions[EXTENSION] = StoredUsage(driver)


def provider(app: Flask) -> StoredUsage | None:
    return app.extensions.get(EXTENSION)
