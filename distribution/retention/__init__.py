"""Retention policies: which tags and manifests to let go, run by the maintenance scheduler.

Our extension (``storage.maintenance.retention``; the Go registry leaves this to scripts).
:mod:`~distribution.retention.policy` holds the rules and the pure decisions (the semantics of
``keep`` are spelled out there); :mod:`~distribution.retention.run` applies them to storage
safely while pushes continue. :func:`run_once` is one whole run, as the scheduler and
``registry retention`` do it: pull times brought up to date, decisions, deletions, the online
garbage collection that frees the blobs, and the usage figures refreshed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distribution import access, quotas
from distribution.cache.base import NO_CACHE, BlobDescriptorCache
from distribution.config import Configuration
from distribution.quotas.alerts import Crossing
from distribution.retention.policy import RetentionSettings, parse
from distribution.storage.driver import StorageDriver
from distribution.storage.locks import Locks
from distribution.usage import refresh, settings  # the function (usage.job.refresh)

if TYPE_CHECKING:
    from distribution.retention.run import Report
    from distribution.storage import gc

__all__ = ["RetentionSettings", "check", "parse", "run_once"]

log = logging.getLogger(__name__)


def check(config: Configuration) -> None:
    """Refuse bad policies at start-up, naming the key."""
    parse(config)


def run_once(
    config: Configuration,
    driver: StorageDriver,
    *,
    dry_run: bool,
    collect: bool,
    client: Any = None,
    locks: Locks | None = None,
    cache: BlobDescriptorCache = NO_CACHE,
    proceed: Callable[[], bool] = lambda: True,
    announce: Callable[[list[Crossing]], None] = quotas.announce,
) -> tuple[Report, gc.Report | None]:
    """One retention run, and the collection after it when ``collect`` and something went.

    Dry, nothing in storage changes (the journal of pull times is only read). Quota
    crossings that the two usage refreshes find go to ``announce`` (the scheduler's job hands
    them to its worker). The run and the collector are imported here, when a run starts: a
    registry with no policy (and every worker of one with a policy, but the one running it)
    never needs them.
    """
    from distribution.retention.run import run
    from distribution.storage import gc

    retention = parse(config)
    usage = settings.parse(config)
    limits = quotas.parse(config)
    before = refresh(
        driver,
        fullscan=usage.fullscan,
        quotas=limits,
        client=client,
        write=not dry_run,
        proceed=proceed,
    )
    if not dry_run:
        announce(before.crossings)
    report = run(
        driver,
        retention,
        before.state,
        dry_run=dry_run,
        immutable=access.PolicySource.from_config(config).current().immutable,
        locks=locks,
        cache=cache,
        proceed=proceed,
    )
    if dry_run:
        for line in report.lines():
            log.info("retention (dry run): %s", line.strip())
    log.info(report.summary())
    collected = None
    changed = [outcome.name for outcome in report.repositories if outcome.changed]
    if dry_run or not changed:
        return report, None
    if collect and proceed():
        section = config.storage.maintenance.gc  # a dry run there is one here too
        options = gc.Options(
            dry_run=section.dryrun,
            online=True,
            grace=section.age,
            delete_untagged=section.deleteuntagged,
        )
        collected = gc.collect(driver, options, emit=log.debug, proceed=proceed, cache=cache)
        log.info(collected.summary(options.dry_run))
        if not options.dry_run:
            changed += collected.changed
    after = refresh(
        driver,
        fullscan=usage.fullscan,
        quotas=limits,
        client=client,
        changed=changed,
        full=False,
        proceed=proceed,
    )
    announce(after.crossings)
    return report, collected
