"""The blob uploads API: ``/v2/<name>/blobs/uploads/`` and ``/v2/<name>/blobs/uploads/<uuid>``.

Behaves as distribution v3's ``blobupload.go``: the ``_state`` token of PATCH, PUT and DELETE
must be ours, for this repository and this upload, and at the stored size; the status GET needs
no token and hands out a fresh one, so a client that lost track (a dropped connection) can
resume. Bodies stream through in chunks, hashed as they arrive.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Blueprint, current_app, request
from flask.blueprints import BlueprintSetupState

from distribution import errors, metrics, notifications, reference, uploadstate
from distribution.api import access, body, context, usage
from distribution.api.urls import external_url
from distribution.digest import Digest
from distribution.storage.blobs import Descriptor, RepositoryBlobs
from distribution.storage.uploads import LiveHashes, Upload, Uploads
from distribution.wrappers import Response

bp = Blueprint("uploads", __name__)

#: Where the app keeps this process's live upload hashes.
LIVE_HASHES_EXTENSION = "distribution.live_hashes"

#: ``start-end``, each a byte offset (at most 19 digits: 64 bits), as Docker sends it.
_CONTENT_RANGE = re.compile(r"(?:bytes[ =])?(\d{1,19})-(\d{1,19})(?:/(?:\d{1,19}|\*))?")


@bp.record_once
def _create_live_hashes(state: BlueprintSetupState) -> None:
    state.app.extensions[LIVE_HASHES_EXTENSION] = LiveHashes()


@bp.route("/v2/<path:name>/blobs/uploads/", methods=["POST"])
def start_upload(name: str) -> Response:
    """Start an upload; ``?digest=`` with a body is a whole (monolithic) upload, 201.

    ``?mount=<digest>&from=<repository>`` links a blob ``from`` has (201); if it cannot, this
    is an ordinary upload, as in distribution.
    """
    usage.check_quota(name)
    uploads = _uploads()
    if request.args.get("digest"):
        digest = _digest_param()
        upload = uploads.start(name)
        try:
            upload = uploads.append(upload, request_body, final=True)
        except Exception:
            uploads.cancel(upload)  # nobody knows this upload's id to resume it
            raise
        committed = uploads.commit(upload, digest)
        notifications.blob_pushed(name, committed)
        return _created(name, committed)
    mounted = _mount(name, request.args.get("mount"), request.args.get("from"))
    if mounted is not None:
        notifications.blob_mounted(name, mounted, request.args.get("from"))
        return _created(name, mounted)
    return Response.empty(202, _progress_headers(uploads.start(name)))


@bp.route("/v2/<path:name>/blobs/uploads/<uuid>", methods=["GET", "HEAD"])
def upload_status(name: str, uuid: str) -> Response:
    """204 with the stored ``Range`` and a ``Location`` carrying a fresh ``_state``."""
    with _uploads().exclusive(name, uuid) as upload:
        return Response.empty(204, _progress_headers(upload))


@bp.route("/v2/<path:name>/blobs/uploads/<uuid>", methods=["PATCH"])
def patch_upload(name: str, uuid: str) -> Response:
    """Append the body; a ``Content-Range`` must start at the stored size."""
    uploads = _uploads()
    state = _state(name, uuid)
    with uploads.exclusive(name, uuid, writing=True) as upload:
        _check_offset(upload, state)
        _check_content_range(upload)
        upload = uploads.append(upload, request_body)
    return Response.empty(202, _progress_headers(upload))


@bp.route("/v2/<path:name>/blobs/uploads/<uuid>", methods=["PUT"])
def complete_upload(name: str, uuid: str) -> Response:
    """Append the body, if any, verify ``?digest=`` and make the upload a blob (201).

    A final chunk's ``Content-Range`` is checked as a PATCH's: out of order is 416 and the
    upload stays, as the OCI spec requires (Go v3 checks it only on PATCH).
    """
    uploads = _uploads()
    state = _state(name, uuid)
    with uploads.exclusive(name, uuid, writing=True) as upload:
        _check_offset(upload, state)
        _check_content_range(upload)
        digest = _digest_param()
        upload = uploads.append(upload, request_body, final=True)
        committed = uploads.commit(upload, digest)
    notifications.blob_pushed(name, committed)
    return _created(name, committed)


@bp.route("/v2/<path:name>/blobs/uploads/<uuid>", methods=["DELETE"])
def cancel_upload(name: str, uuid: str) -> Response:
    """Remove the upload and its data (204)."""
    uploads = _uploads()
    state = _state(name, uuid)
    with uploads.exclusive(name, uuid) as upload:
        _check_offset(upload, state)
        uploads.cancel(upload)
    return Response.empty(204, {"Docker-Upload-UUID": upload.id})


def request_body(sink: Callable[[memoryview], object]) -> int:
    """Feed the request body to ``sink`` at socket speed (see :mod:`distribution.api.body`).

    A body that ends before its ``Content-Length``, or a broken chunked encoding, is
    ``SIZE_INVALID``; what arrived before stays in the upload.
    """
    with metrics.uploads_in_progress.track_inprogress():
        return body.read_body(request.environ, sink)


def _uploads() -> Uploads:
    registry = context.registry()
    return Uploads(registry.blobs, current_app.extensions[LIVE_HASHES_EXTENSION], registry.locks)


def _state(name: str, uuid: str) -> uploadstate.UploadState:
    """The request's ``_state``, checked in Go's order before the upload is looked up.

    Bad token: ``BLOB_UPLOAD_INVALID``; then, under the upload's lock, no such upload:
    ``BLOB_UPLOAD_UNKNOWN``; token not at the stored size (a stale or replayed request):
    ``RANGE_INVALID`` (:func:`_check_offset`), as distribution v3.
    """
    return uploadstate.resume(request.args.get("_state"), _secret(), name, uuid)


def _check_offset(upload: Upload, state: uploadstate.UploadState) -> None:
    if upload.size != state.offset:
        raise errors.RangeInvalid(
            detail={"offset": state.offset, "size": upload.size},
            headers=_progress_headers(upload),
        )


def _check_content_range(upload: Upload) -> None:
    """A chunk must start where the upload ends and match its ``Content-Length``."""
    header = request.headers.get("Content-Range")
    if header is None:
        return
    match = _CONTENT_RANGE.fullmatch(header.strip())
    if match is None:
        raise errors.RangeInvalid(detail=header, headers=_progress_headers(upload))
    start, end = int(match[1]), int(match[2])
    if start > end or start != upload.size:
        raise errors.RangeInvalid(detail=header, headers=_progress_headers(upload))
    length = body.declared_length(request.environ)
    if length is not None and length != end - start + 1:
        raise errors.SizeInvalid(detail={"Content-Range": header, "Content-Length": length})


def _digest_param() -> Digest:
    """``?digest=``, required to finish an upload; missing or malformed is ``DIGEST_INVALID``."""
    text = request.args.get("digest")
    if not text:
        raise errors.DigestInvalid(detail="digest missing")
    return Digest.parse(text)


def _mount(name: str, mount: str | None, source: str | None) -> Descriptor | None:
    """Link ``mount`` from repository ``source`` into ``name``; None if that cannot be done.

    A caller the access rules do not let pull ``source`` gets an ordinary upload, as for a
    blob ``source`` lacks: the answer tells nothing of ``source``, and clients just upload.
    """
    if not mount or not source:
        return None
    try:
        digest = Digest.parse(mount)
        reference.check_name(source)
    except (errors.DigestInvalid, errors.NameInvalid):
        return None
    if not access.allows(source, "pull"):
        return None
    blobs = context.registry().blobs
    try:
        return RepositoryBlobs(blobs, name).mount(RepositoryBlobs(blobs, source), digest)
    except errors.BlobUnknown:
        return None


def _created(name: str, descriptor: Descriptor) -> Response:
    location = external_url("blobs.get_blob", name=name, digest=str(descriptor.digest))
    return Response.empty(
        201, {"Location": location, "Docker-Content-Digest": str(descriptor.digest)}
    )


def _progress_headers(upload: Upload) -> dict[str, str]:
    """``Location`` with a fresh ``_state``, ``Range`` and ``Docker-Upload-UUID``."""
    state = uploadstate.UploadState(upload.name, upload.id, upload.size, upload.started_at)
    token = uploadstate.pack(state, _secret())
    location = external_url("uploads.upload_status", name=upload.name, uuid=upload.id, _state=token)
    return {
        "Location": location,
        "Range": f"0-{max(upload.size - 1, 0)}",
        "Docker-Upload-UUID": upload.id,
    }


def _secret() -> str:
    return context.config().http.secret or ""
