"""Checks that a pushed manifest's references exist in its repository, as Go's handlers do.

* Image manifests: the config and every layer must be blobs linked into the repository
  (``_layers``), except foreign (non-distributable) layers with ``urls``, which must all pass
  ``validation.manifests.urls`` (by default, none does: Go's safe default).
* Indexes and manifest lists: every child must be a manifest of the repository, unless
  ``validation.manifests.indexes`` narrows that to some platforms or to none.

The first missing reference is ``MANIFEST_BLOB_UNKNOWN`` with its digest as the detail; a
reference whose ``size`` is not the stored content's is ``MANIFEST_INVALID`` (Go does not look:
a client then fails verifying what it pulls).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distribution import errors
from distribution.config import Validation
from distribution.manifest import Descriptor, Manifest, URLPolicy, layer_needs_blob
from distribution.storage.blobs import Descriptor as StoredBlob
from distribution.storage.blobs import RepositoryBlobs
from distribution.storage.manifests import ManifestStore


@dataclass(frozen=True)
class Rules:
    """What ``validation`` asks of pushed manifests.

    ``index_platforms`` None checks every child of an index, an empty set none, otherwise
    only children of those (architecture, os) platforms.
    """

    urls: URLPolicy = field(default_factory=URLPolicy)
    index_platforms: frozenset[tuple[str, str]] | None = None

    @classmethod
    def from_config(cls, validation: Validation) -> Rules:
        """Go applies the URL policy and index settings only while validation is active."""
        urls = validation.manifests.urls
        policy = URLPolicy.from_config(urls.allow, urls.deny, validation.active)
        if not validation.active:
            return cls(policy, index_platforms=frozenset())
        indexes = validation.manifests.indexes
        platforms: frozenset[tuple[str, str]] | None = None
        if indexes.platforms == "none":
            platforms = frozenset()
        elif indexes.platforms == "list" and indexes.platformlist:
            platforms = frozenset((p.architecture or "", p.os or "") for p in indexes.platformlist)
        return cls(policy, platforms)

    def requires(self, platform: tuple[str, str] | None) -> bool:
        """Whether an index's child of ``platform`` must be a manifest of the repository."""
        if self.index_platforms is None:
            return True
        return platform is not None and platform in self.index_platforms


def verify(
    manifest: Manifest, layers: RepositoryBlobs, manifests: ManifestStore, rules: Rules
) -> None:
    """Raise ``MANIFEST_BLOB_UNKNOWN`` for the first reference the repository lacks, and
    ``MANIFEST_INVALID`` for one of another size than stored."""
    if manifest.is_index:
        for i, child in enumerate(manifest.manifests):
            if rules.requires(child.platform):
                _check(child, manifests.stored(child.digest), f"manifests[{i}]")
        return
    if manifest.config is not None:
        _check(manifest.config, layers.stored(manifest.config.digest), "config")
    for i, layer in enumerate(manifest.layers):
        if layer_needs_blob(manifest.media_type, layer, rules.urls):
            _check(layer, layers.stored(layer.digest), f"layers[{i}]")


def _check(reference: Descriptor, stored: StoredBlob | None, where: str) -> None:
    if stored is None:
        raise errors.ManifestBlobUnknown(detail=str(reference.digest))
    if reference.size != stored.size:
        raise errors.ManifestInvalid(
            f"{where} has size {reference.size}, the stored content {stored.size}",
            detail={"digest": str(reference.digest), "size": reference.size},
        )
