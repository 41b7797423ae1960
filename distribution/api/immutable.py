"""What a tag the access rules make immutable (our extension) holds, and the refusal to touch it.

An immutable tag never moves nor goes, and neither does what it points at: the manifest, the
children of an index, and (for the blobs API) their configs and layers, without which a pull
fails. The manifests and blobs handlers ask :func:`refuse_if_held` before a delete; it reads
nothing where no immutable rule covers the repository.
"""

from __future__ import annotations

import logging
from typing import Literal, NoReturn

from flask import request

from distribution import errors, manifest
from distribution import log as log_module
from distribution.api import access
from distribution.digest import Digest
from distribution.storage.manifests import ManifestStore
from distribution.storage.tags import TagStore

log = logging.getLogger(__name__)


def refuse_if_held(
    store: ManifestStore, tags: TagStore, digest: Digest, kind: Literal["manifest", "blob"]
) -> None:
    """403 ``DENIED`` when an immutable tag of the repository holds ``digest``: points at it or
    at an index listing it or, for a blob, at a manifest (or child) whose config or layer it is.
    """
    held = _holding_tag(store, tags, digest, kind == "blob")
    if held is not None:
        tag, rule = held
        message = f"{kind} {digest} of repository {tags.name} is held by immutable tag {tag}"
        refuse(tags.name, tag, rule, message)


def refuse(name: str, tag: str, rule: str, message: str) -> NoReturn:
    """403 ``DENIED`` for a change to an immutable tag, and one log line naming the rule."""
    fields = {
        "auth.user.name": access.identity().user or "",
        "access.repository": name,
        "access.tag": tag,
        "access.action": "delete" if request.method == "DELETE" else "push",
        "access.rule": rule,
    }
    log.warning("immutable tag", extra={log_module.FIELDS: fields})
    raise errors.Denied(message, detail={"Tag": tag})


def _holding_tag(
    store: ManifestStore, tags: TagStore, digest: Digest, blobs: bool
) -> tuple[str, str] | None:
    """The immutable tag (and its rule) holding ``digest``, or None.

    Reads the repository's tags, and the manifests each immutable one points at (once per
    manifest), only when some immutable rule covers the repository.
    """
    policy = access.policy()
    if not policy.freezes(tags.name):
        return None
    try:
        names = tags.all()
    except errors.NameUnknown:
        return None
    checked: set[Digest] = set()
    for tag in names:
        rule = policy.immutable(tags.name, tag)
        if rule is None:
            continue
        try:
            target = tags.resolve(tag)
        except errors.ManifestUnknown:
            continue
        if target not in checked and digest in _held(store, target, blobs):
            return tag, rule
        checked.add(target)
    return None


def _held(store: ManifestStore, target: Digest, blobs: bool) -> set[Digest]:
    """The manifests ``target`` holds (itself, an index's children) or, with ``blobs``, the
    configs and layers of those."""
    parsed = _parsed(store, target)
    children = parsed.manifests if parsed is not None else ()
    manifests = {target} | {child.digest for child in children}
    if not blobs:
        return manifests
    held: set[Digest] = set()
    for digest in manifests:
        image = parsed if digest == target else _parsed(store, digest)
        if image is not None:
            held.update(part.digest for part in (image.config, *image.layers) if part is not None)
    return held


def _parsed(store: ManifestStore, digest: Digest) -> manifest.Manifest | None:
    """The manifest stored as ``digest``; None when it cannot be read (gone, or no manifest)."""
    try:
        return manifest.parse_stored(store.get(digest))
    except errors.RegistryError:
        return None
