"""What storage holds, read with as few driver calls as Go's layout allows: for usage,
retention and repository deletes; no figures here.

Per repository: its tags, each with the time its ``current/link`` was written (when the tag
was last pushed, even with the digest it had), and its manifests, each with the time its
revision link was written. Per manifest: its size and the blobs it references with their
sizes, read once and kept, since a manifest's content never changes under its digest.
``_layers`` links are not read: usage counts what manifests reference, which is what stays
after a garbage collection.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from distribution import errors, manifest
from distribution.digest import ALGORITHMS, Digest
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver

log = logging.getLogger(__name__)


@dataclass
class RepositoryRecord:
    """A repository's tags and manifests (digest strings), each with its link's write time."""

    tags: dict[str, float] = field(default_factory=dict)
    manifests: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.tags and not self.manifests

    @property
    def last_push(self) -> float | None:
        """When a tag or a manifest was last written: the repository's latest push."""
        return max([*self.tags.values(), *self.manifests.values()], default=None)

    def to_json(self) -> list[Any]:
        return [self.tags, self.manifests]

    @classmethod
    def from_json(cls, value: list[Any]) -> RepositoryRecord:
        return cls(dict(value[0]), dict(value[1]))


@dataclass(frozen=True)
class ManifestRecord:
    """A stored manifest: its size, what it references, the index children and its subject."""

    size: int
    #: ``(digest, size)`` of its config and layers, and of the manifests an index lists.
    references: tuple[tuple[str, int], ...] = ()
    #: The manifests an index lists (also among ``references``).
    children: tuple[str, ...] = ()
    subject: str | None = None

    def to_json(self) -> list[Any]:
        return [
            self.size,
            [list(ref) for ref in self.references],
            list(self.children),
            self.subject,
        ]

    @classmethod
    def from_json(cls, value: list[Any]) -> ManifestRecord:
        return cls(
            int(value[0]),
            tuple((str(d), int(s)) for d, s in value[1]),
            tuple(value[2]),
            value[3],
        )


def scan_repository(driver: StorageDriver, name: str) -> RepositoryRecord:
    """The repository's tags and manifests as storage has them now (empty if it is gone)."""
    record = RepositoryRecord()
    for tag_folder in _list(driver, paths.tags(name)):
        tag = tag_folder.rsplit("/", 1)[1]
        try:
            record.tags[tag] = driver.stat(paths.tag_current_link(name, tag)).mtime.timestamp()
        except PathNotFoundError:
            continue
    for digest in digests_under(driver, paths.manifest_revisions(name)):
        try:
            info = driver.stat(paths.manifest_revision_link(name, Digest.parse(digest)))
        except PathNotFoundError:
            continue  # deleted: Go and we remove the link and leave the folder
        record.manifests[digest] = info.mtime.timestamp()
    return record


def tag_targets(driver: StorageDriver, name: str, tags: Iterable[str]) -> dict[str, str]:
    """The digest each tag points at now; a tag whose link is gone or damaged is left out."""
    found = {}
    for tag in tags:
        try:
            target = driver.get_content(paths.tag_current_link(name, tag)).decode("ascii")
            found[tag] = str(Digest.parse(target.strip()))
        except (PathNotFoundError, UnicodeDecodeError, errors.DigestInvalid):
            continue
    return found


def read_manifest(driver: StorageDriver, digest: str) -> ManifestRecord | None:
    """What the manifest stored under ``digest`` references; None if its blob is gone.

    Content that is no manifest (damaged storage) counts with its own size only, and is
    logged once per scan.
    """
    parsed_digest = Digest.parse(digest)
    try:
        body = driver.get_content(paths.blob_data(parsed_digest))
    except PathNotFoundError:
        return None
    try:
        media_type = manifest.classify(body)
        if media_type in (manifest.SCHEMA1, manifest.SCHEMA1_SIGNED):
            return ManifestRecord(len(body), tuple(_schema1_references(driver, body)))
        parsed = manifest.parse_stored(body)
    except errors.RegistryError as exc:
        log.warning("usage: manifest %s is unreadable (%s); counting its own size", digest, exc)
        return ManifestRecord(len(body))
    references = []
    for descriptor in [parsed.config, *parsed.layers]:
        if descriptor is None:
            continue
        if descriptor.urls and not _stored(driver, descriptor.digest):
            continue  # a foreign layer: its bytes live elsewhere
        references.append((str(descriptor.digest), descriptor.size))
    children = tuple(str(child.digest) for child in parsed.manifests)
    references += [(str(child.digest), child.size) for child in parsed.manifests]
    subject = str(parsed.subject.digest) if parsed.subject is not None else None
    return ManifestRecord(len(body), tuple(references), children, subject)


def scan_everything(driver: StorageDriver) -> dict[str, RepositoryRecord]:
    """Every repository with a tag or a manifest, from one listing of ``repositories/``
    (:meth:`StorageDriver.files`: a page of a thousand objects per call on cloud storage)."""
    records: dict[str, RepositoryRecord] = {}
    start = len(paths.REPOSITORIES) + 1
    for info in driver.files(paths.REPOSITORIES, skip=_not_counted):
        name, found, rest = info.path[start:].partition("/_manifests/")
        parts = rest.split("/")
        if not found or len(parts) != 4 or parts[3] != "link":
            continue
        if parts[0] == "tags" and parts[2] == "current":
            records.setdefault(name, RepositoryRecord()).tags[parts[1]] = info.mtime.timestamp()
        elif parts[0] == "revisions" and _is_digest(parts[1], parts[2]):
            record = records.setdefault(name, RepositoryRecord())
            record.manifests[f"{parts[1]}:{parts[2]}"] = info.mtime.timestamp()
    return records


def stored_blobs(driver: StorageDriver) -> tuple[int, int]:
    """How many blobs ``blobs/`` holds and their bytes (garbage not yet collected included),
    from one listing."""
    count = total = 0
    for info in driver.files(paths.BLOBS):
        parts = info.path[len(paths.BLOBS) + 1 :].split("/")
        if len(parts) == 4 and parts[3] == "data" and _is_digest(parts[0], parts[2]):
            count += 1
            total += info.size
    return count, total


def digests_under(driver: StorageDriver, folder: str) -> Iterator[str]:
    """Digests named by ``folder/<alg>/<hex>`` entries (valid ones only)."""
    for algorithm_folder in _list(driver, folder):
        algorithm = algorithm_folder.rsplit("/", 1)[1]
        if algorithm not in ALGORITHMS:
            continue
        for entry in _list(driver, algorithm_folder):
            hex_part = entry.rsplit("/", 1)[1]
            if _is_digest(algorithm, hex_part):
                yield f"{algorithm}:{hex_part}"


#: A repository's folders that hold nothing usage counts (a tag's history is ``index``).
_UNCOUNTED = frozenset({"_layers", "_uploads", "_referrers"})


def _not_counted(folder: str) -> bool:
    parts = folder.rsplit("/", 3)
    if parts[-1] in _UNCOUNTED:
        return True
    # <name>/_manifests/tags/<tag>/index
    return (
        len(parts) == 4
        and parts[3] == "index"
        and parts[1] == "tags"
        and parts[0].endswith("/_manifests")
    )


def _is_digest(algorithm: str, hex_part: str) -> bool:
    length = ALGORITHMS.get(algorithm)
    return length is not None and len(hex_part) == length and _HEX.issuperset(hex_part)


_HEX = frozenset("0123456789abcdef")


def _schema1_references(driver: StorageDriver, body: bytes) -> Iterator[tuple[str, int]]:
    """Schema 1 layers carry no sizes: each distinct one is looked up in storage."""
    seen = set()
    for layer in json.loads(body).get("fsLayers") or []:
        try:
            digest = Digest.parse(layer["blobSum"])
        except (errors.DigestInvalid, KeyError, TypeError):
            continue
        if digest in seen:
            continue
        seen.add(digest)
        size = _stored(driver, digest)
        if size is not None:
            yield str(digest), size


def _stored(driver: StorageDriver, digest: Digest) -> int | None:
    try:
        info = driver.stat(paths.blob_data(digest))
    except PathNotFoundError:
        return None
    return None if info.is_dir else info.size


def _list(driver: StorageDriver, folder: str) -> list[str]:
    try:
        return driver.list(folder)
    except PathNotFoundError:
        return []
