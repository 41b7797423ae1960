"""Upload purging: remove upload folders started before a cut-off, as Go's ``PurgeUploads``.

An upload's age is the time in its ``startedat`` file (the only reliable one: data files
change with every PATCH). An upload folder without a readable ``startedat`` is never removed,
as in Go, which dates such uploads far in the future.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError
from distribution.uploadstate import parse_time

log = logging.getLogger(__name__)


@dataclass
class PurgeResult:
    """The upload folders removed (or, in a dry run, that would be) and the errors met."""

    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def purge_uploads(driver: StorageDriver, older_than: datetime, delete: bool) -> PurgeResult:
    """Remove every ``_uploads/<uuid>`` whose ``startedat`` is before ``older_than``."""
    log.info("PurgeUploads starting: olderThan=%s, actuallyDelete=%s", older_than, delete)
    result = PurgeResult()
    for folder in _upload_folders(driver, paths.REPOSITORIES):
        try:
            started_at = parse_time(driver.get_content(f"{folder}/startedat").decode())
        except PathNotFoundError:
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            result.errors.append(f"{folder}/startedat: {exc}")
            continue
        if started_at >= older_than:
            continue
        log.info(
            "Upload files in %s have older date (%s) than purge date (%s).  Removing upload "
            "directory.",
            folder,
            started_at,
            older_than,
        )
        try:
            if delete:
                driver.delete(folder)
        except PathNotFoundError:
            continue  # finished or cancelled meanwhile
        except StorageDriverError as exc:
            result.errors.append(str(exc))
            continue
        result.deleted.append(folder)
    log.info(
        "Purge uploads finished.  Num deleted=%d, num errors=%d",
        len(result.deleted),
        len(result.errors),
    )
    return result


def _upload_folders(driver: StorageDriver, folder: str) -> Iterator[str]:
    """``<repository>/_uploads/<uuid>`` folders under ``folder``, any nesting deep."""
    try:
        children = sorted(driver.list(folder))
    except PathNotFoundError:
        return
    for child in children:
        name = child.rsplit("/", 1)[1]
        if name == "_uploads":
            try:
                yield from sorted(driver.list(child))
            except PathNotFoundError:
                continue
        elif not name.startswith("_"):
            yield from _upload_folders(driver, child)
