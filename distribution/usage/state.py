"""What the usage job keeps between runs, in one compressed file in storage.

It holds every repository's tags and manifests with their times, every manifest's references
(content-addressed, so never stale), and every recorded pull. With it a refresh re-reads only
the repositories that changed; without it (first run, damaged file) the job scans everything.
A new maintenance leader, on any replica, carries on from the same file.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver
from distribution.storage.inventory import ManifestRecord, RepositoryRecord

log = logging.getLogger(__name__)

#: The file format's version; another version is scanned afresh.
VERSION = 1


@dataclass
class State:
    repositories: dict[str, RepositoryRecord] = field(default_factory=dict)
    manifests: dict[str, ManifestRecord] = field(default_factory=dict)
    #: ``repository -> tag or digest -> last pull``.
    pulls: dict[str, dict[str, float]] = field(default_factory=dict)
    #: When pulls started being recorded: before it, nobody knows what was pulled.
    since: float = field(default_factory=time.time)
    #: When the last refresh and the last full scan finished (0: never).
    refreshed: float = 0.0
    full_scan: float = 0.0
    #: Blobs in ``blobs/`` and their bytes, counted at the last full scan.
    stored_blobs: int = 0
    stored_bytes: int = 0
    #: Repositories noted as changed and not read since (kept if a refresh stops midway).
    pending: set[str] = field(default_factory=set)

    def merge_pulls(self, pulls: dict[str, dict[str, float]]) -> None:
        for name, refs in pulls.items():
            mine = self.pulls.setdefault(name, {})
            for ref, when in refs.items():
                if when > mine.get(ref, 0.0):
                    mine[ref] = when

    def last_pull(self, name: str) -> float | None:
        return max(self.pulls.get(name, {}).values(), default=None)

    def encode(self) -> bytes:
        value = {
            "version": VERSION,
            "since": self.since,
            "refreshed": self.refreshed,
            "full_scan": self.full_scan,
            "stored": [self.stored_blobs, self.stored_bytes],
            "pending": sorted(self.pending),
            "repositories": {n: r.to_json() for n, r in self.repositories.items()},
            "manifests": {d: m.to_json() for d, m in self.manifests.items()},
            "pulls": self.pulls,
        }
        return gzip.compress(json.dumps(value, separators=(",", ":")).encode(), compresslevel=1)

    @classmethod
    def decode(cls, data: bytes) -> State | None:
        value: Any = json.loads(gzip.decompress(data))
        if value.get("version") != VERSION:
            return None
        return cls(
            repositories={
                n: RepositoryRecord.from_json(r) for n, r in value["repositories"].items()
            },
            manifests={d: ManifestRecord.from_json(m) for d, m in value["manifests"].items()},
            pulls={n: dict(refs) for n, refs in value["pulls"].items()},
            since=float(value["since"]),
            refreshed=float(value["refreshed"]),
            full_scan=float(value["full_scan"]),
            stored_blobs=int(value["stored"][0]),
            stored_bytes=int(value["stored"][1]),
            pending=set(value["pending"]),
        )


def load(driver: StorageDriver) -> State | None:
    """The saved state; None when there is none or it cannot be read (then scan afresh)."""
    try:
        data = driver.get_content(paths.USAGE_STATE)
    except PathNotFoundError:
        return None
    try:
        return State.decode(data)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        log.warning("usage: the saved state is unreadable (%s); scanning everything again", exc)
        return None


def save(driver: StorageDriver, state: State) -> None:
    driver.put_content(paths.USAGE_STATE, state.encode())
