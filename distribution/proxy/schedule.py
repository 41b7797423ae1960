"""Expiry of what the pull-through cache fetched: Go's ``scheduler-state.json``, kept by one job.

The state file is the Go registry's, at the same place (``/scheduler-state.json`` at the
driver's root) and in the same JSON, so a data volume moves between the two registries with
its schedule::

    {"<repo>@<digest>": {"Key": "<repo>@<digest>", "ExpiryData": "<RFC 3339>", "EntryType": 0}}

``EntryType`` 0 is a blob, 1 a manifest. Go keeps the schedule in each process's memory and
writes it every few seconds, so replicas overwrite each other's entries. Here a request that
stores content writes one small record of its own (under ``_maintenance/proxy/scheduled/``),
and only the maintenance job, which runs in one worker of one replica under the maintenance
lease, merges records into the state file and removes what has expired; nothing is lost to a
concurrent writer.

On expiry, as in Go: a blob is unlinked from its repository and its data deleted; a
manifest's revision link is removed (tags stay; the next pull by tag fetches it again).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from distribution import errors
from distribution.cache.base import NO_CACHE, BlobDescriptorCache
from distribution.digest import Digest
from distribution.storage import emptied, paths
from distribution.storage.blobs import BlobStore, RepositoryBlobs
from distribution.storage.driver import PathNotFoundError, StorageDriver

BLOB = 0
MANIFEST = 1
#: Longest pause between two runs of the expiry job.
MAX_INTERVAL = 60.0

log = logging.getLogger(__name__)

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


@dataclass(frozen=True)
class Entry:
    """Content to remove at ``expiry``: ``key`` is ``<repository>@<digest>``."""

    key: str
    expiry: datetime
    kind: int

    @classmethod
    def make(cls, name: str, digest: Digest, kind: int, ttl: float, now: datetime) -> Entry:
        return cls(f"{name}@{digest}", now + timedelta(seconds=ttl), kind)

    @property
    def repository(self) -> str:
        return self.key.rpartition("@")[0]

    @property
    def digest(self) -> Digest:
        return Digest.parse(self.key.rpartition("@")[2])


def encode(entries: Iterable[Entry]) -> bytes:
    """The entries as Go's scheduler marshals them."""
    return json.dumps(
        {
            entry.key: {
                "Key": entry.key,
                "ExpiryData": format_time(entry.expiry),
                "EntryType": entry.kind,
            }
            for entry in entries
        }
    ).encode()


def decode(data: bytes) -> dict[str, Entry]:
    """Entries by key from Go's JSON; ``ValueError`` for anything else."""
    document = json.loads(data)
    if not isinstance(document, dict):
        raise ValueError("scheduler state is not a JSON object")
    entries = {}
    for key, value in document.items():
        try:
            entry = Entry(
                str(value["Key"]), parse_time(value["ExpiryData"]), int(value["EntryType"])
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad scheduler entry {key!r}: {exc}") from None
        entries[entry.key] = entry
    return entries


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with the fraction Go's ``RFC3339Nano`` would write (zeros trimmed)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def parse_time(text: str) -> datetime:
    """A Go ``time.Time`` in JSON (RFC 3339, up to nanoseconds, any offset)."""
    if not isinstance(text, str):
        raise ValueError(f"not a time: {text!r}")
    cleaned = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return moment.astimezone(UTC)


def record(driver: StorageDriver, entries: list[Entry]) -> None:
    """Ask the expiry job to schedule ``entries`` (one small file, never overwritten)."""
    if entries:
        driver.put_content(paths.proxy_scheduled(uuid.uuid4().hex), encode(entries))


def read_state(driver: StorageDriver) -> dict[str, Entry]:
    """The state file's entries; a missing file is an empty schedule, a damaged one too
    (logged: what it listed is then kept for good, never deleted by mistake)."""
    try:
        return decode(driver.get_content(paths.SCHEDULER_STATE))
    except PathNotFoundError:
        return {}
    except ValueError as exc:
        log.warning("proxy: ignoring damaged %s: %s", paths.SCHEDULER_STATE, exc)
        return {}


def expire(
    driver: StorageDriver,
    cache: BlobDescriptorCache = NO_CACHE,
    now: datetime | None = None,
    proceed: Callable[[], bool] = lambda: True,
) -> list[Entry]:
    """Merge new records into the state file and remove what is due; the entries removed."""
    now = now or datetime.now(UTC)
    state = read_state(driver)
    merged = _merge_records(driver, state)
    due = sorted((e for e in state.values() if e.expiry <= now), key=lambda e: e.expiry)
    removed = []
    for entry in due:
        if not proceed():
            break
        try:
            _remove(driver, cache, entry)
        except errors.DigestInvalid:
            log.warning("proxy: dropping scheduler entry with a bad key %r", entry.key)
        del state[entry.key]
        removed.append(entry)
    if merged or removed:
        driver.put_content(paths.SCHEDULER_STATE, encode(state.values()))
    for path in merged:
        with contextlib.suppress(PathNotFoundError):
            driver.delete(path)
    return removed


def interval(ttl: float) -> float:
    """How often the expiry job runs: a tenth of ``ttl``, between 1 s and a minute."""
    return min(MAX_INTERVAL, max(1.0, ttl / 10))


def _merge_records(driver: StorageDriver, state: dict[str, Entry]) -> list[str]:
    """Add every pending record to ``state`` (a later schedule of a key replaces the earlier,
    as Go's ``add`` does); the records' paths, to delete once the state is written."""
    try:
        found = sorted(driver.list(paths.PROXY_SCHEDULED))
    except PathNotFoundError:
        return []
    for path in found:
        try:
            state.update(decode(driver.get_content(path)))
        except PathNotFoundError:
            continue
        except ValueError as exc:
            log.warning("proxy: dropping damaged schedule record %s: %s", path, exc)
    return found


def _remove(driver: StorageDriver, cache: BlobDescriptorCache, entry: Entry) -> None:
    blobs = BlobStore(driver, cache)
    digest = entry.digest
    if entry.kind == MANIFEST:
        links = RepositoryBlobs(blobs, entry.repository, paths.manifest_revision_link)
        with contextlib.suppress(errors.BlobUnknown):
            links.unlink(digest)
        emptied.note(driver, entry.repository)
        log.info("proxy: manifest %s expired", entry.key)
        return
    with contextlib.suppress(errors.BlobUnknown):
        RepositoryBlobs(blobs, entry.repository).unlink(digest)
    with contextlib.suppress(PathNotFoundError):
        driver.delete(paths.blob_dir(digest))
    cache.clear(digest)
    log.info("proxy: blob %s expired", entry.key)
