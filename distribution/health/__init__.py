"""Health checks (the ``health:`` section), as distribution's ``health`` package runs them.

Each configured check runs on its own interval in a background thread and updates a status the
requests read without waiting: ``GET /debug/health`` on the debug server reports the failing
ones, and while any fails the API answers every request with 503 ``UNAVAILABLE`` (Go's
``health.Handler``), which is what takes a draining replica out of its load balancer.

Under gunicorn each worker process runs its own checkers (they start as the worker boots, the
app having been built in the master before the fork) and answers from its own results; all
workers check the same things on the same interval, so they agree within one interval of each
other.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.parse
from collections.abc import Callable, Iterable

from distribution import errors
from distribution.config import ConfigError, Configuration
from distribution.health import checks
from distribution.storage.driver import StorageDriver

#: Where ``create_app`` keeps the app's :class:`HealthChecks`.
EXTENSION = "distribution.health"

#: What Go's ``health.Handler`` answers while a check fails.
UNHEALTHY_DETAIL = "health check failed: please see /debug/health"

log = logging.getLogger(__name__)


class Updater:
    """The last result of a check: failing as soon as one run fails."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: str | None = None

    def update(self, status: str | None) -> None:
        with self._lock:
            self._status = status

    def check(self) -> str | None:
        with self._lock:
            return self._status


class ThresholdUpdater(Updater):
    """Failing only after ``threshold`` consecutive failed runs; one success resets it.

    A threshold of 0 (the default) fails at once, as in Go.
    """

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold
        self._failures = 0

    def update(self, status: str | None) -> None:
        with self._lock:
            if status is None:
                self._failures = 0
            elif self._failures < self.threshold:
                self._failures += 1
            self._status = status

    def check(self) -> str | None:
        with self._lock:
            return self._status if self._failures >= self.threshold else None


class HealthChecks:
    """Named checks, each polled in a daemon thread of the process that started them, until
    :meth:`close`.

    Threads do not survive a fork: built unstarted (``started=False``, as ``registry serve``
    builds the app in gunicorn's master), the checks poll once :meth:`start` runs in a worker.
    """

    def __init__(self, started: bool = True) -> None:
        self._polls: dict[str, tuple[checks.Check, float, Updater]] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pid = os.getpid() if started else None

    def poll(self, name: str, check: checks.Check, interval: float, updater: Updater) -> None:
        """Run ``check`` every ``interval`` seconds from the start, the first time one interval
        after it."""
        self._polls[name] = (check, interval, updater)
        if self._pid == os.getpid():
            self._spawn(name, check, interval, updater)

    def start(self) -> None:
        """Poll in this process, once (again in a forked child)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._threads = []
        for name, (check, interval, updater) in self._polls.items():
            self._spawn(name, check, interval, updater)

    def status(self) -> dict[str, str]:
        """The failing checks: name to error text; empty when healthy."""
        failing = {}
        for name, (_, _, updater) in self._polls.items():
            error = updater.check()
            if error is not None:
                failing[name] = error
        return failing

    def names(self) -> list[str]:
        return list(self._polls)

    def __bool__(self) -> bool:
        return bool(self._polls)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _spawn(self, name: str, check: checks.Check, interval: float, updater: Updater) -> None:
        thread = threading.Thread(
            target=self._run,
            args=(check, interval, updater, self._stop),
            name=f"health {name}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()

    def _run(
        self, check: checks.Check, interval: float, updater: Updater, stop: threading.Event
    ) -> None:
        while not stop.wait(interval):
            try:
                updater.update(check())
            except Exception as err:  # a broken check must not end its thread
                log.exception("health check failed unexpectedly")
                updater.update(str(err))


def check(config: Configuration) -> None:
    """Refuse at start-up a check that could never pass: Go runs it, and while it fails the
    registry answers every request with 503."""
    for i, http in enumerate(config.health.http):
        try:
            url = urllib.parse.urlsplit(http.uri or "")
        except ValueError:
            url = None
        if http.uri and (url is None or url.scheme not in ("http", "https") or not url.hostname):
            raise ConfigError(f"health.http[{i}].uri", f"not an http(s) URL: {http.uri!r}")
    for i, tcp in enumerate(config.health.tcp):
        if tcp.addr:
            try:
                checks.split_host_port(tcp.addr)
            except ValueError:
                raise ConfigError(
                    f"health.tcp[{i}].addr", f"missing port in address {tcp.addr!r}"
                ) from None


def from_config(config: Configuration, driver: StorageDriver, start: bool = True) -> HealthChecks:
    """The checks ``config.health`` asks for, named as Go names them, polling unless not
    ``start``."""
    health = config.health
    result = HealthChecks(started=start)
    if health.storagedriver.enabled:
        result.poll(
            f"storagedriver_{config.storage.driver}",
            checks.storage_driver_check(driver),
            health.storagedriver.interval,
            ThresholdUpdater(health.storagedriver.threshold),
        )
    for file in health.file:
        if file.file:
            log.info("configuring file health check path=%s, interval=%g", file.file, file.interval)
            # Go ignores a file check's threshold: the drain switch acts at once.
            result.poll(file.file, checks.file_check(file.file), file.interval, Updater())
    for http in health.http:
        if http.uri:
            log.info(
                "configuring HTTP health check uri=%s, interval=%g, threshold=%d",
                *(http.uri, http.interval, http.threshold),
            )
            check = checks.http_check(http.uri, http.statuscode, http.timeout, http.headers)
            result.poll(http.uri, check, http.interval, ThresholdUpdater(http.threshold))
    for tcp in health.tcp:
        if tcp.addr:
            log.info(
                "configuring TCP health check addr=%s, interval=%g, threshold=%d",
                *(tcp.addr, tcp.interval, tcp.threshold),
            )
            check = checks.tcp_check(tcp.addr, tcp.timeout)
            result.poll(tcp.addr, check, tcp.interval, ThresholdUpdater(tcp.threshold))
    return result


def status_body(failing: dict[str, str]) -> tuple[int, bytes]:
    """``/debug/health``'s answer: 200 ``{}``, or 503 with the failing checks by name."""
    return (503 if failing else 200), json.dumps(failing, separators=(",", ":")).encode()


def gate(app: Callable, health: HealthChecks) -> Callable:
    """Go's ``health.Handler``: while a check fails, every request gets 503 ``UNAVAILABLE``."""
    if not health:
        return app

    def gated(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not health.status():
            return app(environ, start_response)
        error = errors.Unavailable(detail=UNHEALTHY_DETAIL)
        body = json.dumps({"errors": [error.to_dict()]}, separators=(",", ":")).encode() + b"\n"
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response("503 Service Unavailable", headers)
        return [body]

    return gated
