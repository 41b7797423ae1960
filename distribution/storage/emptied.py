"""Repositories left with nothing, noted where the catalog's walk sees them.

The catalog leaves out a repository whose every tag and manifest was deleted. Finding that out
by looking into each repository's tags folder costs one more folder read per repository, which
on a cold page cache doubles the disk reads of a catalog walk (benchmarks/README.md). So a
deletion that leaves a repository with nothing notes it in the repository's own folder::

    repositories/<name>/_emptied/at          when a deletion left it with nothing
    _maintenance/catalog/emptied-noted       every repository emptied since is noted

The walk lists each repository's folder anyway, so it sees a note for nothing and looks into
the tags folder of a noted repository only (a push may have filled it again since). Until
:func:`sweep` has noted every repository empty at its time, the catalog looks into every
repository.

The maintenance job sweeps a storage first soon after start and then once a day
(:data:`SWEEP_EVERY`): each sweep looks into every repository, notes the empty ones and takes
the note off those a push filled again, which the walk would otherwise look into for ever.
What is emptied outside this registry (the Go registry on the same storage, files removed by
hand, an earlier version still running beside this one) is listed, as Go lists it, until the
next sweep; delete ``emptied-noted`` and the maintenance job sweeps within the hour.

A note is written after the deletion, when a look finds nothing left. Of two deletions at once
the later one looks after both, so the deletion that empties a repository always notes it. A
sweep takes a note off, then looks again and notes once more if a deletion emptied the
repository meanwhile; a deletion after that look notes it itself.

The note is a folder, like ``_referrers``, because the Go registry skips a repository's folders
starting with ``_``; a file of such a name would end Go's listing of the folder, and its catalog
and garbage collection would miss the repositories below (tests/e2e/test_emptied_interop.py).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError

if TYPE_CHECKING:
    from distribution.storage.catalog import Found

log = logging.getLogger(__name__)

#: How long a sweep is trusted before the next one is due.
SWEEP_EVERY = timedelta(days=1)


def has_content(driver: StorageDriver, name: str) -> bool:
    """Whether the repository has a tag or a manifest; usually one look into its tags folder."""
    if driver.has_children(paths.tags(name)):
        return True
    for algorithm_folder in _entries(driver, paths.manifest_revisions(name)):
        for revision in _entries(driver, algorithm_folder):
            try:
                driver.stat(f"{revision}/link")
            except PathNotFoundError:
                continue  # a deleted manifest: Go and we leave its folder
            return True
    return False


def note(driver: StorageDriver, name: str) -> bool:
    """After a deletion in ``name``: note the repository if nothing is left in it. Returns
    whether it noted.

    A storage error is logged, not raised: the deletion is done, and a missing note only makes
    the catalog list the emptied repository (as Go does) until the next sweep.
    """
    try:
        if has_content(driver, name):
            return False
        _write(driver, paths.emptied_note(name))
    except StorageDriverError as exc:
        log.warning("catalog: cannot note %s as emptied, so it stays listed: %s", name, exc)
        return False
    return True


def noted(driver: StorageDriver) -> bool:
    """Whether every repository emptied on this storage is noted: a sweep finished here."""
    try:
        driver.stat(paths.EMPTIED_NOTED)
    except PathNotFoundError:
        return False
    return True


def due(driver: StorageDriver, now: datetime | None = None) -> bool:
    """Whether a sweep is due: none finished here, or the last one is :data:`SWEEP_EVERY` old."""
    try:
        swept = driver.stat(paths.EMPTIED_NOTED).mtime
    except PathNotFoundError:
        return True
    return (now or datetime.now(UTC)) - swept >= SWEEP_EVERY


def sweep(
    driver: StorageDriver,
    found: Iterable[Found],
    proceed: Callable[[], bool] = lambda: True,
) -> int | None:
    """Note each repository of ``found`` (looked into live) that holds nothing, take the note
    off each noted one that holds something, then mark the storage noted. Returns how many it
    noted; None when ``proceed`` said to stop first. Nothing is marked then, nor when a note
    cannot be written or taken off (the storage error is raised)."""
    count = cleared = 0
    for name, content, was_noted in found:
        if not proceed():
            return None
        if not content and not was_noted:
            _write(driver, paths.emptied_note(name))
            count += 1
        elif content and was_noted:
            with contextlib.suppress(PathNotFoundError):
                driver.delete(paths.emptied(name))
            if has_content(driver, name):
                cleared += 1
            else:  # emptied since the look, before the note went: note it again
                _write(driver, paths.emptied_note(name))
    if not proceed():
        return None
    _write(driver, paths.EMPTIED_NOTED)
    log.info(
        "catalog: %d repositories noted as emptied, %d noted ones filled again; the catalog "
        "trusts the notes now",
        count,
        cleared,
    )
    return count


def _write(driver: StorageDriver, path: str) -> None:
    """A note, or the sweep's mark: the time it was written (for whoever looks)."""
    driver.put_content(path, datetime.now(UTC).isoformat().encode())


def _entries(driver: StorageDriver, folder: str) -> list[str]:
    try:
        return driver.list(folder)
    except PathNotFoundError:
        return []
