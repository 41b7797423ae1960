"""A retention run: read each repository a policy covers, decide, delete (or only report).

Safe while pushes continue:

* A tag or manifest written after the run started, or less than :data:`RECENT` seconds
  before (pushes in flight, storage clocks a little off), is never deleted.
* Each tag is deleted under its ``current/link`` lock, after checking that the link still
  holds what was decided on; a manifest PUT writes the tag under the same lock, so a push that
  moves the tag meanwhile wins and the tag stays. Manifests are unlinked the same way under
  their revision link's lock, which a PUT of the same manifest holds while it tags it.
* What a manifest pushed during the run reaches (an old index tagged again keeps its
  children) stays: the repository is read again after its tags went, before its manifests go.
  An index pushed after that read writes its children's links again under their locks before
  it is stored (:func:`distribution.api.manifests._renew_children`), so each is either seen
  changed here and kept, or gone before the push, which then fails.

Blobs are not deleted here: the online garbage collection that follows frees those no
manifest references any more. :attr:`Report.freed_bytes` is what it will free (blobs still
used by a manifest elsewhere, in any repository, do not count).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from distribution import errors
from distribution.cache.base import NO_CACHE, BlobDescriptorCache
from distribution.digest import Digest
from distribution.retention.policy import (
    Policy,
    RetentionSettings,
    Tag,
    Untagged,
    decide,
    untagged_goes,
)
from distribution.storage import catalog, emptied, inventory, paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import PathNotFoundError, StorageDriver
from distribution.storage.gc import Node, kept_manifests
from distribution.storage.inventory import ManifestRecord, RepositoryRecord
from distribution.storage.locks import Locks, holding_if_present
from distribution.storage.manifests import ManifestStore
from distribution.storage.tags import TagStore
from distribution.usage.figures import blobs_of
from distribution.usage.state import State

log = logging.getLogger(__name__)

#: Seconds before the run's start within which a push counts as in flight: never deleted.
RECENT = 60.0

#: ``immutable(repository, tag)``: the rule freezing the tag, or None (the access rules').
Immutable = Callable[[str, str], str | None]


@dataclass
class Outcome:
    """What a run did (or, dry, would do) to one repository."""

    name: str
    policy: str
    #: ``tag -> digest`` of the tags deleted.
    deleted_tags: dict[str, str] = field(default_factory=dict)
    #: ``tag -> why it stays`` (the keep entry, ``immutable[0]``, ``pushed during the run``).
    kept_tags: dict[str, str] = field(default_factory=dict)
    deleted_manifests: list[str] = field(default_factory=list)
    #: Tags and manifests that changed after the decision (a push won): left in place.
    skipped: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.deleted_tags or self.deleted_manifests)


@dataclass
class Report:
    dry_run: bool
    repositories: list[Outcome] = field(default_factory=list)
    #: Repositories a policy covers, read and decided on.
    scanned: int = 0
    freed_blobs: int = 0
    freed_bytes: int = 0
    seconds: float = 0.0

    @property
    def deleted_tags(self) -> int:
        return sum(len(o.deleted_tags) for o in self.repositories)

    @property
    def deleted_manifests(self) -> int:
        return sum(len(o.deleted_manifests) for o in self.repositories)

    def lines(self) -> Iterable[str]:
        """What goes, per repository, as ``registry retention`` prints it."""
        verb = "would delete" if self.dry_run else "deleted"
        for outcome in self.repositories:
            if not outcome.changed and not outcome.skipped:
                continue
            yield f"{outcome.name} ({outcome.policy}):"
            for tag, digest in sorted(outcome.deleted_tags.items()):
                yield f"  {verb} tag {tag} ({digest})"
            for digest in outcome.deleted_manifests:
                yield f"  {verb} manifest {digest}"
            for what in outcome.skipped:
                yield f"  left {what}: it changed during the run"

    def summary(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        changed = sum(1 for o in self.repositories if o.changed)
        return (
            f"retention: {self.scanned} repositories under a policy, {verb} "
            f"{self.deleted_tags} tags and {self.deleted_manifests} manifests in {changed}; "
            f"{self.freed_bytes} bytes in {self.freed_blobs} blobs freed once collected "
            f"({self.seconds:.1f} s)"
        )


def run(
    driver: StorageDriver,
    settings: RetentionSettings,
    state: State,
    *,
    dry_run: bool,
    immutable: Immutable = lambda repository, tag: None,
    locks: Locks | None = None,
    cache: BlobDescriptorCache = NO_CACHE,
    proceed: Callable[[], bool] = lambda: True,
    now: float | None = None,
) -> Report:
    """Apply ``settings``' policies to every repository they cover.

    ``state`` (the usage job's, refreshed just before) gives pull times and what other
    repositories reference; it is not changed. ``proceed`` (the maintenance lease) is asked
    before each repository's deletions.
    """
    started = time.monotonic()
    now = time.time() if now is None else now
    report = Report(dry_run)
    runner = _Runner(driver, state, immutable, locks, cache, now)
    for name in catalog.walk(driver):
        policy = settings.policy_for(name)
        if policy is None:
            continue
        report.scanned += 1
        plan = runner.plan(name, policy)
        if plan.outcome.changed and not dry_run:
            if not proceed():
                log.warning("retention: the maintenance lease was lost; stopping")
                break
            runner.apply(plan)
        report.repositories.append(plan.outcome)
        runner.account(plan)
    report.freed_blobs, report.freed_bytes = runner.freed()
    report.seconds = time.monotonic() - started
    return report


@dataclass
class _Plan:
    outcome: Outcome
    policy: Policy
    record: RepositoryRecord
    targets: dict[str, str]
    nodes: dict[str, ManifestRecord]


class _Runner:
    def __init__(
        self,
        driver: StorageDriver,
        state: State,
        immutable: Immutable,
        locks: Locks | None,
        cache: BlobDescriptorCache,
        now: float,
    ) -> None:
        self.driver = driver
        self.state = state
        self.immutable = immutable
        self.locks = locks
        self.blobs = BlobStore(driver, cache)
        self.now = now
        #: Pushes at or after this are in flight: never deleted.
        self.fresh = now - RECENT
        #: Blobs of the manifests deleted, with their sizes.
        self.released: dict[str, int] = {}
        #: The repositories this run read, as they are after it (``state`` stays as given).
        self.after: dict[str, RepositoryRecord] = {}

    # -- deciding ---------------------------------------------------------------------------

    def plan(self, name: str, policy: Policy) -> _Plan:
        record = inventory.scan_repository(self.driver, name)
        targets = inventory.tag_targets(self.driver, name, sorted(record.tags))
        nodes = self._nodes(record)
        pulls = self.state.pulls.get(name, {})
        tags = [
            Tag(tag, targets[tag], record.tags[tag], _latest(pulls, tag, targets[tag]))
            for tag in sorted(targets)
        ]
        protected = {}
        for tag in tags:
            rule = self.immutable(name, tag.name)
            if rule is not None:
                protected[tag.name] = rule
            elif tag.pushed >= self.fresh:
                protected[tag.name] = "pushed during the run"
        decision = decide(policy, tags, self.now, self.state.since, protected)
        outcome = Outcome(name, policy.key, kept_tags=decision.kept)
        outcome.deleted_tags = {tag: targets[tag] for tag in decision.deleted}
        outcome.deleted_manifests = self._manifests_going(
            name, policy, record, targets, nodes, set(decision.deleted), pulls
        )
        return _Plan(outcome, policy, record, targets, nodes)

    def _nodes(self, record: RepositoryRecord) -> dict[str, ManifestRecord]:
        nodes = {}
        for digest in record.manifests:
            found = self.state.manifests.get(digest)
            if found is None:
                found = inventory.read_manifest(self.driver, digest)
                if found is None:
                    continue  # its blob is gone: nothing to decide on
                self.state.manifests[digest] = found
            nodes[digest] = found
        return nodes

    def _manifests_going(
        self,
        name: str,
        policy: Policy,
        record: RepositoryRecord,
        targets: Mapping[str, str],
        nodes: Mapping[str, ManifestRecord],
        deleted_tags: set[str],
        pulls: Mapping[str, float],
    ) -> list[str]:
        """Manifests no kept tag reaches that went with their tags (an index with its
        children) or are untagged too long."""
        tagged = set(targets.values())
        children = {child for node in nodes.values() for child in node.children}
        roots = {digest for tag, digest in targets.items() if tag not in deleted_tags}
        history: dict[str, float] | None = None
        for digest, node in nodes.items():
            pushed = record.manifests[digest]
            if pushed >= self.fresh:
                roots.add(digest)  # pushed (again) during the run
                continue
            if (
                digest in tagged
                or digest in children
                or (node.subject is not None and node.subject in nodes)
            ):
                continue  # its tags decide; a child follows its index, a referrer its subject
            if policy.untagged is not None and pushed < self.now - policy.untagged:
                if history is None:
                    history = self._untagged_since(name, record)
                since = max(pushed, history.get(digest, 0.0))
                if untagged_goes(
                    policy, Untagged(digest, since, pulls.get(digest)), self.now, self.state.since
                ):
                    continue
            roots.add(digest)
        kept = kept_manifests(_graph(nodes), (Digest.parse(d) for d in roots))
        keep = {str(digest) for digest in kept}
        return sorted(d for d in nodes if d not in keep)

    def _untagged_since(self, name: str, record: RepositoryRecord) -> dict[str, float]:
        """When each manifest a tag once pointed at lost that tag: the tag's last move."""
        since: dict[str, float] = {}
        for tag, moved in record.tags.items():
            for digest in inventory.digests_under(self.driver, paths.tag_index(name, tag)):
                since[digest] = max(since.get(digest, 0.0), moved)
        return since

    # -- deleting ---------------------------------------------------------------------------

    def apply(self, plan: _Plan) -> None:
        outcome = plan.outcome
        name = outcome.name
        tags = TagStore(self.driver, name)
        for tag, digest in list(outcome.deleted_tags.items()):
            link = paths.tag_current_link(name, tag)
            with self._locked(link):
                if not self._unchanged(link, plan.record.tags[tag], digest):
                    outcome.skipped.append(f"tag {tag}")
                    del outcome.deleted_tags[tag]
                    continue
                try:
                    tags.untag(tag)
                except errors.ManifestUnknown:
                    del outcome.deleted_tags[tag]
        if outcome.skipped:
            # A push moved or re-pushed a tag meant to go: decide the manifests again.
            kept_targets = {t: d for t, d in plan.targets.items() if t not in outcome.deleted_tags}
            outcome.deleted_manifests = [
                d
                for d in outcome.deleted_manifests
                if d not in _reach(plan.nodes, set(kept_targets.values()))
            ]
        self._spare_what_pushes_reach(plan)
        store = ManifestStore(self.blobs, name)
        for digest in list(outcome.deleted_manifests):
            link = paths.manifest_revision_link(name, Digest.parse(digest))
            with self._locked(link):
                if not self._unchanged(link, plan.record.manifests[digest], None):
                    outcome.skipped.append(f"manifest {digest}")
                    outcome.deleted_manifests.remove(digest)
                    continue
                try:
                    store.delete(Digest.parse(digest))
                except errors.ManifestUnknown:
                    outcome.deleted_manifests.remove(digest)
        if outcome.changed:
            emptied.note(self.driver, name)
            log.info(
                "retention: %s: deleted %d tags and %d manifests (%s)",
                name,
                len(outcome.deleted_tags),
                len(outcome.deleted_manifests),
                plan.policy.key,
            )

    def _spare_what_pushes_reach(self, plan: _Plan) -> None:
        """Keep the manifests meant to go that a manifest pushed since the plan reaches.

        A push during the run (an old index tagged again, an index built of old untagged
        images) rewrites the link of the manifest it pushes, which then stays, but not the
        links of the children it needs; read again after the tags went, the repository shows
        the pushes, and their children stay with them.
        """
        outcome = plan.outcome
        if not outcome.deleted_manifests:
            return
        current = inventory.scan_repository(self.driver, outcome.name).manifests
        pushed = {d: t for d, t in current.items() if plan.record.manifests.get(d) != t}
        if not pushed:
            return
        graph = {**plan.nodes, **self._nodes(RepositoryRecord(manifests=pushed))}
        reached = _reach(graph, set(pushed))
        for digest in [d for d in outcome.deleted_manifests if d in reached]:
            outcome.deleted_manifests.remove(digest)
            outcome.skipped.append(f"manifest {digest}")

    def _locked(self, path: str) -> contextlib.AbstractContextManager[None]:
        if self.locks is None:
            return contextlib.nullcontext()
        return holding_if_present(self.locks, path)

    def _unchanged(self, link: str, written: float, content: str | None) -> bool:
        """Whether ``link`` still is what the decision read: same time, and same digest."""
        try:
            info = self.driver.stat(link)
            if content is not None:
                current = self.driver.get_content(link).decode("ascii", "replace").strip()
                if current != content:
                    return False
        except PathNotFoundError:
            return False
        stamp = info.mtime.timestamp()
        return stamp == written and stamp < self.fresh

    # -- accounting -------------------------------------------------------------------------

    def account(self, plan: _Plan) -> None:
        """Note the repository as it is after the run, and the blobs released."""
        outcome = plan.outcome
        record = plan.record
        for tag in outcome.deleted_tags:
            record.tags.pop(tag, None)
        for digest in outcome.deleted_manifests:
            record.manifests.pop(digest, None)
            node = plan.nodes[digest]
            self.released.setdefault(digest, node.size)
            for reference, size in node.references:
                self.released.setdefault(reference, size)
        self.after[outcome.name] = record

    def freed(self) -> tuple[int, int]:
        """Blobs released by deleted manifests that no remaining manifest references."""
        if not self.released:
            return 0, 0
        used: set[str] = set()
        for record in {**self.state.repositories, **self.after}.values():
            used.update(blobs_of(record, self.state.manifests))
        freed = {d: s for d, s in self.released.items() if d not in used}
        return len(freed), sum(freed.values())


def _graph(nodes: Mapping[str, ManifestRecord]) -> dict[Digest, Node]:
    return {
        Digest.parse(digest): Node(
            tuple(Digest.parse(ref) for ref, _ in node.references),
            Digest.parse(node.subject) if node.subject else None,
        )
        for digest, node in nodes.items()
    }


def _reach(nodes: Mapping[str, ManifestRecord], roots: set[str]) -> set[str]:
    return {str(d) for d in kept_manifests(_graph(nodes), (Digest.parse(r) for r in roots))}


def _latest(pulls: Mapping[str, float], tag: str, digest: str) -> float | None:
    found = [when for when in (pulls.get(tag), pulls.get(digest)) if when is not None]
    return max(found, default=None)
