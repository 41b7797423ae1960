"""The blobs API: ``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>``.

Blobs are streamed from the driver, never read whole (see :mod:`distribution.api.filebody`).
"""

from __future__ import annotations

from flask import Blueprint, Request, redirect, request
from werkzeug.http import parse_range_header

from distribution import errors, instrumentation, notifications
from distribution.api import context, immutable
from distribution.api.filebody import FileBody
from distribution.digest import Digest
from distribution.storage.blobs import OCTET_STREAM, Descriptor, RepositoryBlobs
from distribution.storage.manifests import ManifestStore
from distribution.storage.tags import TagStore
from distribution.wrappers import Response

bp = Blueprint("blobs", __name__)

#: Blobs are content-addressed: a year, as distribution sends.
CACHE_CONTROL = "max-age=31536000"


@bp.route("/v2/<path:name>/blobs/<digest>", methods=["GET", "HEAD"])
def get_blob(name: str, digest: str) -> Response:
    """The blob's content, or a 307 to the storage backend when it offers a URL."""
    registry, req = context.registry(), request._get_current_object()  # each looked up once
    repository = RepositoryBlobs(registry.blobs, name)
    descriptor = repository.stat(Digest.parse(digest))
    notifications.blob_pulled(name, descriptor)
    if not registry.config.storage.redirect.disable:
        client = instrumentation.remote_addr(req.environ)
        url = repository.blobs.redirect_url(descriptor.digest, req.method, client)
        if url:
            return redirect(url, code=307)
    return _serve(req, repository, descriptor)


@bp.route("/v2/<path:name>/blobs/<digest>", methods=["DELETE"])
def delete_blob(name: str, digest: str) -> Response:
    """Unlink the blob from the repository; its data stays until garbage collection.

    Refused (403) for the config or a layer of an image an immutable tag holds: unlinked, it
    would make that tag unpullable.
    """
    context.require_delete_enabled()
    registry = context.registry()
    repository = RepositoryBlobs(registry.blobs, name)
    parsed = Digest.parse(digest)
    repository.stat(parsed)
    immutable.refuse_if_held(
        ManifestStore(registry.blobs, name), TagStore(registry.driver, name), parsed, "blob"
    )
    repository.unlink(parsed)
    notifications.blob_deleted(name, parsed)
    return Response.empty(202, {"Content-Length": "0"})


def _serve(req: Request, repository: RepositoryBlobs, descriptor: Descriptor) -> Response:
    """200, 206, 304 or 416 for ``descriptor``, with the headers distribution sends."""
    headers = {
        "ETag": f'"{descriptor.digest}"',
        "Cache-Control": CACHE_CONTROL,
        "Docker-Content-Digest": str(descriptor.digest),
    }
    if "HTTP_IF_NONE_MATCH" in req.environ and req.if_none_match.contains_weak(
        str(descriptor.digest)
    ):
        return Response(status=304, headers=headers)
    size = descriptor.size
    status, (start, stop) = 200, (0, size)
    requested = _byte_range(req, size, headers)
    if requested is not None:
        status, (start, stop) = 206, requested
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers.update({"Accept-Ranges": "bytes", "Content-Length": str(stop - start)})
    if req.method == "HEAD":
        return Response(status=status, headers=headers, mimetype=OCTET_STREAM)
    body = FileBody(req.environ, repository.blobs.open(descriptor.digest, start), stop - start)
    return Response(
        body, status=status, headers=headers, mimetype=OCTET_STREAM, direct_passthrough=True
    )


def _byte_range(req: Request, size: int, headers: dict[str, str]) -> tuple[int, int] | None:
    """The ``[start, stop)`` the request asks for, as Go's ``http.ServeContent``; None: all.

    A malformed ``Range`` or one past the end is ``RANGE_INVALID`` (416); a multi-range request
    gets the whole blob, as RFC 9110 allows, and so does an ``If-Range`` for another ETag.
    """
    header = req.headers.get("Range")
    if_range = req.headers.get("If-Range")
    if not header or (if_range is not None and if_range != headers["ETag"]) or "," in header:
        return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes":
        raise errors.RangeInvalid("invalid range", detail=header)
    start, stop = parsed.ranges[0]
    if start < 0:
        start = max(size + start, 0)
    stop = size if stop is None else min(stop, size)
    if start >= stop:
        raise errors.RangeInvalid(
            "requested range not satisfiable",
            detail=header,
            headers={**headers, "Content-Range": f"bytes */{size}"},
        )
    return start, stop
