"""The manifests API: ``GET``/``HEAD``/``PUT``/``DELETE /v2/<name>/manifests/<reference>``.

``<reference>`` is a tag or a digest. Content negotiation, validation and the error each
failure gets follow distribution v3's ``registry/handlers/manifests.go``; see
:mod:`distribution.manifest` for the rules themselves. Tags the access rules make immutable
(our extension) never move nor go: see :func:`_check_may_move` and
:mod:`distribution.api.immutable`.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, request

from distribution import errors, manifest, notifications, retention
from distribution.api import access, context, immutable, urls, usage
from distribution.api.body import declared_length, read_body
from distribution.config import Configuration
from distribution.digest import Digest
from distribution.reference import check_tag, is_tag
from distribution.storage import emptied, paths
from distribution.storage.blobs import RepositoryBlobs
from distribution.storage.locks import Locks, holding_if_present
from distribution.storage.manifests import ManifestStore
from distribution.storage.referrers import index as index_referrer
from distribution.storage.tags import TagStore
from distribution.storage.verification import Rules, verify
from distribution.wrappers import Response

bp = Blueprint("manifests", __name__)

RULE = "/v2/<path:name>/manifests/<reference>"
#: The ``app.extensions`` key of the retention settings, read once (:func:`init_app`).
RETENTION_EXTENSION = "distribution.retention"


def init_app(app: Flask, config: Configuration) -> None:
    """Note which repositories retention covers: an index pushed into one renews its
    children (:func:`_renew_children`)."""
    app.extensions[RETENTION_EXTENSION] = retention.parse(config)


@bp.route(RULE, methods=["GET", "HEAD"])
def get_manifest(name: str, reference: str) -> Response:
    """The manifest's bytes exactly as pushed, typed with its media type.

    A Docker manifest list asked for by tag by a client that does not accept lists is
    answered with its linux/amd64 image, as v3 does for old clients.
    """
    tag, digest = _parse_reference(reference, for_put=False)
    registry, req = context.registry(), request._get_current_object()  # each looked up once
    store = ManifestStore(registry.blobs, name)
    if tag is not None:
        digest = TagStore(registry.driver, name, contents=registry.contents).resolve(tag)
    if "HTTP_IF_NONE_MATCH" in req.environ and req.if_none_match.contains(str(digest)):
        usage.pulled(name, tag, digest)
        return Response(status=304)
    accepted = manifest.accepted_types(req.environ.get("HTTP_ACCEPT", ""))
    body = store.get(digest)
    media_type = manifest.classify_stored(digest, body)
    manifest.check_acceptable(media_type, accepted)
    if manifest.needs_list_fallback(media_type, accepted, by_tag=tag is not None):
        notifications.manifest_pulled(name, digest, media_type, body, tag)
        digest = manifest.default_platform_child(manifest.parse_stored(body))
        body = store.get(digest)
        media_type = manifest.classify_stored(digest, body)
        manifest.check_fallback_child(media_type, accepted)
        tag = None
    notifications.manifest_pulled(name, digest, media_type, body, tag)
    usage.pulled(name, tag, digest)
    response = Response(body, status=200, content_type=media_type)
    response.headers["Docker-Content-Digest"] = str(digest)
    response.headers["ETag"] = f'"{digest}"'
    return response


@bp.route(RULE, methods=["PUT"])
def put_manifest(name: str, reference: str) -> Response:
    """Validate and store a manifest, then point the tag at it when pushed by tag."""
    tag, expected = _parse_reference(reference, for_put=True)
    body = _read_body()
    parsed = manifest.parse(request.headers.get("Content-Type"), body)
    digest = Digest.of(body)
    if expected is not None and expected != digest:
        raise errors.DigestInvalid()
    manifest.check_class(parsed, context.config().policy.repository.classes)
    registry = context.registry()
    usage.check_quota(name)
    if tag is not None:
        _check_may_move(name, tag, digest)
    store = ManifestStore(registry.blobs, name)
    rules = Rules.from_config(context.config().validation)
    verify(parsed, RepositoryBlobs(registry.blobs, name), store, rules)
    if parsed.is_index and current_app.extensions[RETENTION_EXTENSION].policy_for(name):
        _renew_children(registry.locks, store, parsed, rules)
    # Retention unlinks a manifest, or deletes a tag, under the same locks.
    with holding_if_present(registry.locks, paths.manifest_revision_link(name, digest)):
        store.put(body)
        index_referrer(store, digest, parsed, len(body))
        if tag is not None:
            with holding_if_present(registry.locks, paths.tag_current_link(name, tag)):
                TagStore(registry.driver, name).tag(tag, digest)
    usage.changed(name)
    notifications.manifest_pushed(name, digest, parsed.media_type, body, tag)
    response = Response.empty(201)
    response.headers["Location"] = urls.external_url(
        "manifests.get_manifest", name=name, reference=str(digest)
    )
    response.headers["Docker-Content-Digest"] = str(digest)
    if parsed.subject is not None:
        response.headers["OCI-Subject"] = str(parsed.subject.digest)
    return response


@bp.route(RULE, methods=["DELETE"])
def delete_manifest(name: str, reference: str) -> Response:
    """By tag, untag only; by digest, unlink the manifest and drop every tag pointing at it."""
    context.require_delete_enabled()
    tag, digest = _parse_reference(reference, for_put=False)
    registry = context.registry()
    tags = TagStore(registry.driver, name)
    if tag is not None:
        rule = access.policy().immutable(name, tag)
        if rule is not None:
            tags.resolve(tag)  # an unknown tag stays MANIFEST_UNKNOWN
            immutable.refuse(
                name, tag, rule, f"tag {tag} of repository {name} is immutable: it cannot go"
            )
        delete_tag(name, tag, tags)
        return Response.empty(202)
    store = ManifestStore(registry.blobs, name)
    immutable.refuse_if_held(store, tags, digest, "manifest")
    store.delete(digest)
    usage.changed(name)
    notifications.manifest_deleted(name, digest)
    for stale in tags.lookup(digest, context.config().storage.tag.concurrencylimit):
        try:
            delete_tag(name, stale, tags)
        except errors.ManifestUnknown:
            continue
    emptied.note(registry.driver, name)
    return Response.empty(202)


def delete_tag(name: str, tag: str, tags: TagStore) -> None:
    """Untag ``tag`` of ``name`` (``MANIFEST_UNKNOWN`` if it is gone) and tell who must know:
    the catalog (if nothing is left), the usage job (the repository changed) and the
    notification endpoints. Every tag delete comes here, the API's and the web UI's alike.

    Under the lock a manifest ``PUT`` holds while it writes the tag: a push of the same tag
    meanwhile lands wholly before or wholly after, never with half its files deleted."""
    with holding_if_present(context.registry().locks, paths.tag_current_link(name, tag)):
        tags.untag(tag)
    emptied.note(tags.driver, name)
    usage.changed(name)
    notifications.tag_deleted(name, tag)


def _check_may_move(name: str, tag: str, digest: Digest) -> None:
    """An immutable tag may be pushed again with the digest it has (CI retries), never moved."""
    rule = access.policy().immutable(name, tag)
    if rule is None:
        return
    try:
        current = TagStore(context.registry().driver, name).resolve(tag)
    except errors.ManifestUnknown:
        return
    if current != digest:
        immutable.refuse(
            name,
            tag,
            rule,
            f"tag {tag} of repository {name} is immutable: it points to {current} and cannot move",
        )


def _renew_children(
    locks: Locks, store: ManifestStore, index: manifest.Manifest, rules: Rules
) -> None:
    """Write the revision link of each child of ``index`` again, under the child's lock,
    before the index goes in.

    A retention run unlinks a manifest under that lock, and only if its link is as old as when
    the run read it (:mod:`distribution.retention.run`). So a child the run means to let go is
    either renewed first, and then stays, or gone first, and then the push fails as if it had
    never been there. The run's second read of the repository spares what an index pushed
    before it reaches, but not what one pushed after it does.
    """
    for child in index.manifests:
        with holding_if_present(locks, paths.manifest_revision_link(store.name, child.digest)):
            if not store.renew(child.digest) and rules.requires(child.platform):
                raise errors.ManifestBlobUnknown(detail=str(child.digest))


def _parse_reference(text: str, for_put: bool) -> tuple[str | None, Digest | None]:
    """``(tag, None)`` or ``(None, digest)``; anything with a ``:`` must be a valid digest.

    A malformed tag is ``TAG_INVALID`` when pushing; elsewhere it names nothing that could
    exist, so it is ``MANIFEST_UNKNOWN`` (Go's router answers 404 for it).
    """
    if ":" in text:
        return None, Digest.parse(text)
    if not is_tag(text):
        if for_put:
            check_tag(text)
        raise errors.ManifestUnknown(detail={"Tag": text})
    return text, None


def _read_body() -> bytes:
    """The request body, refused past :data:`manifest.MAX_SIZE` as Go refuses it.

    A body cut short of its ``Content-Length`` (the client gone) or a broken chunked encoding
    is ``SIZE_INVALID``: read as a whole, a manifest cut before its last newline is valid JSON
    of another digest, which a tag would then point at.
    """
    too_large = errors.ManifestInvalid(detail="http: request body too large")
    if (declared_length(request.environ) or 0) > manifest.MAX_SIZE:
        raise too_large
    data = bytearray()

    def keep(piece: memoryview) -> None:
        if len(data) + len(piece) > manifest.MAX_SIZE:
            raise too_large
        data.extend(piece)

    read_body(request.environ, keep)
    return bytes(data)
