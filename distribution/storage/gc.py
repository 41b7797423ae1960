"""Garbage collection: mark what kept manifests reach, sweep every other blob.

**Offline** (``registry garbage-collect CONFIG``) this is distribution v3's ``MarkAndSweep``,
same output, for a registry that is stopped or read-only:

* Mark: in each repository, every manifest is kept (with ``delete_untagged``, only tagged
  ones), and with it everything it references: config, layers and child manifests, followed
  recursively through children that are manifests of the repository. Untagged manifests that a
  kept index references stay (v3; 2.8 deleted them and broke multi-arch images).
* Beyond v3, with ``delete_untagged`` a *referrer* (a manifest whose ``subject`` is a kept
  manifest of the repository: a signature, an SBOM) is kept too, as the OCI spec advises; v3
  deletes untagged referrers. An untagged manifest some other repository marks is kept, as in v3.
* Sweep: the untagged manifests not kept lose their revision and tag history entries, every
  blob not marked is deleted, and ``_layers`` links to those blobs are removed (v3 removes
  links to blobs not marked *so far* in its walk, which depends on repository order; we remove
  only links whose blob goes, a subset).

**Online** (``--online``, and the scheduled job) it is safe while pushes continue. ``T0`` is
when the mark starts and ``horizon = T0 - grace``:

1. Anything younger than the horizon is in use: a blob whose data was written after it (an
   upload whose manifest has not come yet), a ``_layers`` link written after it (a blob just
   pushed again, or mounted), and a manifest whose revision link was written after it (an
   index's children arrive before the index) is a root of the mark. Uploads in progress live
   under ``_uploads`` and are never touched here (upload purging ages them out).
2. Quarantine instead of delete: the data of each blob to delete is *moved* to
   ``_maintenance/gc/trash``, and untagged manifests to delete lose their revision link
   (unless it was written after the horizon: pushed again since the mark). From that moment
   a manifest PUT that needs one of them fails its check (``MANIFEST_BLOB_UNKNOWN``) unless
   the client uploads the blob again, which recreates it.
3. Wait ``settle`` seconds, then list every repository's manifests again and mark what the
   ones younger than the horizon reach, and the quarantined manifests a tag now points at
   reach (tagged again since the mark), and protect fresh ``_layers`` links again. Blobs and
   manifests so marked come back from quarantine; the rest is deleted for good.

Why a racing manifest PUT never ends up referencing a deleted blob ``b``: the PUT checks ``b``
at ``tv`` and writes its revision link at ``tw``, and we assume ``tw - tv < settle`` (a few
storage operations). If ``tv`` is after the quarantine, ``b`` was not there and the PUT failed
(or the client uploaded ``b`` again, and then ``b`` exists and is not deleted: the purge only
removes the trash copy). If ``tv`` is before the quarantine ended, ``tw`` is before the rescan
started, so the rescan lists the new manifest (its link is younger than the horizon), marks
``b`` and restores it. A manifest that existed at the mark and was kept marked ``b`` in the
first place. Plain mtime checks without the quarantine would not do: an *old*, unreferenced
blob can be reused by a new manifest at any moment, and nothing about the blob changes then.
The assumptions: storage lists what was written before the listing started, and storage clocks
are within ``grace`` of ours.

Blob directories emptied by the quarantine and revision folders without a link are left in
place online (deleting a folder could race with a commit into it); every reader skips them.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from distribution import errors, manifest
from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE, BlobDescriptorCache
from distribution.digest import ALGORITHMS, CANONICAL, Digest
from distribution.storage import catalog, emptied, paths
from distribution.storage.driver import FileInfo, PathNotFoundError, StorageDriver
from distribution.storage.tags import TagStore

log = logging.getLogger(__name__)

#: Longest wait between quarantine and rescan when ``settle`` is not given.
MAX_SETTLE = 60.0
#: Repositories read at once while marking. A cold mark of 10,000 repositories is bound by the
#: CPU (the reads' system time, and thread switches under the GIL), not by the disk: four ran
#: it in 29.6-34.1 s where eight took 31.9-43.6 (benchmarks/README.md).
SCAN_THREADS = 4


class GCError(Exception):
    """The mark could not complete; nothing was deleted."""


@dataclass(frozen=True)
class Options:
    """How to collect: Go's ``--dry-run`` and ``--delete-untagged``, and our online mode."""

    dry_run: bool = False
    delete_untagged: bool = False
    online: bool = False
    #: Online: anything younger than this many seconds is never deleted.
    grace: float = 3600.0
    #: Online: seconds between quarantine and rescan; default ``min(grace, MAX_SETTLE)``.
    settle: float | None = None
    #: Log progress every this many repositories.
    progress_every: int = 100

    @property
    def settle_seconds(self) -> float:
        return min(self.grace, MAX_SETTLE) if self.settle is None else self.settle


@dataclass(frozen=True)
class ManifestDeletion:
    """An untagged manifest to delete, with the tags whose history may name it (as Go)."""

    name: str
    digest: Digest
    tags: tuple[str, ...]

    def __str__(self) -> str:
        return f"{{{self.name} {self.digest} [{' '.join(self.tags)}]}}"


@dataclass
class Report:
    """What a collection found and did."""

    repositories: int = 0
    marked: set[Digest] = field(default_factory=set)
    #: Blobs eligible for deletion, with their sizes.
    blobs: dict[Digest, int] = field(default_factory=dict)
    manifests: list[ManifestDeletion] = field(default_factory=list)
    layer_links: list[tuple[str, Digest]] = field(default_factory=list)
    #: Online: unmarked blobs spared because they are young or freshly linked.
    spared: int = 0
    #: Online: blobs and manifests brought back from quarantine by the rescan.
    restored: int = 0
    deleted_blobs: int = 0
    bytes_freed: int = 0

    @property
    def changed(self) -> list[str]:
        """The repositories that lose (or, dry, would lose) manifests."""
        return sorted({deletion.name for deletion in self.manifests})

    def summary(self, dry_run: bool) -> str:
        if dry_run:
            return (
                f"dry run: nothing deleted; {len(self.blobs)} blobs "
                f"({sum(self.blobs.values())} bytes), {len(self.manifests)} manifests and "
                f"{len(self.layer_links)} layer links eligible for deletion"
            )
        return (
            f"garbage collection finished: {self.repositories} repositories, "
            f"{len(self.marked)} blobs marked, {self.deleted_blobs} blobs deleted "
            f"({self.bytes_freed} bytes freed), {len(self.manifests)} manifests deleted, "
            f"{len(self.layer_links)} layer links removed, {self.spared} blobs spared as "
            f"recent, {self.restored} restored from quarantine"
        )


@dataclass(frozen=True)
class Node:
    """What the mark needs of one stored manifest: what it references, and its subject."""

    references: tuple[Digest, ...]
    subject: Digest | None = None


def read_node(body: bytes) -> Node:
    """The references of a stored manifest, as Go's ``References()``; schema 1 included.

    Raises :class:`~distribution.errors.Unknown` for content that is no manifest.
    """
    media_type, doc = manifest.load_stored(body)
    if media_type in (manifest.SCHEMA1, manifest.SCHEMA1_SIGNED):
        layers = doc.get("fsLayers") or []
        try:
            return Node(tuple(Digest.parse(layer["blobSum"]) for layer in layers))
        except (errors.DigestInvalid, KeyError, TypeError):
            raise errors.Unknown("stored schema 1 manifest is malformed") from None
    parsed = manifest.parse_stored_doc(media_type, doc)
    references = [parsed.config] if parsed.config is not None else []
    references += [*parsed.layers, *parsed.manifests]
    subject = parsed.subject.digest if parsed.subject is not None else None
    return Node(tuple(ref.digest for ref in references), subject)


def kept_manifests(nodes: Mapping[Digest, Node], roots: Iterable[Digest]) -> set[Digest]:
    """``roots`` and every manifest of the repository they reach.

    A kept manifest keeps the manifests it references (an index's children) and its referrers
    (the manifests whose ``subject`` it is), transitively.
    """
    referrers: dict[Digest, list[Digest]] = {}
    for digest, node in nodes.items():
        if node.subject is not None:
            referrers.setdefault(node.subject, []).append(digest)
    kept: set[Digest] = set()
    pending = [root for root in roots if root in nodes]
    while pending:
        digest = pending.pop()
        if digest in kept:
            continue
        kept.add(digest)
        pending.extend(ref for ref in nodes[digest].references if ref in nodes)
        pending.extend(referrers.get(digest, ()))
    return kept


def collect(
    driver: StorageDriver,
    options: Options,
    emit: Callable[[str], None] = print,
    proceed: Callable[[], bool] = lambda: True,
    cache: BlobDescriptorCache = NO_CACHE,
) -> Report:
    """Mark and sweep the registry on ``driver``; ``emit`` gets Go's output lines.

    ``proceed`` is asked before anything is deleted (the scheduler passes "do I still hold
    the lease?"); when it says no, nothing more is deleted and quarantined blobs come back.
    ``cache`` (the registry's blob descriptor cache) forgets each blob, link and manifest
    deleted, so that no replica answers for them from it (a client told a blob exists does
    not upload it, and its manifest is then refused).
    """
    return _Collector(driver, options, emit, proceed, cache).run()


class _Collector:
    def __init__(
        self,
        driver: StorageDriver,
        options: Options,
        emit: Callable[[str], None],
        proceed: Callable[[], bool],
        cache: BlobDescriptorCache,
    ) -> None:
        self.driver = driver
        self.options = options
        self.emit = emit
        self.proceed = proceed
        self.cache = cache
        self.report = Report()
        self.started = datetime.now(UTC)
        self.horizon = self.started - timedelta(seconds=options.grace)
        #: Digests with a ``_layers`` link younger than the horizon (online only).
        self.fresh_links: set[Digest] = set()
        #: Old ``_layers`` links of each repository, by digest.
        self.links: dict[str, set[Digest]] = {}
        #: The manifests chosen for deletion, with what they reference, by repository.
        self.candidates: dict[str, dict[Digest, Node]] = {}

    def run(self) -> Report:
        options = self.options
        if not options.dry_run:
            self._restore_leftovers()
        self._mark()
        for deletion in self.report.manifests:
            self.emit(f"manifest eligible for deletion: {deletion}")
        self._choose_blobs()
        report = self.report
        self.emit(
            f"\n{len(report.marked)} blobs marked, {len(report.blobs)} blobs and "
            f"{len(report.manifests)} manifests eligible for deletion"
        )
        for digest in report.blobs:
            self.emit(f"blob eligible for deletion: {digest}")
        report.layer_links = [
            (name, digest)
            for name, digests in self.links.items()
            for digest in sorted(digests, key=str)
            if digest not in report.marked
        ]
        for name, digest in report.layer_links:
            self.emit(f"{name}: layer link eligible for deletion: {digest}")
        if options.dry_run or not self.proceed():
            return report
        if options.online:
            self._sweep_online()
        else:
            self._sweep_offline()
        for name in report.changed:
            emptied.note(self.driver, name)
        return report

    # -- mark -----------------------------------------------------------------------------

    def _mark(self) -> None:
        for scan in _ordered(self._scan, catalog.walk(self.driver), SCAN_THREADS):
            self.emit(scan.name)
            self._mark_repository(scan)
            self.report.repositories += 1
            if self.report.repositories % self.options.progress_every == 0:
                log.info(
                    "garbage collection: %d repositories marked, %d blobs marked so far",
                    self.report.repositories,
                    len(self.report.marked),
                )
        self.report.manifests = [
            deletion for deletion in self.report.manifests if deletion.digest not in self.marked
        ]
        self.candidates = {
            name: {digest: node for digest, node in nodes.items() if digest not in self.marked}
            for name, nodes in self.candidates.items()
        }

    @property
    def marked(self) -> set[Digest]:
        return self.report.marked

    def _scan(self, name: str) -> _Scan:
        """What the mark needs of one repository, read from storage; several repositories are
        read at once (a cold walk waits on the disk, not on the CPU)."""
        # Only the grace period of untagged manifests, online, needs their links' times.
        revisions = self._revisions(name, self.options.online and self.options.delete_untagged)
        nodes = {digest: self._read(name, digest) for digest in revisions}
        # Tags matter only to find untagged manifests: without that, every manifest is kept
        # and the tags folder is not read (cold, one disk read a repository).
        all_tags: list[str] = []
        roots: set[Digest] = set()
        if self.options.delete_untagged:
            tags = TagStore(self.driver, name)
            with contextlib.suppress(errors.NameUnknown):  # no tags folder: no tags
                all_tags = tags.all()
            roots = {digest for tag in all_tags if (digest := self._resolve(tags, tag))}
            if self.options.online:
                roots |= {d for d, mtime in revisions.items() if mtime and mtime >= self.horizon}
        return _Scan(
            name,
            {digest: node for digest, node in nodes.items() if node is not None},
            tuple(all_tags),
            roots,
            set(self._digests_under(paths.layers(name))),
        )

    def _mark_repository(self, scan: _Scan) -> None:
        name, nodes = scan.name, scan.nodes
        roots = scan.roots if self.options.delete_untagged else set(nodes)
        kept = kept_manifests(nodes, roots)
        for digest in sorted(nodes, key=str):
            if digest in kept:
                self.emit(f"{name}: marking manifest {digest} ")
                self._mark_references(name, digest, nodes[digest])
            else:
                deletion = ManifestDeletion(name, digest, scan.tags)
                self.report.manifests.append(deletion)
                self.candidates.setdefault(name, {})[digest] = nodes[digest]
        # The repository's ``_layers`` links, by folder: only those of blobs nothing marks
        # are looked at closer, in :meth:`_settle_links`.
        self.links.setdefault(name, set()).update(scan.links)

    def _mark_references(self, name: str, digest: Digest, node: Node) -> None:
        self.marked.add(digest)
        for ref in node.references:
            if ref in self.marked:
                continue
            self.marked.add(ref)
            self.emit(f"{name}: marking blob {ref}")
            if ref.algorithm != CANONICAL:
                # Content pushed under another algorithm is stored under its sha256 digest.
                target = self._link_target(paths.layer_link(name, ref))
                if target is not None:
                    self.marked.add(target)

    def _revisions(self, name: str, timed: bool) -> dict[Digest, datetime | None]:
        """The repository's manifests (revision folders), with their link's modification time
        when ``timed`` (else None: a folder without a link reads as deleted in :meth:`_read`)."""
        found: dict[Digest, datetime | None] = {}
        for digest in self._digests_under(paths.manifest_revisions(name)):
            if not timed:
                found[digest] = None
                continue
            try:
                info = self.driver.stat(paths.manifest_revision_link(name, digest))
            except PathNotFoundError:
                continue
            found[digest] = info.mtime
        return found

    def _read(self, name: str, digest: Digest) -> Node | None:
        """The manifest's references; None if it was deleted while we looked."""
        target = self._link_target(paths.manifest_revision_link(name, digest))
        if target is None:
            return None
        body = self._content(paths.blob_data(target))
        if body is None and self.options.online:
            body = self._content(paths.gc_trash_data(target))
        if body is None:
            raise GCError(
                f"failed to retrieve manifest for digest {digest} in {name}: blob unknown"
            )
        try:
            return read_node(body)
        except errors.RegistryError as exc:
            raise GCError(f"failed to read manifest {digest} in {name}: {exc.message}") from None

    def _resolve(self, tags: TagStore, tag: str) -> Digest | None:
        try:
            return tags.resolve(tag)
        except errors.ManifestUnknown:
            return None

    def _settle_links(self) -> None:
        """Of the links to blobs nothing marked: drop folders without a link, and (online)
        set aside the fresh ones, which protect their blob; the rest may go."""
        for name, digests in self.links.items():
            for digest in [d for d in digests if d not in self.marked]:
                try:
                    info = self.driver.stat(paths.layer_link(name, digest))
                except PathNotFoundError:
                    digests.discard(digest)
                    continue
                if self.options.online and info.mtime >= self.horizon:
                    self.fresh_links.add(digest)
                    digests.discard(digest)

    # -- choose ---------------------------------------------------------------------------

    def _choose_blobs(self) -> None:
        self._settle_links()
        for digest, info in self._stored_blobs(paths.BLOBS, fan_out=True, skip=self.marked):
            if self.options.online and (info.mtime >= self.horizon or digest in self.fresh_links):
                self.report.spared += 1
                continue
            self.report.blobs[digest] = info.size

    # -- sweep ----------------------------------------------------------------------------

    def _sweep_offline(self) -> None:
        for deletion in self.report.manifests:
            self._delete_tag_history(deletion)
            self._delete(paths.manifest_revision(deletion.name, deletion.digest))
            self.cache.clear(deletion.digest, deletion.name, MANIFESTS)
        for digest, size in self.report.blobs.items():
            if self._delete(paths.blob_dir(digest)):
                self.report.deleted_blobs += 1
                self.report.bytes_freed += size
            self.cache.clear(digest)
        for name, digest in self.report.layer_links:
            self._delete(paths.layer_link(name, digest))
            self.cache.clear(digest, name, LAYERS)

    def _sweep_online(self) -> None:
        report = self.report
        for deletion in report.manifests:
            link = paths.manifest_revision_link(deletion.name, deletion.digest)
            if not self._fresh(link):  # a fresh link: pushed again since the mark, kept
                self._delete(link)
                self.cache.clear(deletion.digest, deletion.name, MANIFESTS)
        trashed = []
        for digest in report.blobs:
            try:
                self.driver.move(paths.blob_data(digest), paths.gc_trash_data(digest))
            except PathNotFoundError:
                continue
            self.cache.clear(digest)  # in quarantine: a client must upload it to use it
            trashed.append(digest)
        if not trashed and not report.manifests:
            return
        log.info(
            "garbage collection: %d blobs and %d manifests in quarantine for %.1fs",
            len(trashed),
            len(report.manifests),
            self.options.settle_seconds,
        )
        time.sleep(self.options.settle_seconds)
        keep = self._rescan()
        if not self.proceed():
            keep |= set(trashed)
            for deletion in report.manifests:
                keep.add(deletion.digest)
        self._restore_manifests(keep)
        gone = set()
        for digest in trashed:
            if digest in keep:
                self._restore(digest)
                report.restored += 1
            elif self._delete(paths.gc_trash_data(digest).rsplit("/", 1)[0]):
                gone.add(digest)
                report.deleted_blobs += 1
                report.bytes_freed += report.blobs[digest]
                self.cache.clear(digest)  # in case a read cached it as the quarantine began
        report.layer_links = [
            (name, digest)
            for name, digest in report.layer_links
            if digest not in keep and self._remove_stale_link(name, digest)
        ]

    def _rescan(self) -> set[Digest]:
        """Everything manifests written since the horizon reach, and what tags point at among
        the quarantined manifests (tagged again since the mark), and fresh ``_layers`` links."""
        keep: set[Digest] = set()
        for name in catalog.walk(self.driver):
            quarantined = self.candidates.get(name, {})
            revisions = self._revisions(name, timed=True)
            nodes = dict(quarantined)
            pending = list(self._tagged(name, quarantined)) if quarantined else []
            for digest, mtime in revisions.items():
                if mtime is None or mtime < self.horizon:
                    continue  # kept by the mark, or a candidate already in ``nodes``
                if digest not in nodes:
                    node = self._read(name, digest)
                    if node is None:
                        continue
                    nodes[digest] = node
                pending.append(digest)
            for digest in kept_manifests(nodes, pending):
                keep.add(digest)
                keep.update(nodes[digest].references)
            for digest in self._digests_under(paths.layers(name)):
                try:
                    info = self.driver.stat(paths.layer_link(name, digest))
                except PathNotFoundError:
                    continue
                if info.mtime >= self.horizon:
                    keep.add(digest)
        return keep

    def _tagged(self, name: str, digests: Iterable[Digest]) -> set[Digest]:
        """Those of ``digests`` a tag of the repository points at now."""
        tags = TagStore(self.driver, name)
        with contextlib.suppress(errors.NameUnknown):  # no tags folder: no tags
            return {d for tag in tags.all() if (d := self._resolve(tags, tag)) in digests}
        return set()

    def _fresh(self, path: str) -> bool:
        """Whether ``path`` was written after the horizon."""
        try:
            return self.driver.stat(path).mtime >= self.horizon
        except PathNotFoundError:
            return False

    def _restore_manifests(self, keep: set[Digest]) -> None:
        kept = []
        for deletion in self.report.manifests:
            if deletion.digest in keep:
                link = paths.manifest_revision_link(deletion.name, deletion.digest)
                if self._link_target(link) is None:
                    self.driver.put_content(link, str(deletion.digest).encode())
                self.report.restored += 1
            else:
                kept.append(deletion)
                self._delete_tag_history(deletion)
        self.report.manifests = kept

    def _remove_stale_link(self, name: str, digest: Digest) -> bool:
        """Remove an old link to a blob that is gone; a link rewritten meanwhile stays."""
        link = paths.layer_link(name, digest)
        try:
            if self.driver.stat(link).mtime >= self.horizon:
                return False
            self.driver.stat(paths.blob_data(digest))
            return False
        except PathNotFoundError:
            pass
        removed = self._delete(link)
        self.cache.clear(digest, name, LAYERS)
        return removed

    def _restore_leftovers(self) -> None:
        """Bring back what an interrupted online collection left in quarantine."""
        for digest, _ in self._stored_blobs(paths.GC_TRASH, fan_out=False):
            log.warning("garbage collection: restoring %s left in quarantine", digest)
            self._restore(digest)

    def _restore(self, digest: Digest) -> None:
        try:
            self.driver.move(paths.gc_trash_data(digest), paths.blob_data(digest))
        except PathNotFoundError:
            return
        self._delete(paths.gc_trash_data(digest).rsplit("/", 1)[0])

    def _delete_tag_history(self, deletion: ManifestDeletion) -> None:
        if self.options.online and self._link_target(
            paths.manifest_revision_link(deletion.name, deletion.digest)
        ):
            return  # pushed again while we looked
        for tag in deletion.tags:
            self._delete(paths.tag_index_entry(deletion.name, tag, deletion.digest))

    # -- storage helpers --------------------------------------------------------------------

    def _digests_under(self, folder: str) -> Iterator[Digest]:
        """Digests of ``folder/<alg>/<hex>`` entries, sorted."""
        for algorithm in self._names(folder):
            if algorithm not in ALGORITHMS:
                continue
            for entry in self._names(f"{folder}/{algorithm}"):
                digest = _digest(algorithm, entry)
                if digest is not None:
                    yield digest

    def _stored_blobs(
        self,
        folder: str,
        fan_out: bool,
        skip: set[Digest] = frozenset(),  # type: ignore[assignment]
    ) -> Iterator[tuple[Digest, FileInfo]]:
        """Blobs with data under ``folder/<alg>/[<xx>/]<hex>/data``, with the data's info;
        those in ``skip`` are passed over without a look at their data."""
        for algorithm in self._names(folder):
            if algorithm not in ALGORITHMS:
                continue
            algorithm_folder = f"{folder}/{algorithm}"
            parents = (
                [f"{algorithm_folder}/{fan}" for fan in self._names(algorithm_folder)]
                if fan_out
                else [algorithm_folder]
            )
            for parent in parents:
                for entry in self._names(parent):
                    digest = _digest(algorithm, entry)
                    if digest is None or digest in skip:
                        continue
                    try:
                        info = self.driver.stat(f"{parent}/{entry}/data")
                    except PathNotFoundError:
                        continue
                    if not info.is_dir:
                        yield digest, info

    def _names(self, folder: str) -> list[str]:
        try:
            return self.driver.names(folder)
        except PathNotFoundError:
            return []

    def _content(self, path: str) -> bytes | None:
        try:
            return self.driver.get_content(path)
        except PathNotFoundError:
            return None

    def _link_target(self, path: str) -> Digest | None:
        content = self._content(path)
        if content is None:
            return None
        try:
            return Digest.parse(content.decode("ascii", "replace").strip())
        except errors.DigestInvalid:
            return None

    def _delete(self, path: str) -> bool:
        try:
            self.driver.delete(path)
        except PathNotFoundError:
            return False
        return True


@dataclass(frozen=True)
class _Scan:
    """One repository as read for the mark: its manifests (with what they reference), its
    layer links and, with ``delete_untagged``, its tags and the manifests they point at."""

    name: str
    nodes: dict[Digest, Node]
    tags: tuple[str, ...]
    roots: set[Digest]
    links: set[Digest]


def _ordered(read: Callable[[str], _Scan], names: Iterable[str], threads: int) -> Iterator[_Scan]:
    """``read(name)`` of each name, in their order, ``threads`` at a time and a few ahead."""
    with ThreadPoolExecutor(threads, thread_name_prefix="gc-scan") as pool:
        ahead: collections.deque[Future[_Scan]] = collections.deque()
        for name in names:
            ahead.append(pool.submit(read, name))
            if len(ahead) >= threads * 4:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def _digest(algorithm: str, hex_part: str) -> Digest | None:
    try:
        return Digest.parse(f"{algorithm}:{hex_part}")
    except errors.DigestInvalid:
        return None
