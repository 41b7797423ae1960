"""One run of the usage job: merge the journal, re-read what changed, write the figures.

A run reads the journal's batches (pull times, repositories changed through the API), re-reads
only those repositories (a few listings and stats each, plus each new manifest once) and
recomputes the figures from the saved state. Every ``fullscan`` (and when there is no state)
it reads every repository instead, and counts ``blobs/``: that catches what changed outside
this registry's API (a Go replica, an offline garbage collection, files copied in).

What it writes, all under ``_maintenance/usage/``: the state (for the next run), the report
(every figure, for admins and ``registry usage --cached``) and the summary (totals,
namespaces and quotas, which metrics and quota checks read). The journal's batches are
removed only after the state that merged them is saved, so a run that dies loses nothing.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from distribution.quotas import alerts
from distribution.storage import inventory, paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError
from distribution.usage import figures, journal
from distribution.usage.figures import Limit, Report
from distribution.usage.state import State, load, save

log = logging.getLogger(__name__)

#: Manifests read at once from cloud storage, which answers each in tens of milliseconds.
SCAN_THREADS = 8
#: Drivers whose reads cost this process's CPU, not waiting: threads would only contend.
LOCAL_DRIVERS = frozenset({"filesystem", "inmemory"})


@dataclass(frozen=True)
class Mark:
    """What a run that saved the state leaves for the next to compare: the state file's
    version then, and its last full scan."""

    version: tuple[int, float]
    full_scan: float


@dataclass
class Outcome:
    """What a run found and how long it took; ``crossings`` and ``mark`` only when it saved."""

    state: State
    report: Report
    full: bool
    scanned: int
    seconds: float
    crossings: list[alerts.Crossing]
    mark: Mark | None = None


def refresh(
    driver: StorageDriver,
    *,
    fullscan: float = float("inf"),
    quotas: Iterable[Limit] = (),
    client: Any = None,
    changed: Iterable[str] = (),
    full: bool | None = None,
    write: bool = True,
    proceed: Callable[[], bool] = lambda: True,
    now: float | None = None,
) -> Outcome:
    """Bring the figures up to date.

    ``full`` forces (True) or forbids (False) a full scan; by default one runs when the last
    is older than ``fullscan`` seconds or there is no saved state. ``changed`` adds
    repositories to re-read (those a retention run or a collection just changed). With
    ``write`` False nothing in storage changes (the journal is only read), as
    ``registry usage`` wants; ``proceed`` (the maintenance lease) is asked before writing.
    """
    started = time.monotonic()
    now = time.time() if now is None else now
    state = load(driver)
    if full is not None:
        scan_all = full
    else:
        scan_all = state is None or not state.full_scan or now - state.full_scan >= fullscan
    state = state or State(since=now)
    entries = journal.read(driver, client)
    batch = journal.merged(entries)
    state.merge_pulls(batch.pulls)
    state.pending |= set(batch.changed) | set(changed)
    scanned = _scan_everything(driver, state, now) if scan_all else _scan_pending(driver, state)
    state.refreshed = now
    quotas = list(quotas)
    report = figures.compute(state, quotas, now)
    previous = _previous_percents(driver)
    current = [(q.repositories, q.limit, q.bytes) for q in report.quotas]
    outcome = Outcome(state, report, scan_all, scanned, 0.0, [])
    if write and proceed():
        save(driver, state)
        journal.remove(driver, entries, client)
        driver.put_content(
            paths.USAGE_REPORT, gzip.compress(json.dumps(report.to_json()).encode(), 5)
        )
        driver.put_content(paths.USAGE_SUMMARY, json.dumps(report.summary_json()).encode())
        # Not saved, the crossings would be found (and told) again by the next run.
        outcome.crossings = alerts.crossings(previous, current)
        version = _version(driver)
        outcome.mark = Mark(version, state.full_scan) if version is not None else None
    outcome.seconds = time.monotonic() - started
    return outcome


def unchanged(
    driver: StorageDriver,
    mark: Mark,
    *,
    fullscan: float = float("inf"),
    client: Any = None,
    now: float | None = None,
) -> bool:
    """Whether a refresh would find nothing to do since the run that left ``mark``: nobody
    saved the state since, no journal batch waits and no full scan is due. A stat and a
    listing (and a Redis ``LLEN``), where a refresh decodes the whole state."""
    now = time.time() if now is None else now
    return (
        now - mark.full_scan < fullscan
        and _version(driver) == mark.version
        and not journal.waiting(driver, client)
    )


def load_report(driver: StorageDriver) -> dict[str, Any] | None:
    """The figures the usage job stored last (see :meth:`Report.to_json`); None before the
    first run."""
    try:
        return json.loads(gzip.decompress(driver.get_content(paths.USAGE_REPORT)))
    except PathNotFoundError:
        return None


def load_summary(driver: StorageDriver) -> dict[str, Any] | None:
    """Totals, namespaces and quotas of the last run; None before the first."""
    try:
        return json.loads(driver.get_content(paths.USAGE_SUMMARY))
    except PathNotFoundError:
        return None


def _version(driver: StorageDriver) -> tuple[int, float] | None:
    try:
        info = driver.stat(paths.USAGE_STATE)
    except PathNotFoundError:
        return None
    return info.size, info.mtime.timestamp()


def _scan_everything(driver: StorageDriver, state: State, now: float) -> int:
    state.repositories = inventory.scan_everything(driver)
    state.stored_blobs, state.stored_bytes = inventory.stored_blobs(driver)
    state.full_scan = now
    state.pending.clear()
    _read_manifests(driver, state, state.repositories.values())
    _forget_pulls(state)
    return len(state.repositories)


def _scan_pending(driver: StorageDriver, state: State) -> int:
    scanned = []
    for name in sorted(state.pending):
        record = inventory.scan_repository(driver, name)
        if record.empty:
            state.repositories.pop(name, None)
        else:
            state.repositories[name] = record
            scanned.append(record)
    count = len(state.pending)
    state.pending.clear()
    _read_manifests(driver, state, scanned)
    return count


def _read_manifests(
    driver: StorageDriver, state: State, records: Iterable[inventory.RepositoryRecord]
) -> None:
    """Read each manifest not known yet, then forget those no repository has any more."""
    missing = sorted({d for r in records for d in r.manifests if d not in state.manifests})
    read = functools.partial(inventory.read_manifest, driver)
    if driver.name in LOCAL_DRIVERS:
        found = list(map(read, missing))
    else:
        with ThreadPoolExecutor(SCAN_THREADS, thread_name_prefix="usage-scan") as pool:
            found = list(pool.map(read, missing))
    for digest, record in zip(missing, found, strict=True):
        if record is not None:
            state.manifests[digest] = record
    used = {digest for record in state.repositories.values() for digest in record.manifests}
    for digest in [d for d in state.manifests if d not in used]:
        del state.manifests[digest]


def _forget_pulls(state: State) -> None:
    """After a full scan: drop pulls of repositories, tags and manifests that are gone."""
    kept = {}
    for name, refs in state.pulls.items():
        record = state.repositories.get(name)
        if record is None:
            continue
        refs = {r: t for r, t in refs.items() if r in record.tags or r in record.manifests}
        if refs:
            kept[name] = refs
    state.pulls = kept


def _previous_percents(driver: StorageDriver) -> dict[str, float]:
    try:
        summary = load_summary(driver) or {}
        return {str(q["repositories"]): float(q["percent"]) for q in summary.get("quotas", [])}
    except (StorageDriverError, ValueError, KeyError, TypeError):
        return {}
