"""The blob descriptor cache contract, shared by the in-process and the Redis cache.

A cache answers "what is the descriptor of this digest", globally (the blob under
``blobs/``) or as seen through one repository's links of one kind. It only ever speeds up
reads: ``None`` (a miss) always sends the caller to storage, which stays the truth.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # storage.blobs imports this module for the kinds
    from distribution.digest import Digest
    from distribution.storage.blobs import Descriptor

#: Links under ``_layers``: the kind the Go registry caches, under its own Redis keys.
LAYERS = "blobs"
#: Links under ``_manifests/revisions``: our extension, which the Go registry never reads.
MANIFESTS = "manifests"


class BlobDescriptorCache(ABC):
    """Descriptors by digest; ``repository`` None is the global scope (``kind`` unused)."""

    @abstractmethod
    def stat(
        self, digest: Digest, repository: str | None = None, kind: str = LAYERS
    ) -> Descriptor | None:
        """The cached descriptor, or None on a miss."""

    @abstractmethod
    def set(
        self,
        digest: Digest,
        descriptor: Descriptor,
        repository: str | None = None,
        kind: str = LAYERS,
    ) -> None:
        """Remember ``descriptor``; a repository-scoped set also sets the global entry."""

    @abstractmethod
    def clear(self, digest: Digest, repository: str | None = None, kind: str = LAYERS) -> None:
        """Forget ``digest`` in one scope, so the next lookup there asks storage."""


class NoCache(BlobDescriptorCache):
    """Always a miss: what storage uses without ``storage.cache.blobdescriptor``."""

    def stat(
        self, digest: Digest, repository: str | None = None, kind: str = LAYERS
    ) -> Descriptor | None:
        return None

    def set(
        self,
        digest: Digest,
        descriptor: Descriptor,
        repository: str | None = None,
        kind: str = LAYERS,
    ) -> None:
        pass

    def clear(self, digest: Digest, repository: str | None = None, kind: str = LAYERS) -> None:
        pass


NO_CACHE = NoCache()
