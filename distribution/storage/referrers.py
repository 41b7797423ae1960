"""The referrers of a manifest (OCI distribution v1.1), indexed by subject in the repository.

::

    repositories/<name>/_referrers/indexed                            the index is complete
    repositories/<name>/_referrers/<alg>/<subject hex>/<alg>/<hex>    a referrer's descriptor

A manifest with a ``subject`` stored here gets its entry (the descriptor the API lists) at
once. A repository without ``indexed``, written by the Go registry (which keeps no index, and
skips these folders) or before the index existed, is scanned once, on its first referrers
call: every manifest is read, the entries are written, then ``indexed``. Entries are checked
against the repository's manifest links when read, so a manifest deleted anywhere (here, by
Go, by garbage collection) drops out. What the index cannot know: a referrer stored through a
Go replica after the index was made (Go has no referrers API); ``registry verify --repair``
rebuilds the index of every repository.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from distribution import errors, manifest
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError
from distribution.storage.manifests import ManifestStore

log = logging.getLogger(__name__)


def index(store: ManifestStore, digest: Digest, parsed: manifest.Manifest, size: int) -> None:
    """Record ``digest`` as a referrer of its subject; nothing for a manifest without one."""
    if parsed.subject is not None:
        descriptor = manifest.referrer_descriptor(parsed, digest, size)
        path = paths.referrer_entry(store.name, parsed.subject.digest, digest)
        store.driver.put_content(path, json.dumps(descriptor).encode())


def referrers(
    store: ManifestStore, subject: Digest, artifact_type: str | None = None
) -> list[dict[str, Any]]:
    """Descriptors of the manifests whose ``subject`` is ``subject``, sorted by digest.

    With ``artifact_type``, only referrers of that artifact type. A repository that does not
    exist simply has none.
    """
    driver = store.driver
    try:
        driver.stat(paths.referrers_indexed(store.name))
    except PathNotFoundError:
        if not reindex(store):
            return []
    found = []
    for descriptor in _entries(store, subject):
        if artifact_type is None or descriptor.get("artifactType") == artifact_type:
            found.append(descriptor)
    return sorted(found, key=lambda descriptor: descriptor["digest"])


def reindex(store: ManifestStore) -> bool:
    """Scan every manifest of the repository, write its referrers' entries and mark the
    index complete; False (and nothing written) for a repository with no manifests."""
    scanned = 0
    for digest in store.digests():
        scanned += 1
        try:
            body = store.get(digest)
            if manifest.classify(body) not in (manifest.OCI_MANIFEST, manifest.OCI_INDEX):
                continue
            parsed = manifest.parse_stored(body)
        except errors.ManifestUnknown:
            continue
        except errors.Unknown as exc:
            log.warning("skipping unreadable manifest %s in %s: %s", digest, store.name, exc)
            continue
        index(store, digest, parsed, len(body))
    if scanned:
        store.driver.put_content(paths.referrers_indexed(store.name), b"1")
    return scanned > 0


def _entries(store: ManifestStore, subject: Digest) -> list[dict[str, Any]]:
    """The subject's index entries whose manifest the repository still links."""
    found = []
    for folder in _list(store, paths.referrers_of(store.name, subject)):
        for entry in _list(store, folder):
            algorithm, hex_ = entry.rsplit("/", 2)[-2:]
            try:
                digest = Digest.parse(f"{algorithm}:{hex_}")
                descriptor = json.loads(store.driver.get_content(entry))
            except (errors.DigestInvalid, PathNotFoundError, ValueError):
                continue
            if isinstance(descriptor, dict) and store.exists(digest):
                found.append(descriptor)
    return found


def _list(store: ManifestStore, path: str) -> list[str]:
    try:
        return store.driver.list(path)
    except PathNotFoundError:
        return []
