"""Prometheus metrics, named as the Go registry names them (namespace ``registry``).

Go's series keep their names, labels and buckets, so dashboards built for ``registry:2`` keep
working: ``registry_http_requests_total{handler,code,method}``,
``registry_http_request_duration_seconds{handler,method}``,
``registry_http_{request,response}_size_bytes{handler}``,
``registry_http_in_flight_requests{handler}``, ``registry_storage_action_seconds{driver,action}``,
``registry_storage_cache_{requests,hits,errors}_total``,
``registry_notifications_{events,status}_total`` and ``registry_notifications_pending_total``
(see :class:`Notifications`), and ``registry_proxy_{requests,hits,misses,pulled_bytes,
pushed_bytes}_total{type}`` (see :class:`Proxy`). Ours on top:
``registry_storage_cache_misses_total``, ``registry_http_uploads_in_progress`` and, with access
rules, ``registry_access_decisions_total{action,result}``.

Under gunicorn the workers are separate processes, so the metrics use prometheus-client's
multiprocess mode: :func:`start_multiprocess` runs in the master before any worker forks and
points every process at one directory of per-process files, which :func:`exposition` merges.
A metric keeps the storage it was made with, so the metrics here are built on first use (in a
worker) and built afresh if the master had made them before choosing the directory; use them
as ``metrics.<name>``, never ``from distribution.metrics import <name>``. prometheus-client is
imported only where metrics are recorded or exposed: a registry that serves no metrics does
not load it (20 modules, about 1 MiB in each process).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge
    from prometheus_client.registry import Collector

NAMESPACE = "registry"

#: docker/go-metrics' buckets for HTTP request latencies, in seconds.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 60)
#: docker/go-metrics' buckets for request and response sizes: 1 KiB to 2 GiB, doubling.
SIZE_BUCKETS = tuple(1024 * 2**i for i in range(22))

#: The environment variable prometheus-client reads to find the multiprocess directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The private directory's name starts so, in the temporary folder.
PRIVATE_PREFIX = "registry-metrics-"
#: The file in a private directory its master keeps locked while it runs.
HELD = "held"

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
#: Whether metrics are recorded at all (see :func:`record`): only where something exposes
#: them, so command-line tools and registries without a metrics endpoint never pay for them.
_recording = False
_registry: CollectorRegistry | None = None
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


def record(enabled: bool) -> None:
    """Record metrics, or not: when nothing exposes them (no debug server with Prometheus, as
    Go decides), every metric is a no-op, so requests do not pay for counting."""
    global _recording
    if enabled != _recording:
        _discard()
        _recording = enabled


def recording() -> bool:
    return _recording


class _Unrecorded:
    """A metric that records nothing, for every use of the real ones."""

    def labels(self, *values: str, **labels: str) -> _Unrecorded:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    dec = observe = set = inc

    def track_inprogress(self) -> contextlib.nullcontext[None]:
        return contextlib.nullcontext()

    def _nothing(self, *args: Any, **kwargs: Any) -> None:
        """What :class:`Notifications` and :class:`Proxy` record: nothing either."""

    queued = answered = failed = served = _nothing


_UNRECORDED = _Unrecorded()


class Notifications:
    """Go's notification metrics, per endpoint: ``registry_notifications_events_total{type}``
    counts ``Events`` queued, ``Successes`` and ``Failures`` (an HTTP answer that was
    accepted, or not) and ``Errors`` (no answer); ``registry_notifications_status_total{code}``
    the answers by status (``"200 OK"``); ``registry_notifications_pending_total`` the events
    queued and not yet delivered. With Redis queues an event may be queued by one process and
    delivered by another (of any replica): sum the gauge over the replicas."""

    def __init__(self, events: Counter, status: Counter, pending: Gauge) -> None:
        self._events = events
        self._status = status
        self._pending = pending

    def queued(self, endpoint: str) -> None:
        self._events.labels("Events", endpoint).inc()
        self._pending.labels(endpoint).inc()

    def answered(self, endpoint: str, status: int, accepted: bool) -> None:
        self._status.labels(_status_text(status), endpoint).inc()
        self._events.labels("Successes" if accepted else "Failures", endpoint).inc()
        if accepted:
            self._pending.labels(endpoint).dec()

    def failed(self, endpoint: str) -> None:
        self._events.labels("Errors", endpoint).inc()


class Proxy:
    """Go's pull-through cache metrics, by ``type`` (``blob`` or ``manifest``): each request
    served, the hits (served from storage) and misses (fetched from the upstream), the bytes
    pulled from the upstream and pushed to clients."""

    TYPES = ("blob", "manifest")

    def __init__(self, counters: dict[str, Counter]) -> None:
        self._counters = counters
        for kind in self.TYPES:  # Go's series exist from start-up, at 0
            for counter in counters.values():
                counter.labels(kind).inc(0)

    def served(self, kind: str, pushed: int, pulled: int | None) -> None:
        """A request served ``pushed`` bytes; ``pulled`` None was a hit, else a miss that
        fetched that many bytes from the upstream."""
        self._counters["requests"].labels(kind).inc()
        self._counters["pushed_bytes"].labels(kind).inc(pushed)
        if pulled is None:
            self._counters["hits"].labels(kind).inc()
        else:
            self._counters["misses"].labels(kind).inc()
            self._counters["pulled_bytes"].labels(kind).inc(pulled)


def start_multiprocess(directory: str | None = None) -> str:
    """Share metrics between this process and the workers it will fork; return the directory.

    Uses ``directory`` (the operator's ``PROMETHEUS_MULTIPROC_DIR``), emptied of old metric
    files, or else a new private temporary directory.
    """
    if directory:
        os.makedirs(directory, exist_ok=True)
        _remove_metric_files(directory)
    else:
        _remove_orphans(tempfile.gettempdir())
        directory = tempfile.mkdtemp(prefix=PRIVATE_PREFIX)
        _hold(directory)
    os.environ[MULTIPROC_ENV] = directory
    from prometheus_client import values

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
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def add_collector(name: str, collector: Collector) -> None:
    """Serve ``collector``'s metrics too; a later collector of the same ``name`` replaces it."""
    _collectors[name] = collector


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's metrics, and its content type."""
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        generate_latest,
        multiprocess,
    )

    _build()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = _registry or CollectorRegistry()
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
        if _recording:
            from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

            _registry = CollectorRegistry()
            created = _create(Counter, Gauge, Histogram, _registry)
        else:  # the same names, each a no-op, without loading prometheus-client
            made = _create(_unrecorded, _unrecorded, _unrecorded, None)
            created = dict.fromkeys(made, _UNRECORDED)
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


def _status_text(status: int) -> str:
    """Go's ``"%d %s"`` of a status and ``http.StatusText``."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} "


def _unrecorded(*args: Any, **kwargs: Any) -> _Unrecorded:
    return _UNRECORDED


def _create(
    Counter: Callable[..., Any],
    Gauge: Callable[..., Any],
    Histogram: Callable[..., Any],
    registry: CollectorRegistry | None,
) -> dict[str, Any]:
    """Every metric, by its name as ``metrics.<name>``, made with prometheus-client's
    classes or, for the names alone, with :func:`_unrecorded`."""
    http = {"namespace": NAMESPACE, "subsystem": "http", "registry": registry}
    notifications = {"namespace": NAMESPACE, "subsystem": "notifications", "registry": registry}
    proxy = {"namespace": NAMESPACE, "subsystem": "proxy", "registry": registry}
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
        "notifications": Notifications(
            Counter("events", "The number of total events", ["type", "endpoint"], **notifications),
            Counter("status", "The number of status code", ["code", "endpoint"], **notifications),
            Gauge(
                "pending_total",
                "The gauge of pending events in queue",
                ["endpoint"],
                multiprocess_mode="livesum",
                **notifications,
            ),
        ),
        "proxy": Proxy(
            {
                name: Counter(name, help_text, ["type"], **proxy)
                for name, help_text in (
                    ("requests", "The number of total incoming proxy request received"),
                    ("hits", "The number of total proxy request hits"),
                    ("misses", "The number of total proxy request misses"),
                    ("pulled_bytes", "The size of total bytes pulled from the upstream"),
                    ("pushed_bytes", "The size of total bytes pushed to the client"),
                )
            }
        ),
    }


#: The open, locked ``held`` file of this process's private directory, kept for its life.
_held: int | None = None


def _hold(directory: str) -> None:
    """Lock ``held`` in ``directory`` for as long as this process (and the workers it forks)
    run: the lock goes with them, however they end. It is made and locked under another name
    first, so another master never finds it unlocked."""
    global _held
    making = os.path.join(directory, f".{HELD}")
    fd = os.open(making, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(making, os.path.join(directory, HELD))
    _held = fd


def _remove_orphans(parent: str) -> None:
    """Remove this user's private directories whose master is gone: killed outright (SIGKILL,
    the OOM killer), it never ran the exit hook that removes its own. A directory without a
    ``held`` file (made before it had one, or being made) is left alone."""
    found = []
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        for entry in entries:
            if not entry.name.startswith(PRIVATE_PREFIX):
                continue
            with contextlib.suppress(OSError):
                mine = entry.stat(follow_symlinks=False).st_uid == os.getuid()
                if mine and entry.is_dir(follow_symlinks=False):
                    found.append(entry.path)
    for path in found:
        try:
            fd = os.open(os.path.join(path, HELD), os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # its master (or a worker of it) still runs
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)


def _remove_metric_files(directory: str) -> None:
    for path in glob.glob(os.path.join(directory, "*.db")):
        os.remove(path)
