"""Blobs: the global content-addressed store, and the view of it one repository may read.

A blob's bytes live once under ``blobs/``; a repository reaches a blob only through a link
file holding its digest, as in distribution. Reading a blob that exists but is not linked into
the repository asked for is ``BLOB_UNKNOWN``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from distribution import errors
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver

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

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def stat(self, digest: Digest) -> Descriptor:
        """The blob's descriptor, or :class:`~distribution.errors.BlobUnknown`."""
        try:
            info = self.driver.stat(paths.blob_data(digest))
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
        if info.is_dir:
            raise errors.BlobUnknown(detail=str(digest))
        return Descriptor(digest, info.size)

    def get(self, digest: Digest) -> bytes:
        """The whole blob: for small content such as manifests and configs."""
        try:
            return self.driver.get_content(paths.blob_data(digest))
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None

    def open(self, digest: Digest, offset: int = 0) -> BinaryIO:
        """A streaming reader; the filesystem driver's is a real file, good for sendfile."""
        try:
            return self.driver.reader(paths.blob_data(digest), offset)
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None

    def put(self, data: bytes) -> Descriptor:
        """Store small ``data`` under its sha256 digest, unless it is already there."""
        digest = Digest.of(data)
        if not self.exists(digest):
            self.driver.put_content(paths.blob_data(digest), data)
        return Descriptor(digest, len(data))

    def redirect_url(self, digest: Digest, method: str = "GET") -> str | None:
        """A URL the client may fetch the blob from directly, if the driver offers one."""
        return self.driver.redirect_url(paths.blob_data(digest), method)


class RepositoryBlobs(_Statter):
    """The blobs linked into one repository, through link files at ``link_path(name, digest)``.

    Layers and configs link under ``_layers`` (the default); manifests under
    ``_manifests/revisions``.
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

    def stat(self, digest: Digest) -> Descriptor:
        """The linked blob's descriptor, or :class:`~distribution.errors.BlobUnknown`."""
        try:
            target = self.driver.get_content(self.link_path(self.name, digest)).decode()
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
        try:
            linked = Digest.parse(target)
        except errors.DigestInvalid:
            raise errors.BlobUnknown(detail=str(digest)) from None
        return self.blobs.stat(linked)

    def get(self, digest: Digest) -> bytes:
        return self.blobs.get(self.stat(digest).digest)

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
        stored = source.stat(digest)
        self.link(digest, stored.digest)
        return Descriptor(digest, stored.size)

    def unlink(self, digest: Digest) -> None:
        """Remove the repository's link; the blob itself stays until garbage collection."""
        try:
            self.driver.delete(self.link_path(self.name, digest))
        except PathNotFoundError:
            raise errors.BlobUnknown(detail=str(digest)) from None
