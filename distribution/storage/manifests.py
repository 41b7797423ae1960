"""The manifests of one repository: blobs linked under ``_manifests/revisions``, as in Go.

A manifest's bytes are an ordinary blob (``blobs/<alg>/<xx>/<hex>/data``); the repository
reaches it through ``_manifests/revisions/<alg>/<hex>/link``. Deleting a manifest removes that
link file only, as Go does, so enumerations skip revision folders without a link.
"""

from __future__ import annotations

from collections.abc import Iterator

from distribution import errors
from distribution.digest import ALGORITHMS, Digest
from distribution.storage import paths
from distribution.storage.blobs import BlobStore, Descriptor, RepositoryBlobs
from distribution.storage.driver import PathNotFoundError


class ManifestStore:
    """Put, get and delete one repository's manifests by digest."""

    def __init__(self, blobs: BlobStore, name: str) -> None:
        self.name = name
        self.driver = blobs.driver
        self.blobs = blobs
        self.revisions = RepositoryBlobs(blobs, name, paths.manifest_revision_link)

    def stat(self, digest: Digest) -> Descriptor:
        """The stored manifest's descriptor, or ``MANIFEST_UNKNOWN`` as Go details it."""
        try:
            return self.revisions.stat(digest)
        except errors.BlobUnknown:
            raise self._unknown(digest) from None

    def exists(self, digest: Digest) -> bool:
        return self.revisions.exists(digest)

    def stored(self, digest: Digest) -> Descriptor | None:
        """The manifest as storage has it now; None if the repository lacks it."""
        return self.revisions.stored(digest)

    def get(self, digest: Digest) -> bytes:
        try:
            return self.revisions.get(digest)
        except errors.BlobUnknown:
            raise self._unknown(digest) from None

    def put(self, body: bytes) -> Digest:
        """Store ``body`` and link it into the repository; the caller validated it."""
        digest = self.blobs.put(body).digest
        self.revisions.link(digest)
        return digest

    def renew(self, digest: Digest) -> bool:
        """Write the manifest's revision link again, as a push of it would; False when the
        repository lacks the manifest."""
        stored = self.revisions.stored(digest)
        if stored is None:
            return False
        self.revisions.link(digest, stored.digest)
        return True

    def delete(self, digest: Digest) -> None:
        """Unlink the manifest from the repository; the blob stays for garbage collection."""
        self.stat(digest)
        try:
            self.revisions.unlink(digest)
        except errors.BlobUnknown:
            raise self._unknown(digest) from None

    def digests(self) -> Iterator[Digest]:
        """Every manifest linked into the repository, sorted by algorithm and hex."""
        for folder in self._list(paths.manifest_revisions(self.name)):
            algorithm = folder.rsplit("/", 1)[1]
            for revision in self._list(folder) if algorithm in ALGORITHMS else []:
                try:
                    digest = Digest.parse(f"{algorithm}:{revision.rsplit('/', 1)[1]}")
                except errors.DigestInvalid:
                    continue
                if self._has(paths.manifest_revision_link(self.name, digest)):
                    yield digest

    def _list(self, path: str) -> list[str]:
        try:
            return sorted(self.driver.list(path))
        except PathNotFoundError:
            return []

    def _has(self, path: str) -> bool:
        try:
            self.driver.stat(path)
        except PathNotFoundError:
            return False
        return True

    def _unknown(self, digest: Digest) -> errors.RegistryError:
        return errors.ManifestUnknown(detail={"Name": self.name, "Revision": str(digest)})
