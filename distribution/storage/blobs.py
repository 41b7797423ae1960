"""Blobs: the global content-addressed store, and the view of it one repository may read.

A blob's bytes live once under ``blobs/``; a repository reaches a blob only through a link
file holding its digest, as in distribution. Reading a blob that exists but is not linked into
the repository asked for is ``BLOB_UNKNOWN``.

Reads (``stat``, ``get``, ``open``) consult the blob descriptor cache first; decisions that
write (an upload's commit, a mount, a manifest's verification through ``exists``) read storage
only, so a stale cache (Redis kept across a garbage collection) can never lose data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from distribution import errors
from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE, BlobDescriptorCache
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.contents import NO_CONTENTS, ContentCache
from distribution.storage.driver import PathNotFoundError, StorageDriver
from distribution.storage.middleware import DriverRedirects, Redirector

OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True)
class Descriptor:
    """What the registry knows of a stored blob."""

    digest: Digest
    size: int
    media_type: str = OCTET_STREAM


class _Statter:
    """``exists`` for anything whose ``stat`` raises ``BLOB_UNKNOWN`` for a missing blob."""

    def stat(self, digest: Digest) -> Descriptor:
        raise NotImplementedError

    def exists(self, digest: Digest) -> bool:
        try:
            self.stat(digest)
        except errors.BlobUnknown:
            return False
        return True


class BlobStore(_Statter):
    """Blobs by digest, shared by every repository."""

    def __init__(
        self,
        driver: StorageDriver,
        cache: BlobDescriptorCache = NO_CACHE,
        redirector: Redirector | None = None,
        contents: ContentCache = NO_CONTENTS,
    ) -> None:
        self.driver = driver
        self.cache = cache
        self.redirector = redirector or DriverRedirects(driver)
        #: Small files read again only when changed: links and manifests.
        self.contents = contents

    def stat(self, digest: Digest) -> Descriptor:
        """The stored blob's descriptor, or :class:`~distribution.errors.BlobUnknown`.

        Always from storage: this is what writes decide on.
        """
        try:
            info = self.driver.stat(paths.blob_data(digest))
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
        if info.is_dir:
            raise errors.BlobUnknown(detail=str(digest))
        return Descriptor(digest, info.size)

    def descriptor(self, digest: Digest) -> Descriptor:
        """:meth:`stat` through the cache, for reads."""
        descriptor = self.cache.stat(digest)
        if descriptor is None:
            descriptor = self.stat(digest)
            self.cache.set(digest, descriptor)
        return descriptor

    def get(self, digest: Digest) -> bytes:
        """The whole blob: for small content such as manifests and configs."""
        try:
            return self.contents.get_content(self.driver, paths.blob_data(digest))
        except PathNotFoundError:
            raise self._gone(digest) from None

    def open(self, digest: Digest, offset: int = 0) -> BinaryIO:
        """A streaming reader; the filesystem driver's is a real file, which can be mapped."""
        try:
            return self.driver.reader(paths.blob_data(digest), offset)
        except PathNotFoundError:
            raise self._gone(digest) from None

    def put(self, data: bytes) -> Descriptor:
        """Store small ``data`` under its sha256 digest, unless it is already there."""
        digest = Digest.of(data)
        if not self.exists(digest):
            self.driver.put_content(paths.blob_data(digest), data)
        return Descriptor(digest, len(data))

    def redirect_url(
        self, digest: Digest, method: str = "GET", remote_addr: str | None = None
    ) -> str | None:
        """A URL the client at ``remote_addr`` may fetch the blob from directly, if the driver
        (or a storage middleware) offers one."""
        return self.redirector.redirect_url(paths.blob_data(digest), method, remote_addr)

    def _gone(self, digest: Digest) -> errors.BlobUnknown:
        """A blob the cache may still know (garbage collected): make every scope miss it."""
        self.cache.clear(digest)
        return errors.BlobUnknown(detail=str(digest))


class RepositoryBlobs(_Statter):
    """The blobs linked into one repository, through link files at ``link_path(name, digest)``.

    Layers and configs link under ``_layers`` (the default); manifests under
    ``_manifests/revisions``. Those two are cached, each as its own kind.
    """

    def __init__(
        self,
        blobs: BlobStore,
        name: str,
        link_path: Callable[[str, Digest], str] = paths.layer_link,
    ) -> None:
        self.blobs = blobs
        self.driver = blobs.driver
        self.name = name
        self.link_path = link_path
        self.cache = blobs.cache if link_path in _CACHE_KINDS else NO_CACHE
        self.kind = _CACHE_KINDS.get(link_path, LAYERS)

    def stat(self, digest: Digest) -> Descriptor:
        """The linked blob's descriptor, or :class:`~distribution.errors.BlobUnknown`.

        From the cache when it knows the link; else from storage, then remembered.
        """
        descriptor = self.cache.stat(digest, self.name, self.kind)
        if descriptor is None:
            descriptor = self.blobs.descriptor(self._linked(digest))
            self.cache.set(digest, descriptor, self.name, self.kind)
        return descriptor

    def exists(self, digest: Digest) -> bool:
        """Whether the link and its blob are in storage, never asking the cache."""
        return self.stored(digest) is not None

    def stored(self, digest: Digest) -> Descriptor | None:
        """The linked blob as storage has it now (never from the cache); None if missing."""
        try:
            return self.blobs.stat(self._linked(digest))
        except errors.BlobUnknown:
            return None

    def _linked(self, digest: Digest) -> Digest:
        """The digest the link for ``digest`` points at; ``BLOB_UNKNOWN`` without a link."""
        try:
            link = self.link_path(self.name, digest)
            target = self.blobs.contents.get_content(self.driver, link).decode()
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
        try:
            linked = Digest.parse(target)
        except errors.DigestInvalid:
            raise errors.BlobUnknown(detail=str(digest)) from None
        return linked

    def get(self, digest: Digest) -> bytes:
        """The linked blob's bytes: the link (or the cache), then the blob, with no ``stat``
        between them, since reading the blob shows whether it is there."""
        known = self.cache.stat(digest, self.name, self.kind)
        target = known.digest if known is not None else self._linked(digest)
        data = self.blobs.get(target)
        if known is None:
            self.cache.set(digest, Descriptor(target, len(data)), self.name, self.kind)
        return data

    def open(self, digest: Digest, offset: int = 0) -> BinaryIO:
        return self.blobs.open(self.stat(digest).digest, offset)

    def link(self, digest: Digest, target: Digest | None = None) -> None:
        """Make ``digest`` readable through this repository.

        ``target`` is the digest the content is stored under when it differs, as for a blob
        pushed with a sha512 digest, which distribution stores under its canonical sha256.
        """
        content = str(target or digest).encode()
        self.driver.put_content(self.link_path(self.name, digest), content)

    def mount(self, source: RepositoryBlobs, digest: Digest) -> Descriptor:
        """Link a blob that ``source`` can read into this repository, without copying it.

        Raises :class:`~distribution.errors.BlobUnknown` if ``source`` cannot read it.
        """
        stored = source.blobs.stat(source._linked(digest))
        self.link(digest, stored.digest)
        self.remember(digest, stored)
        return Descriptor(digest, stored.size)

    def remember(self, digest: Digest, descriptor: Descriptor) -> None:
        """Tell the cache of a link just written, as Go does when an upload commits."""
        self.cache.set(digest, descriptor, self.name, self.kind)

    def unlink(self, digest: Digest) -> None:
        """Remove the repository's link; the blob itself stays until garbage collection.

        The cache forgets the link after storage does, so a lookup between the two at worst
        finds the link still there.
        """
        try:
            self.driver.delete(self.link_path(self.name, digest))
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
        finally:
            self.cache.clear(digest, self.name, self.kind)


#: The link kinds the cache knows, by where their links live.
_CACHE_KINDS: dict[Callable[[str, Digest], str], str] = {
    paths.layer_link: LAYERS,
    paths.manifest_revision_link: MANIFESTS,
}
