"""What the web UI remembers of storage, per process, and how each piece stays correct.

Three kinds of knowledge, each with its own rule:

* **Content, by digest** (a manifest's facts, a config's, a tag row's summary): a digest
  names its bytes forever, so these are never stale. Bounded LRU maps. Which children of an
  index a repository holds is not content: it is looked up per repository and tag table
  version (an index pushed while ``validation.manifests.indexes`` skips its children may name
  another repository's manifests, whose details must not show).
* **Listings that change** (the repository names; each repository's tags with their digests
  and push times) are built from storage, then checked on every use:

  - on a driver that dates its directories (``directory_versions``, the filesystem), by the
    versions (:meth:`StorageDriver.version`) of the folders any change must touch:
    ``repositories/`` and each folder of it that is not a repository (a new repository adds an
    entry there); a repository's ``_manifests/tags`` (a tag added or removed) and
    ``_manifests/revisions/sha256`` (a new manifest pushed). A folder the driver cannot date
    yet (changed too recently) is read again next time. Whatever writes the tree (this
    process, another worker, another replica, a Go registry, a script) is seen at once;
  - on a driver without directory dates (object stores), a repository's tag names are
    listed on every use (one listing), and the repository list is walked again in the
    background every :data:`UNDATED_MAX_AGE` seconds;
  - what no folder date reveals (a tag moved to a manifest the repository already had, a
    repository nested in another's folder) is read again after :data:`DATED_MAX_AGE`.

  A repository with more than :data:`SYNC_TAGS` tags is brought up to date in the request
  for the tags added and removed (one listing), then read in full (a ``stat`` per tag) in a
  background thread, at most every :data:`BACKGROUND_INTERVAL` seconds, which also adds up
  its size. The thread gives way after each item, so requests are not held up behind it.
* **What a page shows of a tag** (its digest and push time) is read from storage for every
  row shown, so a row is never stale, whatever the listing caches say; only the order of a
  date-sorted table can lag behind a moved tag, until the refresh.

Redis is not used: what would be worth sharing is content by digest, which costs two small
reads to rebuild, while the listings are checked against storage anyway.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from distribution import errors, reference
from distribution.digest import Digest
from distribution.storage import catalog, paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import PathNotFoundError, StorageDriver
from distribution.storage.manifests import ManifestStore
from distribution.ui import facts

#: Seconds after which a listing is read again although no folder date says it changed.
DATED_MAX_AGE = 300.0
#: The same on drivers whose directories have no dates (object stores).
UNDATED_MAX_AGE = 15.0
#: Repositories with up to this many tags are refreshed fully within the request.
SYNC_TAGS = 1000
#: Seconds between two full readings of one large repository in the background (while it is
#: being pushed to, the tags added and removed are read in each request anyway).
BACKGROUND_INTERVAL = 10.0
#: Largest manifest or config read for display.
MAX_DOCUMENT = 4 * 1024 * 1024

#: How many of each kind of thing a process remembers.
TABLES = 4096
SUMMARIES = 32768
MANIFESTS = 4096
CONFIGS = 1024

log = logging.getLogger(__name__)

#: Set in the background thread: its loops then let request threads have the interpreter after
#: each item, so that requests (which wait on storage often) are not held up behind it.
_background = threading.local()

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A bounded, thread-safe map that forgets the least recently used entry first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def pop(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class TagEntry:
    """Where a tag points and when it last moved (its ``current/link`` file's time)."""

    digest: str
    pushed: datetime


@dataclass
class TagTable:
    """A repository's tags as storage had them when ``built``."""

    name: str
    entries: dict[str, TagEntry]
    token: tuple[Any, ...] | None
    built: float
    #: Changed by every rebuild: derived caches (sorted orders, sizes) key on it.
    version: int
    #: False while tags kept from an earlier table may have moved since (a full refresh runs).
    complete: bool = True
    settled: bool = True
    _orders: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def order(self, by: str, key: Callable[[str], Any]) -> list[str]:
        """The tag names sorted by ``key`` (ascending), remembered per table version."""
        found = self._orders.get(by)
        if found is None:
            found = self._orders[by] = sorted(self.entries, key=key)
        return found

    @property
    def last_push(self) -> datetime | None:
        return max((entry.pushed for entry in self.entries.values()), default=None)


@dataclass(frozen=True)
class RepositorySummary:
    """A line of the repositories page."""

    tags: int
    last_push: datetime | None
    #: Bytes of the distinct configs and layers the repository's tags reach; None while a
    #: large repository's are being added up.
    size: int | None


#: The version of a folder that is not there (distinct from None: "cannot date it yet").
_MISSING = "missing"


@dataclass
class _Folder:
    version: Any
    children: tuple[str, ...]
    repository: bool
    settled: bool


class StorageView:
    """The UI's per-process view of one registry's storage (see the module's docstring)."""

    def __init__(
        self,
        driver: StorageDriver,
        blobs: BlobStore,
        *,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.driver = driver
        self.blobs = blobs
        #: Refresh large tables in a background thread (tests turn it off to be exact).
        self.background = background
        self._clock = clock
        self._dated = driver.directory_versions
        self._max_age = DATED_MAX_AGE if self._dated else UNDATED_MAX_AGE
        self._lock = threading.RLock()
        self._folders: dict[str, _Folder] = {}
        self._names: list[str] | None = None
        self._names_built = 0.0
        self._names_version = 0
        self._tables: LRU[str, TagTable] = LRU(TABLES)
        self._table_locks: dict[str, threading.Lock] = {}
        self._table_version = 0
        self._summaries: LRU[tuple[str, frozenset[str]], facts.Summary] = LRU(SUMMARIES)
        self._footprints: LRU[tuple[str, frozenset[str]], tuple[tuple[str, int], ...]] = LRU(
            SUMMARIES
        )
        self._held: LRU[tuple[str, str, int], frozenset[str]] = LRU(SUMMARIES)
        self._manifests: LRU[str, facts.ManifestFacts] = LRU(MANIFESTS)
        self._configs: LRU[str, facts.ConfigFacts] = LRU(CONFIGS)
        self._repositories: LRU[str, tuple[int, RepositorySummary]] = LRU(TABLES)
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[str] = set()
        self._started: dict[str, float] = {}

    # Repository names -------------------------------------------------------------------

    def repositories(self) -> tuple[list[str], int]:
        """Every repository name in catalog order, and a version that changes with the list.

        The first call walks the whole tree; later ones re-read only the folders whose date
        changed, and a full walk runs in the background after :data:`DATED_MAX_AGE` (or
        :data:`UNDATED_MAX_AGE`) seconds.
        """
        with self._lock:
            if self._names is None:
                self._folders = self._walk()
                self._names_built = self._clock()
                self._renumber()
            elif self._dated and self._revalidate():
                self._renumber()
            if self._clock() - self._names_built > self._max_age:
                self._names_built = self._clock()
                self._later("", self._rewalk)
            assert self._names is not None
            return self._names, self._names_version

    def _rewalk(self, _: str) -> None:
        folders = self._walk()
        with self._lock:
            self._folders = folders
            self._renumber()

    def _walk(self) -> dict[str, _Folder]:
        folders: dict[str, _Folder] = {}
        self._scan("", folders)
        return folders

    def _renumber(self) -> None:
        names = [name for name, folder in self._folders.items() if name and folder.repository]
        names.sort(key=catalog.path_key)
        if names != self._names:
            self._names = names
            self._names_version += 1

    def _scan(self, name: str, folders: dict[str, _Folder]) -> None:
        """Read ``name``'s folder and, recursively, every folder below it, into ``folders``."""
        folder = self._read_folder(name)
        if folder is None:
            return
        folders[name] = folder
        _pause()
        for child in folder.children:
            self._scan(f"{name}/{child}" if name else child, folders)

    def _read_folder(self, name: str) -> _Folder | None:
        """One folder of the tree: its entries, whether it is a repository, and (for a folder
        that is not one) its date, taken before its listing so that a change is never missed.
        """
        path = paths.repository(name) if name else paths.REPOSITORIES
        try:
            entries = [entry.rsplit("/", 1)[1] for entry in self.driver.list(path)]
            repository = bool(name) and "_manifests" in entries
            version = None
            if self._dated and not repository:
                version = self.driver.version(path)
                entries = [entry.rsplit("/", 1)[1] for entry in self.driver.list(path)]
                repository = bool(name) and "_manifests" in entries
        except PathNotFoundError:
            return None
        children = tuple(sorted(entry for entry in entries if not entry.startswith("_")))
        return _Folder(version, children, repository, repository or version is not None)

    def _revalidate(self) -> bool:
        """Re-read the folders whose date changed (or had not settled); True if any did."""
        changed = False
        for name, folder in list(self._folders.items()):
            if folder.repository or self._folders.get(name) is not folder:
                continue
            path = paths.repository(name) if name else paths.REPOSITORIES
            try:
                version = self.driver.version(path)
            except PathNotFoundError:
                version = None
            if folder.settled and version == folder.version:
                continue
            changed = True
            self._drop(name)
            self._scan(name, self._folders)
        return changed

    def _drop(self, name: str) -> None:
        prefix = f"{name}/" if name else ""
        for other in [n for n in self._folders if n == name or n.startswith(prefix)]:
            del self._folders[other]

    # Tags --------------------------------------------------------------------------------

    def tags(self, name: str) -> TagTable:
        """The repository's tag table, up to date with storage (see the module's docstring).

        Raises ``NAME_UNKNOWN`` for a repository without tags folder, as the tags API does.
        """
        with self._table_lock(name):
            token = self._tag_token(name)
            cached = self._tables.get(name)
            young = cached is not None and self._clock() - cached.built <= self._max_age
            if young and self._dated and cached.settled and cached.token == token:
                if not cached.complete:
                    self._later(f"tags:{name}", self._refresh)
                return cached
            try:
                names = self._list_tags(name)
            except PathNotFoundError:
                self._tables.pop(name)
                raise errors.NameUnknown(detail={"name": name}) from None
            if young and not self._dated and cached.entries.keys() == set(names):
                if not cached.complete:
                    self._later(f"tags:{name}", self._refresh)
                return cached
            previous = cached.entries if cached else {}
            if cached is None or len(names) <= SYNC_TAGS or not self.background:
                table = self._new_table(name, self._read_tags(name, names, previous), token)
            else:
                kept = {tag: previous[tag] for tag in names if tag in previous}
                added = self._read_tags(name, [tag for tag in names if tag not in previous], {})
                table = self._new_table(name, kept | added, token, complete=False)
                self._later(f"tags:{name}", self._refresh)
            self._tables.put(name, table)
            return table

    def exists(self, name: str) -> bool:
        """Whether ``name`` is a repository (has manifests), tagged or not."""
        try:
            self.driver.stat(paths.manifests(name))
        except PathNotFoundError:
            return False
        return True

    def tag(self, name: str, tag: str) -> TagEntry | None:
        """``tag`` as storage has it now (None if gone); the cached table learns a move."""
        entry = self._read_tag(name, tag)
        table = self._tables.get(name)
        known = table.entries.get(tag) if table is not None else None
        if table is not None and entry is not None and known is not None and known != entry:
            table.entries[tag] = entry  # the same keys: safe beside readers of the table
            table._orders.clear()
        return entry

    def forget(self, name: str) -> None:
        """Drop what is known of ``name``'s tags (after this process changed them)."""
        self._tables.pop(name)
        self._repositories.pop(name)

    def deleted(self, name: str) -> None:
        """Forget ``name`` after this process deleted the whole repository: its folder is read
        again at the next listing, since its parent's date need not change."""
        self.forget(name)
        with self._lock:
            if name in self._folders:
                self._drop(name)
                self._scan(name, self._folders)
                self._renumber()

    def _list_tags(self, name: str) -> list[str]:
        listed = self.driver.list(paths.tags(name))
        return [tag for entry in listed if reference.is_tag(tag := entry.rsplit("/", 1)[1])]

    def _tag_token(self, name: str) -> tuple[Any, ...] | None:
        """The versions of the folders a tag change or a new manifest must touch."""
        if not self._dated:
            return None
        token = []
        for path in (paths.tags(name), paths.manifest_revisions_of(name, "sha256")):
            try:
                token.append(self.driver.version(path))
            except PathNotFoundError:
                token.append(_MISSING)
        return tuple(token)

    def _new_table(
        self,
        name: str,
        entries: dict[str, TagEntry],
        token: tuple[Any, ...] | None,
        complete: bool = True,
    ) -> TagTable:
        with self._lock:
            self._table_version += 1
            version = self._table_version
        settled = token is None or all(version is not None for version in token)
        return TagTable(name, entries, token, self._clock(), version, complete, settled)

    def _read_tags(
        self, name: str, names: list[str], previous: dict[str, TagEntry]
    ) -> dict[str, TagEntry]:
        """Each tag's entry: a ``stat`` of its link, and a read only where its date changed."""
        entries = {}
        for tag in names:
            _pause()
            path = paths.tag_current_link(name, tag)
            try:
                pushed = self.driver.stat(path).mtime
            except PathNotFoundError:
                continue  # being deleted, or half written by a crashed push
            known = previous.get(tag)
            if known is not None and known.pushed == pushed:
                entries[tag] = known
                continue
            entry = self._read_tag(name, tag)
            if entry is not None:
                entries[tag] = entry
        return entries

    def _read_tag(self, name: str, tag: str) -> TagEntry | None:
        path = paths.tag_current_link(name, tag)
        try:
            pushed = self.driver.stat(path).mtime
            text = self.driver.get_content(path).decode("ascii", "replace")
            return TagEntry(str(Digest.parse(text)), pushed)
        except (PathNotFoundError, errors.DigestInvalid):
            return None

    def _table_lock(self, name: str) -> threading.Lock:
        with self._lock:
            lock = self._table_locks.get(name)
            if lock is None:
                if len(self._table_locks) > 4 * TABLES:
                    self._table_locks.clear()
                lock = self._table_locks[name] = threading.Lock()
            return lock

    def _later(self, key: str, job: Callable[[str], None]) -> None:
        """Run ``job(key)`` in the background thread, unless one for ``key`` is pending or
        started less than :data:`BACKGROUND_INTERVAL` seconds ago."""
        with self._lock:
            now = self._clock()
            if key in self._pending or now - self._started.get(key, -math.inf) < (
                BACKGROUND_INTERVAL
            ):
                return
            if len(self._started) > 4 * TABLES:
                self._started.clear()
            self._started[key] = now
            self._pending.add(key)
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="ui-refresh")
            self._executor.submit(self._run, key, job)

    def _run(self, key: str, job: Callable[[str], None]) -> None:
        _background.active = True
        try:
            job(key)
        except Exception:  # what failed is rebuilt on a later request
            log.exception("ui: refreshing %s failed", key or "the repository list")
        finally:
            with self._lock:
                self._pending.discard(key)

    def _refresh(self, key: str) -> None:
        """Read every tag of a repository again (``key`` is ``tags:<name>``).

        Without holding the table's lock, so requests go on meanwhile. The table installed
        carries the folder dates read before the listing: if a request saw changes since,
        the next one finds the dates moved on and adds them.
        """
        name = key.removeprefix("tags:")
        cached = self._tables.get(name)
        token = self._tag_token(name)
        try:
            names = self._list_tags(name)
        except PathNotFoundError:
            self._tables.pop(name)
            return
        entries = self._read_tags(name, names, cached.entries if cached else {})
        with self._table_lock(name):
            self._tables.put(name, self._new_table(name, entries, token))

    def wait(self) -> None:
        """Let background refreshes finish (tests, benchmarks)."""
        while True:
            with self._lock:
                if not self._pending:
                    return
            time.sleep(0.01)

    # Content -----------------------------------------------------------------------------

    def manifest(self, digest: str) -> facts.ManifestFacts:
        """The facts of the manifest ``digest`` (callers check that the repository has it)."""
        found = self._manifests.get(digest)
        if found is None:
            body = self.read(digest)
            found = facts.read_manifest(body) if body is not None else _missing(digest)
            self._manifests.put(digest, found)
        return found

    def config(self, digest: str) -> facts.ConfigFacts:
        found = self._configs.get(digest)
        if found is None:
            body = self.read(digest)
            found = (
                facts.read_config(body)
                if body is not None
                else facts.ConfigFacts(problem="the config blob is missing or too large to show")
            )
            self._configs.put(digest, found)
        return found

    def held(self, name: str, digest: str, version: int | None = None) -> frozenset[str]:
        """The children of the manifest ``digest`` that repository ``name`` holds (what the
        others say is not shown: see the module's docstring). Remembered per tag table
        ``version``, which changes when a manifest is pushed or deleted; looked up anew
        without one."""
        children = self.manifest(digest).children
        if not children:
            return frozenset()
        found = self._held.get((name, digest, version)) if version is not None else None
        if found is None:
            store = ManifestStore(self.blobs, name)
            found = frozenset(child.digest for child in children if _holds(store, child.digest))
            if version is not None:
                self._held.put((name, digest, version), found)
        return found

    def footprint(
        self, name: str, digest: str, version: int | None = None
    ) -> tuple[tuple[str, int], ...]:
        """The distinct configs and layers the manifest ``digest`` of ``name`` reaches, with
        their sizes (an index's through the manifests ``name`` holds): what a repository's
        size adds up. Reads manifests only, no configs."""
        held = self.held(name, digest, version)
        found = self._footprints.get((digest, held))
        if found is None:
            blobs = {blob.digest: blob.size for blob in self.manifest(digest).blobs}
            for child in held:
                blobs.update((blob.digest, blob.size) for blob in self.manifest(child).blobs)
            found = tuple(blobs.items())
            self._footprints.put((digest, held), found)
        return found

    def summary(self, name: str, digest: str, version: int | None = None) -> facts.Summary:
        """What the tag table shows of the manifest ``digest`` of ``name``; an index's
        children that ``name`` lacks show as missing (:meth:`held`)."""
        held = self.held(name, digest, version)
        found = self._summaries.get((digest, held))
        if found is None:
            found = self._summarise(digest, held)
            self._summaries.put((digest, held), found)
        return found

    def children(
        self, name: str, digest: str, version: int | None = None
    ) -> list[tuple[facts.Child, facts.Summary]]:
        """The manifests the index ``digest`` of ``name`` lists, with what the tag table would
        show of each; those ``name`` lacks as missing."""
        held = self.held(name, digest, version)
        return [
            (
                child,
                self.summary(name, child.digest, version)
                if child.digest in held
                else facts.summarise(_missing(child.digest), None),
            )
            for child in self.manifest(digest).children
        ]

    def _summarise(self, digest: str, held: frozenset[str]) -> facts.Summary:
        manifest = self.manifest(digest)
        if manifest.kind == facts.INDEX:
            children = []
            for child in manifest.children:
                if child.digest in held:
                    child_facts = self.manifest(child.digest)
                    children.append((child, child_facts, self._image_config(child_facts)))
                else:
                    children.append((child, _missing(child.digest), None))
            return facts.summarise(manifest, None, children)
        return facts.summarise(manifest, self._image_config(manifest))

    def _image_config(self, manifest: facts.ManifestFacts) -> facts.ConfigFacts | None:
        config = manifest.config
        if manifest.kind != facts.IMAGE or config is None:
            return None
        if config.media_type not in facts.IMAGE_CONFIGS:
            return None
        return self.config(config.digest)

    def read(self, digest: str, limit: int = MAX_DOCUMENT) -> bytes | None:
        """The blob ``digest`` if it exists and holds at most ``limit`` bytes."""
        try:
            parsed = Digest.parse(digest)
            with self.blobs.open(parsed) as reader:
                data = reader.read(limit + 1)
        except (errors.DigestInvalid, errors.BlobUnknown):
            return None
        return data if len(data) <= limit else None

    # Repositories ------------------------------------------------------------------------

    def summarise(self, name: str, table: TagTable | None = None) -> RepositorySummary | None:
        """Tag count, last push and size of ``name`` (from ``table`` if the caller has it);
        None for a repository without tags."""
        if table is None:
            try:
                table = self.tags(name)
            except errors.NameUnknown:
                return None
        cached = self._repositories.get(name)
        if cached is not None and cached[0] == table.version:
            return cached[1]
        if len(table.entries) > SYNC_TAGS and self.background:
            # Thousands of manifests to read: in the background; meanwhile the size last
            # known (or none), so that the page is not held up.
            self._later(f"size:{name}", lambda _: self._summarise_repository(table))
            size = cached[1].size if cached is not None else None
            return RepositorySummary(len(table.entries), table.last_push, size)
        return self._summarise_repository(table)

    def _summarise_repository(self, table: TagTable) -> RepositorySummary:
        blobs: dict[str, int] = {}
        for digest in {entry.digest for entry in table.entries.values()}:
            _pause()
            blobs.update(self.footprint(table.name, digest, table.version))
        found = RepositorySummary(len(table.entries), table.last_push, sum(blobs.values()))
        self._repositories.put(table.name, (table.version, found))
        return found

    def tags_of(self, table: TagTable, digest: str) -> Iterator[str]:
        """The tags of ``table`` that point at ``digest``."""
        return (tag for tag, entry in table.entries.items() if entry.digest == digest)


def _pause() -> None:
    """In the background thread, give the interpreter to any request thread waiting for it."""
    if getattr(_background, "active", False):
        time.sleep(0)


def _holds(store: ManifestStore, digest: str) -> bool:
    try:
        return store.exists(Digest.parse(digest))
    except errors.DigestInvalid:
        return False


def _missing(digest: str) -> facts.ManifestFacts:
    return facts.ManifestFacts("", facts.UNKNOWN, 0, problem=f"{digest} is missing or too large")
