"""The usage figures, computed from the job's state: pure, no I/O.

* A **repository** uses every blob its manifests reference (configs, layers, the manifests of
  an index) and the manifests themselves, each once, tagged or not: what stays after a garbage
  collection. ``exclusive_bytes`` are blobs no other repository references (what deleting it
  would free); ``shared_bytes`` the rest.
* A **namespace** is a name's first component (``team-a`` for ``team-a/app/web``, and the
  repository ``team-a`` itself): its blobs counted once however many of its repositories use
  them; ``exclusive_bytes`` are those no other namespace references.
* The **total** counts every referenced blob once; ``shared_bytes`` are those two or more
  repositories reference. ``stored_bytes`` is everything in ``blobs/`` at the last full scan,
  garbage awaiting collection included.
* A **quota** uses the blobs of the repositories its pattern matches, each once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from distribution.storage.catalog import path_key
from distribution.storage.inventory import ManifestRecord, RepositoryRecord
from distribution.usage.state import State


class Limit(Protocol):
    """A quota as the figures need it (see :mod:`distribution.quotas`)."""

    text: str
    limit: int

    def matches(self, name: str) -> bool: ...


@dataclass
class Figures:
    """Counts and bytes of a repository, a namespace or everything."""

    repositories: int = 0
    tags: int = 0
    manifests: int = 0
    blobs: int = 0
    bytes: int = 0
    exclusive_bytes: int = 0
    shared_bytes: int = 0
    last_push: float | None = None
    last_pull: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "repositories": self.repositories,
            "tags": self.tags,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "exclusive_bytes": self.exclusive_bytes,
            "shared_bytes": self.shared_bytes,
            "last_push": timestamp(self.last_push),
            "last_pull": timestamp(self.last_pull),
        }


@dataclass
class QuotaUsage:
    repositories: str
    limit: int
    bytes: int

    @property
    def percent(self) -> float:
        return 100.0 * self.bytes / self.limit

    @property
    def over(self) -> bool:
        return self.bytes >= self.limit

    def to_json(self) -> dict[str, Any]:
        return {
            "repositories": self.repositories,
            "limit": self.limit,
            "bytes": self.bytes,
            "percent": round(self.percent, 2),
            "over": self.over,
        }


@dataclass
class Report:
    """Everything the admin endpoint, ``registry usage`` and the metrics show."""

    generated: float
    repositories: dict[str, Figures]
    namespaces: dict[str, Figures]
    total: Figures
    quotas: list[QuotaUsage]
    stored_blobs: int
    stored_bytes: int
    full_scan: float
    pulls_since: float

    def summary_json(self) -> dict[str, Any]:
        """The small part that metrics and quota checks read often."""
        return {
            "generated": timestamp(self.generated),
            "generated_unix": self.generated,
            "full_scan": timestamp(self.full_scan or None),
            "pulls_since": timestamp(self.pulls_since),
            "total": {
                **self.total.to_json(),
                "stored_blobs": self.stored_blobs,
                "stored_bytes": self.stored_bytes,
            },
            "namespaces": [
                {"name": name, **f.to_json()} for name, f in sorted(self.namespaces.items())
            ],
            "quotas": [quota.to_json() for quota in self.quotas],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary_json(),
            "repositories": [
                {"name": name, **_repository_json(f)}
                for name, f in sorted(self.repositories.items(), key=lambda i: path_key(i[0]))
            ],
        }


def _repository_json(figures: Figures) -> dict[str, Any]:
    found = figures.to_json()
    del found["repositories"]
    return found


def namespace(name: str) -> str:
    return name.split("/", 1)[0]


def compute(state: State, quotas: Iterable[Limit] = (), now: float = 0.0) -> Report:
    """The figures of every non-empty repository in ``state``."""
    manifests = state.manifests
    used: dict[str, dict[str, int]] = {}
    repositories: dict[str, Figures] = {}
    for name, record in state.repositories.items():
        if record.empty:
            continue
        used[name] = blobs_of(record, manifests)
        repositories[name] = Figures(
            repositories=1,
            tags=len(record.tags),
            manifests=len(record.manifests),
            last_push=record.last_push,
            last_pull=state.last_pull(name),
        )
    by_repository = _users(used.items())
    for name, blobs in used.items():
        _fill(repositories[name], blobs, by_repository)

    grouped: dict[str, list[str]] = {}
    for name in used:
        grouped.setdefault(namespace(name), []).append(name)
    namespace_blobs = {ns: _union(used[n] for n in names) for ns, names in grouped.items()}
    by_namespace = _users(namespace_blobs.items())
    namespaces = {}
    for ns, names in grouped.items():
        figures = _sum(repositories[n] for n in names)
        _fill(figures, namespace_blobs[ns], by_namespace)
        namespaces[ns] = figures

    total = _sum(repositories.values())
    everything = _union(used.values())
    total.blobs = len(everything)
    total.bytes = sum(everything.values())
    total.shared_bytes = sum(
        size for digest, size in everything.items() if by_repository[digest] > 1
    )
    total.exclusive_bytes = total.bytes - total.shared_bytes
    limits = [
        QuotaUsage(
            quota.text,
            quota.limit,
            sum(_union(blobs for n, blobs in used.items() if quota.matches(n)).values()),
        )
        for quota in quotas
    ]
    return Report(
        generated=now,
        repositories=repositories,
        namespaces=namespaces,
        total=total,
        quotas=limits,
        stored_blobs=state.stored_blobs,
        stored_bytes=state.stored_bytes,
        full_scan=state.full_scan,
        pulls_since=state.since,
    )


def blobs_of(record: RepositoryRecord, manifests: Mapping[str, ManifestRecord]) -> dict[str, int]:
    """Every blob the repository's manifests reference, and the manifests, with sizes."""
    found: dict[str, int] = {}
    for digest in record.manifests:
        stored = manifests.get(digest)
        if stored is None:
            continue  # its blob is gone (a damaged or half-collected repository)
        found[digest] = stored.size
        for reference, size in stored.references:
            found.setdefault(reference, size)
    return found


def timestamp(moment: float | None) -> str | None:
    """RFC 3339 in UTC, whole seconds; None stays None."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _users(owners: Iterable[tuple[str, dict[str, int]]]) -> dict[str, int]:
    """How many owners (repositories or namespaces) reference each blob."""
    counts: dict[str, int] = {}
    for _, blobs in owners:
        for digest in blobs:
            counts[digest] = counts.get(digest, 0) + 1
    return counts


def _fill(figures: Figures, blobs: dict[str, int], users: dict[str, int]) -> None:
    figures.blobs = len(blobs)
    figures.bytes = sum(blobs.values())
    figures.exclusive_bytes = sum(size for d, size in blobs.items() if users[d] == 1)
    figures.shared_bytes = figures.bytes - figures.exclusive_bytes


def _union(groups: Iterable[dict[str, int]]) -> dict[str, int]:
    found: dict[str, int] = {}
    for blobs in groups:
        found.update(blobs)
    return found


def _sum(parts: Iterable[Figures]) -> Figures:
    total = Figures()
    for part in parts:
        total.repositories += part.repositories
        total.tags += part.tags
        total.manifests += part.manifests
        total.last_push = _latest(total.last_push, part.last_push)
        total.last_pull = _latest(total.last_pull, part.last_pull)
    return total


def _latest(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
