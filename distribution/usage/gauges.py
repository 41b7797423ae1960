"""Prometheus gauges of usage and quotas, read from the usage job's summary at scrape time.

A scrape costs no storage walk: each process reads the summary file at most every
:data:`REFRESH` seconds. Every replica serves the same figures, whichever one runs the job.
Per namespace (not per repository, to keep the series few):

* ``registry_usage_bytes{namespace}``, ``registry_usage_exclusive_bytes{namespace}``,
  ``registry_usage_repositories{namespace}``, ``registry_usage_tags{namespace}``,
  ``registry_usage_manifests{namespace}``;
* ``registry_usage_total_bytes``, ``registry_usage_shared_bytes``, ``registry_usage_stored_bytes``
  (``blobs/`` at the last full scan, garbage included) and ``registry_usage_updated_seconds``
  (when the figures last changed or were recounted, Unix time);
* ``registry_quota_limit_bytes{repositories}`` and ``registry_quota_used_bytes{repositories}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError

log = logging.getLogger(__name__)

#: Seconds a process serves the summary it read before reading it again.
REFRESH = 30.0

_NAMESPACE_GAUGES = (
    ("bytes", "Bytes of the blobs the namespace's manifests reference, each once."),
    ("exclusive_bytes", "Bytes of the namespace's blobs no other namespace references."),
    ("repositories", "Repositories in the namespace."),
    ("tags", "Tags in the namespace."),
    ("manifests", "Manifests in the namespace."),
)


class UsageCollector(Collector):
    """Collects the gauges from the summary in storage (nothing before the job's first run)."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver
        self._summary: dict[str, Any] | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        summary = self._current()
        if summary is None:
            return
        namespaces = summary.get("namespaces", [])
        for key, doc in _NAMESPACE_GAUGES:
            gauge = GaugeMetricFamily(f"registry_usage_{key}", doc, labels=["namespace"])
            for figures in namespaces:
                gauge.add_metric([figures["name"]], figures.get(key, 0))
            yield gauge
        total = summary.get("total", {})
        for name, key, doc in (
            ("total_bytes", "bytes", "Bytes of every blob a manifest references, each once."),
            ("shared_bytes", "shared_bytes", "Bytes of blobs two or more repositories use."),
            ("stored_bytes", "stored_bytes", "Bytes in blobs/ at the last full scan."),
        ):
            yield GaugeMetricFamily(f"registry_usage_{name}", doc, value=total.get(key, 0))
        yield GaugeMetricFamily(
            "registry_usage_updated_seconds",
            "When the usage figures last changed or were recounted (Unix time).",
            value=summary.get("generated_unix", 0),
        )
        limit = GaugeMetricFamily(
            "registry_quota_limit_bytes", "The quota's limit.", labels=["repositories"]
        )
        used = GaugeMetricFamily(
            "registry_quota_used_bytes",
            "Bytes the quota's repositories use.",
            labels=["repositories"],
        )
        for quota in summary.get("quotas", []):
            limit.add_metric([quota["repositories"]], quota["limit"])
            used.add_metric([quota["repositories"]], quota["bytes"])
        yield limit
        yield used

    def _current(self) -> dict[str, Any] | None:
        with self._lock:
            if time.monotonic() - self._read_at >= REFRESH:
                self._summary = self._read()
                self._read_at = time.monotonic()
            return self._summary

    def _read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.driver.get_content(paths.USAGE_SUMMARY))
        except PathNotFoundError:
            return None
        except (StorageDriverError, ValueError) as exc:
            log.warning("usage: cannot read the summary for metrics: %s", exc)
            return self._summary
