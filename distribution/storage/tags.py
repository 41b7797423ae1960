"""Tags of one repository, stored as Go stores them under ``_manifests/tags/<tag>``.

Tagging writes ``index/<alg>/<hex>/link`` (every digest the tag has pointed at) and then
``current/link`` (the one it points at now); untagging removes the tag's whole folder.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor

from distribution import errors
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.contents import NO_CONTENTS, ContentCache
from distribution.storage.driver import PathNotFoundError, StorageDriver

#: Tags the tag lists of one process hold at most, all repositories together (a tag name is
#: about 60 bytes in memory: a few MiB).
TAG_LIST_BUDGET = 100_000


class TagLists:
    """This process's sorted tag lists of recently listed repositories, each kept with the
    version of its tags folder (:meth:`StorageDriver.version`) and used only while that is
    unchanged, so a tag pushed or deleted anywhere is seen at once. Bounded by the number of
    tags held; drivers without versions always list."""

    def __init__(self, budget: int = TAG_LIST_BUDGET) -> None:
        self.budget = budget
        self._lists: OrderedDict[str, tuple[Hashable, list[str]]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get(self, name: str, version: Hashable) -> list[str] | None:
        with self._lock:
            entry = self._lists.get(name)
            if entry is None or entry[0] != version:
                return None
            self._lists.move_to_end(name)
            return entry[1]

    def put(self, name: str, version: Hashable, tags: list[str]) -> None:
        if len(tags) > self.budget:
            return
        with self._lock:
            old = self._lists.pop(name, None)
            self._held -= len(old[1]) if old else 0
            self._lists[name] = (version, tags)
            self._held += len(tags)
            while self._held > self.budget:
                _, (_, dropped) = self._lists.popitem(last=False)
                self._held -= len(dropped)


class TagStore:
    """Tag, resolve, untag and list the tags of repository ``name``."""

    def __init__(
        self,
        driver: StorageDriver,
        name: str,
        lists: TagLists | None = None,
        contents: ContentCache = NO_CONTENTS,
    ) -> None:
        self.driver = driver
        self.name = name
        self.lists = lists
        self.contents = contents

    def tag(self, tag: str, digest: Digest) -> None:
        """Point ``tag`` at ``digest``, in Go's order: index entry first, then current."""
        self.driver.put_content(paths.tag_index_link(self.name, tag, digest), str(digest).encode())
        self.driver.put_content(paths.tag_current_link(self.name, tag), str(digest).encode())

    def resolve(self, tag: str) -> Digest:
        """The digest ``tag`` points at, or ``MANIFEST_UNKNOWN`` detailed as Go does."""
        try:
            target = self.contents.get_content(self.driver, paths.tag_current_link(self.name, tag))
            return Digest.parse(target.decode("ascii", "replace"))
        except (PathNotFoundError, errors.DigestInvalid):
            raise errors.ManifestUnknown(detail={"Tag": tag}) from None

    def untag(self, tag: str) -> None:
        try:
            self.driver.delete(paths.tag(self.name, tag))
        except PathNotFoundError:
            raise errors.ManifestUnknown(detail={"Tag": tag}) from None

    def all(self) -> list[str]:
        """Every tag, sorted; ``NAME_UNKNOWN`` when the repository has no tags folder.

        The list may be shared with other callers (from :class:`TagLists`): do not change it.
        """
        folder = paths.tags(self.name)
        try:
            version = self.driver.version(folder) if self.lists is not None else None
            if version is not None:
                cached = self.lists.get(self.name, version)  # type: ignore[union-attr]
                if cached is not None:
                    return cached
            tags = self.driver.names(folder)
        except PathNotFoundError:
            raise errors.NameUnknown(detail={"name": self.name}) from None
        if version is not None:
            self.lists.put(self.name, version, tags)  # type: ignore[union-attr]
        return tags

    def lookup(self, digest: Digest, concurrency: int | None = None) -> list[str]:
        """The tags currently pointing at ``digest``: one read per tag, as in Go, at most
        ``concurrency`` at a time (``storage.tag.concurrencylimit``; 0 or None: one per
        CPU, Go's default)."""
        try:
            tags = self.all()
        except errors.NameUnknown:
            return []

        def points_at_digest(tag: str) -> bool:
            try:
                return self.resolve(tag) == digest
            except errors.ManifestUnknown:
                return False

        workers = min(concurrency or os.cpu_count() or 1, len(tags))
        if workers <= 1:
            return [tag for tag in tags if points_at_digest(tag)]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tag-lookup") as pool:
            matches = list(pool.map(points_at_digest, tags))
        return [tag for tag, match in zip(tags, matches, strict=True) if match]
