"""A whole repository: what it holds, and deleting it (our extension; Go has no such call).

Deleting removes the repository's own folders (``_manifests`` with its tags, ``_layers``,
``_uploads``, ``_referrers``) and nothing below them that is another repository: deleting
``team-a`` leaves ``team-a/app``. Tags go first, so the catalog and tag lists stop showing it
at once; the blobs stay for the next garbage collection, which frees those no other
repository references. The repository's folder itself is left (empty on the filesystem),
since a push into the same name may be creating files in it at that moment.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from distribution import errors
from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE, BlobDescriptorCache
from distribution.digest import Digest
from distribution.storage import inventory, paths
from distribution.storage.driver import PathNotFoundError, StorageDriver


@dataclass
class Contents:
    """What a repository holds: tags with their digests, manifests, layer links, uploads."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    manifests: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.tags)} tags, {len(self.manifests)} manifests, "
            f"{len(self.layers)} layer links, {len(self.uploads)} uploads"
        )


def contents(driver: StorageDriver, name: str) -> Contents:
    """What ``name`` holds; ``NAME_UNKNOWN`` when it has none of a repository's folders."""
    own = [c for c in _list(driver, paths.repository(name)) if c.rsplit("/", 1)[1][:1] == "_"]
    if not own:
        raise errors.NameUnknown(detail={"name": name})
    record = inventory.scan_repository(driver, name)
    return Contents(
        name,
        tags=inventory.tag_targets(driver, name, sorted(record.tags)),
        manifests=sorted(record.manifests),
        layers=sorted(inventory.digests_under(driver, paths.layers(name))),
        uploads=sorted(entry.rsplit("/", 1)[1] for entry in _list(driver, paths.uploads(name))),
    )


def delete(driver: StorageDriver, name: str, cache: BlobDescriptorCache = NO_CACHE) -> Contents:
    """Delete repository ``name`` (see the module's docstring) and return what it held.

    ``cache`` forgets the repository's links, so no lookup through it finds them afterwards.
    Raises ``NAME_UNKNOWN`` when there is no such repository.
    """
    held = contents(driver, name)
    for folder in (paths.tags(name), paths.manifests(name)):
        _delete(driver, folder)
    for child in _list(driver, paths.repository(name)):
        if child.rsplit("/", 1)[1].startswith("_"):
            _delete(driver, child)
    for digest in held.layers:
        cache.clear(Digest.parse(digest), name, LAYERS)
    for digest in held.manifests:
        cache.clear(Digest.parse(digest), name, MANIFESTS)
    return held


def _delete(driver: StorageDriver, path: str) -> None:
    with contextlib.suppress(PathNotFoundError):
        driver.delete(path)


def _list(driver: StorageDriver, folder: str) -> list[str]:
    try:
        return driver.list(folder)
    except PathNotFoundError:
        return []
