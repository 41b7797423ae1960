"""Tags of one repository, stored as Go stores them under ``_manifests/tags/<tag>``.

Tagging writes ``index/<alg>/<hex>/link`` (every digest the tag has pointed at) and then
``current/link`` (the one it points at now); untagging removes the tag's whole folder.
"""

from __future__ import annotations

from distribution import errors
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver


class TagStore:
    """Tag, resolve, untag and list the tags of repository ``name``."""

    def __init__(self, driver: StorageDriver, name: str) -> None:
        self.driver = driver
        self.name = name

    def tag(self, tag: str, digest: Digest) -> None:
        """Point ``tag`` at ``digest``, in Go's order: index entry first, then current."""
        self.driver.put_content(paths.tag_index_link(self.name, tag, digest), str(digest).encode())
        self.driver.put_content(paths.tag_current_link(self.name, tag), str(digest).encode())

    def resolve(self, tag: str) -> Digest:
        """The digest ``tag`` points at, or ``MANIFEST_UNKNOWN`` detailed as Go does."""
        try:
            target = self.driver.get_content(paths.tag_current_link(self.name, tag))
            return Digest.parse(target.decode("ascii", "replace"))
        except (PathNotFoundError, errors.DigestInvalid):
            raise errors.ManifestUnknown(detail={"Tag": tag}) from None

    def untag(self, tag: str) -> None:
        try:
            self.driver.delete(paths.tag(self.name, tag))
        except PathNotFoundError:
            raise errors.ManifestUnknown(detail={"Tag": tag}) from None

    def all(self) -> list[str]:
        """Every tag, sorted; ``NAME_UNKNOWN`` when the repository has no tags folder."""
        try:
            entries = self.driver.list(paths.tags(self.name))
        except PathNotFoundError:
            raise errors.NameUnknown(detail={"name": self.name}) from None
        return sorted(entry.rsplit("/", 1)[1] for entry in entries)

    def lookup(self, digest: Digest) -> list[str]:
        """The tags currently pointing at ``digest`` (one read per tag, as in Go)."""
        try:
            tags = self.all()
        except errors.NameUnknown:
            return []
        found = []
        for tag in tags:
            try:
                if self.resolve(tag) == digest:
                    found.append(tag)
            except errors.ManifestUnknown:
                continue
        return found
