"""The check a push asks: is any quota covering this repository used up?

Each process reads the usage job's summary (a small file) at most every :data:`REFRESH`
seconds, so a request costs no storage call; limits come from the current configuration, so
a raised limit counts at once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from distribution import errors
from distribution.quotas.rules import Quota
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError

log = logging.getLogger(__name__)

#: Seconds a process trusts the summary it read.
REFRESH = 5.0


class QuotaGuard:
    """Refuses pushes into repositories whose quota is used up."""

    def __init__(self, driver: StorageDriver, quotas: tuple[Quota, ...]) -> None:
        self.driver = driver
        self.quotas = quotas
        self._used: dict[str, int] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def check(self, name: str) -> None:
        """Raise 403 ``DENIED`` when a quota matching ``name`` is at or over its limit."""
        matching = [quota for quota in self.quotas if quota.matches(name)]
        if not matching:
            return
        used = self._current()
        for quota in matching:
            bytes_used = used.get(quota.text)
            if bytes_used is not None and bytes_used >= quota.limit:
                raise errors.Denied(
                    f"quota exceeded: {quota.text} uses {human(bytes_used)} of its "
                    f"{human(quota.limit)} limit; delete images to push again",
                    detail={
                        "repositories": quota.text,
                        "limit": quota.limit,
                        "used": bytes_used,
                    },
                )

    def _current(self) -> dict[str, int]:
        if time.monotonic() - self._read_at < REFRESH:
            return self._used
        with self._lock:
            if time.monotonic() - self._read_at >= REFRESH:
                self._used = self._read()
                self._read_at = time.monotonic()
        return self._used

    def _read(self) -> dict[str, int]:
        """Bytes used per quota, as the last refresh counted them ({} before the first)."""
        try:
            summary: Any = json.loads(self.driver.get_content(paths.USAGE_SUMMARY))
            return {str(q["repositories"]): int(q["bytes"]) for q in summary.get("quotas", [])}
        except PathNotFoundError:
            return {}
        except (StorageDriverError, ValueError, KeyError, TypeError) as exc:
            log.warning("quotas: cannot read the usage summary, keeping the last one: %s", exc)
            return self._used


def human(size: int) -> str:
    """Bytes in binary units, as limits are usually written (``51.2 GiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
