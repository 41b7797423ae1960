"""Prometheus metrics, named as the Go registry names them (namespace ``registry``).

Go's series keep their names, labels and buckets, so dashboards built for ``registry:2`` keep
working: ``registry_http_requests_total{handler,code,method}``,
``registry_http_request_duration_seconds{handler,method}``,
``registry_http_{request,response}_size_bytes{handler}``,
``registry_http_in_flight_requests{handler}``, ``registry_storage_action_seconds{driver,action}``
and ``registry_storage_cache_{requests,hits,errors}_total``. Ours on top:
``registry_storage_cache_misses_total``, ``registry_http_uploads_in_progress`` and, with access
rules, ``registry_access_decisions_total{action,result}``.

Under gunicorn the workers are separate processes, so the metrics use prometheus-client's
multiprocess mode: :func:`start_multiprocess` runs in the master before any worker forks and
points every process at one directory of per-process files, which :func:`exposition` merges.
A metric keeps the storage it was made with, so the metrics here are built on first use (in a
worker) and built afresh if the master had made them before choosing the directory; use them
as ``metrics.<name>``, never ``from distribution.metrics import <name>``.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.registry import Collector

NAMESPACE = "registry"

#: docker/go-metrics' buckets for HTTP request latencies, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60)
#: docker/go-metrics' buckets for request and response sizes: 1 KiB to 2 GiB, doubling.
SIZE_BUCKETS = tuple(1024 * 2**i for i in range(22))

#: The environment variable prometheus-client reads to find the multiprocess directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Go's route names for our blueprints: the ``handler`` label of the HTTP metrics.
ROUTES = {
    "base": "base",
    "manifests": "manifest",
    "tags": "tags",
    "catalog": "catalog",
    "blobs": "blob",
    "uploads": "blob_upload_chunk",
    "referrers": "referrers",
}
#: Endpoints whose route differs from their blueprint's; None leaves a request uncounted.
ENDPOINT_ROUTES: dict[str, str | None] = {
    "uploads.start_upload": "blob_upload",
    "base.root": None,  # Go's load-balancer probe sits outside its instrumented router
}

_lock = threading.Lock()
_built = False
_registry = CollectorRegistry()
_metric_names: list[str] = []
#: Collectors other packages add (the usage figures), by name; asked at every exposition.
_collectors: dict[str, Collector] = {}


def route_name(endpoint: str | None) -> str | None:
    """The ``handler`` label for a Flask endpoint: Go's route name, else the blueprint's name.

    Requests that matched no route (404, 405) have no endpoint and are not counted, as in Go.
    """
    if not endpoint:
        return None
    if endpoint in ENDPOINT_ROUTES:
        return ENDPOINT_ROUTES[endpoint]
    blueprint = endpoint.partition(".")[0]
    return ROUTES.get(blueprint, blueprint)


class CacheLookups:
    """Blob descriptor cache lookups: ``metrics.cache_lookups.labels(result="hit").inc()``.

    ``result`` is ``hit``, ``miss`` or ``error`` (the cache failed; the caller fell back to
    storage). Each lookup counts in Go's ``registry_storage_cache_requests_total`` and, by
    result, in ``..._hits_total``, ``..._misses_total`` or ``..._errors_total``.
    """

    RESULTS = ("hit", "miss", "error")

    def __init__(self, requests: Counter, by_result: dict[str, Counter]) -> None:
        self._requests = requests
        self._by_result = by_result

    def labels(self, result: str) -> _CacheLookup:
        if result not in self._by_result:
            raise ValueError(f"cache lookup result must be one of {self.RESULTS}, not {result!r}")
        return _CacheLookup(self._requests, self._by_result[result])


def start_multiprocess(directory: str | None = None) -> str:
    """Share metrics between this process and the workers it will fork; return the directory.

    Uses ``directory`` (the operator's ``PROMETHEUS_MULTIPROC_DIR``), emptied of old metric
    files, or else a new private temporary directory.
    """
    if directory:
        os.makedirs(directory, exist_ok=True)
        _remove_metric_files(directory)
    else:
        directory = tempfile.mkdtemp(prefix="registry-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    # prometheus-client picks its value storage when first imported; pick again now.
    values.ValueClass = values.get_value_class()
    _discard()
    return directory


def stop_multiprocess(directory: str, private: bool) -> None:
    """Remove the metric files at exit; the whole directory if it was our private one."""
    if private:
        shutil.rmtree(directory, ignore_errors=True)
    else:
        _remove_metric_files(directory)


def process_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (in-flight requests, uploads in progress)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def add_collector(name: str, collector: Collector) -> None:
    """Serve ``collector``'s metrics too; a later collector of the same ``name`` replaces it."""
    _collectors[name] = collector


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's metrics, and its content type."""
    _build()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = _registry
    body = generate_latest(registry)
    if _collectors:
        extra = CollectorRegistry()
        for collector in list(_collectors.values()):
            extra.register(collector)
        body += generate_latest(extra)
    return body, CONTENT_TYPE_LATEST


def __getattr__(name: str) -> Any:
    """Build the metrics when one is first used (see the module docstring)."""
    if name.startswith("__"):
        raise AttributeError(name)
    _build()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


class _CacheLookup:
    def __init__(self, requests: Counter, result: Counter) -> None:
        self._requests = requests
        self._result = result

    def inc(self) -> None:
        self._requests.inc()
        self._result.inc()


def _build() -> None:
    global _built, _registry
    with _lock:
        if _built:
            return
        _registry = CollectorRegistry()
        created = _create(_registry)
        _metric_names[:] = list(created)
        globals().update(created)
        _built = True


def _discard() -> None:
    """Forget the metrics built so far; the next use builds them with the current storage."""
    global _built
    with _lock:
        for name in _metric_names:
            globals().pop(name, None)
        _built = False


def _create(registry: CollectorRegistry) -> dict[str, Any]:
    http = {"namespace": NAMESPACE, "subsystem": "http", "registry": registry}
    storage = {"namespace": NAMESPACE, "subsystem": "storage", "registry": registry}
    cache = {
        result: Counter(f"cache_{plural}", f"The number of cache {doc}", **storage)
        for result, plural, doc in (
            ("hit", "hits", "hits"),
            ("miss", "misses", "misses (the blob descriptor came from storage)"),
            ("error", "errors", "request errors"),
        )
    }
    return {
        "http_in_flight": Gauge(
            "in_flight_requests",
            "The in-flight HTTP requests",
            ["handler"],
            multiprocess_mode="livesum",
            **http,
        ),
        "http_requests": Counter(
            "requests", "Total number of HTTP requests made.", ["handler", "code", "method"], **http
        ),
        "http_duration": Histogram(
            "request_duration_seconds",
            "The HTTP request latencies in seconds.",
            ["handler", "method"],
            buckets=DURATION_BUCKETS,
            **http,
        ),
        "http_request_size": Histogram(
            "request_size_bytes",
            "The HTTP request sizes in bytes.",
            ["handler"],
            buckets=SIZE_BUCKETS,
            **http,
        ),
        "http_response_size": Histogram(
            "response_size_bytes",
            "The HTTP response sizes in bytes.",
            ["handler"],
            buckets=SIZE_BUCKETS,
            **http,
        ),
        "uploads_in_progress": Gauge(
            "uploads_in_progress",
            "Blob upload requests (POST, PATCH, PUT) receiving data right now.",
            multiprocess_mode="livesum",
            **http,
        ),
        "storage_action": Histogram(
            "action_seconds",
            "The number of seconds that the storage action takes",
            ["driver", "action"],
            **storage,
        ),
        "access_decisions": Counter(
            "decisions",
            "Requests decided by the access rules, by the action asked for and the result "
            "(allowed or denied).",
            ["action", "result"],
            namespace=NAMESPACE,
            subsystem="access",
            registry=registry,
        ),
        "cache_lookups": CacheLookups(
            Counter("cache_requests", "The number of cache request received", **storage), cache
        ),
    }


def _remove_metric_files(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)
