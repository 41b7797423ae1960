"""``registry verify``: re-hash every stored blob (layers, configs and manifests alike) and find
those whose content is not their digest's, as a storage scrub does.

Blobs are read in the blob store's own order, one fan-out folder (``blobs/<alg>/<xx>``) at a
time, and hashed by a pool of threads (hashing and reading release the GIL), so memory stays
bounded by one folder's listing whatever the store's size. With ``repair`` a damaged blob is
moved out of the blob store (to ``_maintenance/quarantine``) and forgotten by the blob
descriptor cache: the registry then answers 404 for it, and the next push of that digest
stores it again. ``repair`` also rebuilds every repository's referrers index.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from distribution import errors
from distribution.cache.base import NO_CACHE, BlobDescriptorCache
from distribution.digest import ALGORITHMS, Digest
from distribution.storage import catalog, paths, referrers
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError
from distribution.storage.manifests import ManifestStore

#: Bytes read at a time from a blob.
READ_CHUNK = 1 << 20
#: Seconds between two progress reports.
PROGRESS_EVERY = 5.0


@dataclass(frozen=True)
class Damage:
    """A blob whose stored content does not match its digest, or that could not be read."""

    digest: Digest
    size: int
    reason: str

    def __str__(self) -> str:
        return f"{self.digest}: {self.reason} ({self.size} bytes)"


@dataclass
class Report:
    blobs: int = 0
    bytes: int = 0
    damaged: list[Damage] = field(default_factory=list)
    quarantined: int = 0
    reindexed: int = 0
    started: float = field(default_factory=time.monotonic)

    def progress(self) -> str:
        seconds = max(time.monotonic() - self.started, 1e-9)
        return (
            f"verified {self.blobs} blobs, {self.bytes / 1e6:.1f} MB "
            f"({self.blobs / seconds:.0f} blobs/s, {self.bytes / 1e6 / seconds:.0f} MB/s), "
            f"{len(self.damaged)} damaged"
        )

    def summary(self, repair: bool) -> str:
        line = f"{self.progress()} in {time.monotonic() - self.started:.1f}s"
        if repair:
            line += (
                f"; {self.quarantined} moved to quarantine, "
                f"referrers of {self.reindexed} repositories reindexed"
            )
        return line


def verify(
    driver: StorageDriver,
    *,
    repair: bool = False,
    jobs: int = 4,
    cache: BlobDescriptorCache = NO_CACHE,
    found: Callable[[Damage], None] = lambda damage: None,
    progress: Callable[[Report], None] = lambda report: None,
) -> Report:
    """Re-hash every blob; ``found`` hears of each damaged one, ``progress`` every few seconds."""
    report = Report()
    last_progress = time.monotonic()
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="verify") as pool:
        for folder in _fan_out_folders(driver):
            for digest, outcome in zip(*_hash_folder(pool, driver, folder), strict=True):
                size, actual, error = outcome
                if actual is None and error is None:
                    continue  # a folder without data: no blob
                report.blobs += 1
                report.bytes += size
                damage = _damage(digest, size, actual, error)
                if damage is None:
                    continue
                report.damaged.append(damage)
                found(damage)
                if repair and _quarantine(driver, digest):
                    cache.clear(digest)
                    report.quarantined += 1
            if time.monotonic() - last_progress >= PROGRESS_EVERY:
                progress(report)
                last_progress = time.monotonic()
    if repair:
        for name in catalog.walk(driver):
            if referrers.reindex(ManifestStore(BlobStore(driver), name)):
                report.reindexed += 1
    return report


def _fan_out_folders(driver: StorageDriver) -> Iterator[str]:
    for algorithm_folder in _list(driver, paths.BLOBS):
        if algorithm_folder.rsplit("/", 1)[1] in ALGORITHMS:
            yield from _list(driver, algorithm_folder)


def _hash_folder(
    pool: ThreadPoolExecutor, driver: StorageDriver, folder: str
) -> tuple[list[Digest], Iterator[tuple[int, str | None, str | None]]]:
    """The blobs of one fan-out folder, and their outcomes as they are hashed in ``pool``."""
    algorithm = folder.rsplit("/", 2)[1]
    digests = []
    for entry in _list(driver, folder):
        try:
            digests.append(Digest.parse(f"{algorithm}:{entry.rsplit('/', 1)[1]}"))
        except errors.DigestInvalid:
            continue
    return digests, pool.map(lambda digest: _hash(driver, digest), digests)


def _hash(driver: StorageDriver, digest: Digest) -> tuple[int, str | None, str | None]:
    """``(size, hex of the content, None)``, or ``(size so far, None, why)`` if unreadable;
    ``(0, None, None)`` for a folder without data (not a blob)."""
    hasher, size = digest.hasher(), 0
    try:
        with driver.reader(paths.blob_data(digest)) as f:
            while chunk := f.read(READ_CHUNK):
                hasher.update(chunk)
                size += len(chunk)
    except PathNotFoundError:
        return 0, None, None
    except (StorageDriverError, OSError) as err:
        return size, None, f"unreadable: {err}"
    return size, hasher.hexdigest(), None


def _damage(digest: Digest, size: int, actual: str | None, error: str | None) -> Damage | None:
    if error is not None:
        return Damage(digest, size, error)
    if actual is None or actual == digest.hex:
        return None
    return Damage(digest, size, f"content hashes to {digest.algorithm}:{actual}")


def _quarantine(driver: StorageDriver, digest: Digest) -> bool:
    try:
        driver.move(paths.blob_data(digest), paths.quarantine_data(digest))
    except PathNotFoundError:
        return False
    with contextlib.suppress(PathNotFoundError):
        driver.delete(paths.blob_dir(digest))
    return True


def _list(driver: StorageDriver, folder: str) -> list[str]:
    try:
        return sorted(driver.list(folder))
    except PathNotFoundError:
        return []
