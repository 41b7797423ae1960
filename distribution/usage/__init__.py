"""Storage usage, push and pull times: what each repository, namespace and the whole registry
holds, and when it was last pushed and pulled.

Our extension (``storage.maintenance.usage``; the Go registry has nothing like it). The pieces:

* :mod:`~distribution.usage.journal`: pulls and changed repositories, noted by every process
  at no I/O cost per request and written in batches;
* :mod:`~distribution.usage.inventory`: what storage holds (tags, manifests, their times);
* :mod:`~distribution.usage.state` and :mod:`~distribution.usage.job`: the maintenance
  job that keeps the figures up to date, re-reading only what changed;
* :mod:`~distribution.usage.figures`: the figures themselves (pure);
* :mod:`~distribution.usage.gauges`: the Prometheus gauges, read from the job's summary.

**Pushed** is when a tag's ``current/link`` was last written: its last push, even of the
digest it had (a Go-written tree gives the same, since Go writes the same file; a copy that did
not keep file times makes every tag look just pushed). **Pulled** is the last ``GET`` or
``HEAD`` of a manifest through this registry, by tag or by digest, since :attr:`State.since`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from distribution import metrics, quotas, redisconn
from distribution.config import ConfigError, Configuration
from distribution.quotas.alerts import Crossing
from distribution.storage.driver import StorageDriver
from distribution.usage import journal, settings
from distribution.usage.job import Mark, load_report, load_summary, refresh, unchanged
from distribution.usage.journal import Journal, RedisSink, StorageSink
from distribution.usage.settings import UsageSettings

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger(__name__)

#: The ``app.extensions`` key of the application's :class:`Journal` (None: nothing recorded).
EXTENSION = "distribution.usage"

__all__ = [
    "EXTENSION",
    "Journal",
    "Runs",
    "UsageSettings",
    "check",
    "init_app",
    "journal_for",
    "load_report",
    "load_summary",
    "note_changed",
    "redis_client",
    "refresh",
]


def check(config: Configuration) -> None:
    """Refuse a bad ``storage.maintenance.usage`` at start-up, naming the key."""
    settings.parse(config)


def init_app(app: Flask, config: Configuration, driver: StorageDriver) -> None:
    """Give the app its journal and, where metrics are recorded, their usage gauges."""
    app.extensions[EXTENSION] = journal_for(config, driver)
    if metrics.recording():  # prometheus-client is loaded only then
        from distribution.usage.gauges import UsageCollector

        metrics.add_collector("usage", UsageCollector(driver))


def journal_for(config: Configuration, driver: StorageDriver) -> Journal | None:
    """Where this process notes pulls and changes: none in read-only mode (nothing may be
    written) or with usage disabled."""
    found = settings.parse(config)
    if config.storage.maintenance.readonly.enabled or not found.enabled:
        return None
    # No point writing batches faster than the usage job reads them.
    every = min(journal.FLUSH_INTERVAL, found.interval)
    return Journal(_sink(config, driver), record_pulls=found.pulls, every=every)


def note_changed(config: Configuration, driver: StorageDriver, names: Iterable[str]) -> None:
    """Tell the usage job that ``names`` changed, from a process that serves no requests (a
    command, a collection): one journal batch, which its next refresh reads them by. Written
    in read-only mode too, the time of an offline collection: the note waits for the job."""
    batch = journal.Batch(changed=dict.fromkeys(names, time.time()))
    try:
        enabled = settings.parse(config).enabled
    except ConfigError:  # a registry refuses to start with it: there is no job to tell
        return
    if batch and enabled:
        _sink(config, driver).write(batch.encode())


def redis_client(config: Configuration) -> Any:
    """The Redis client the journal uses, or None without ``redis``."""
    return redisconn.connect(config.redis) if redisconn.configured(config.redis) else None


class Runs:
    """The maintenance job: refresh the figures (in a process of its own, see
    :mod:`distribution.maintenance.process`), then tell quota crossings in the worker, whose
    dispatcher sends their notifications; no run while nothing happened since the last."""

    def __init__(self, config: Configuration, driver: StorageDriver, client: Any = None) -> None:
        self.config = config
        self.driver = driver
        self.client = client
        self.fullscan = settings.parse(config).fullscan
        #: Left by the last run this process saw save the state.
        self.mark: Mark | None = None

    def run(self, proceed: Callable[[], bool]) -> tuple[list[Crossing], Mark | None]:
        outcome = refresh(
            self.driver,
            fullscan=self.fullscan,
            quotas=quotas.parse(self.config),
            client=self.client,
            proceed=proceed,
        )
        total = outcome.report.total
        log.log(
            logging.INFO if outcome.full else logging.DEBUG,
            "usage: %s scan of %d repositories in %.1f s: %d repositories, %d tags, %d bytes",
            "full" if outcome.full else "incremental",
            outcome.scanned,
            outcome.seconds,
            total.repositories,
            total.tags,
            total.bytes,
        )
        return outcome.crossings, outcome.mark

    def then(self, result: tuple[list[Crossing], Mark | None]) -> None:
        crossings, self.mark = result
        quotas.announce(crossings)

    def idle(self) -> bool:
        """Nothing to do since the last run (a few storage reads, no process started)."""
        return self.mark is not None and unchanged(
            self.driver,
            self.mark,
            fullscan=self.fullscan,
            client=self.client,
        )


def _sink(config: Configuration, driver: StorageDriver) -> StorageSink | RedisSink:
    sink = StorageSink(driver)
    client = redis_client(config)
    return sink if client is None else RedisSink(client, sink)
