"""The API endpoints a pull-through cache answers differently, wrapping the blueprints' own.

Reads make sure storage has the content (fetching it on a miss), then the blueprint's handler
serves it exactly as for any stored content; only a blob missing from storage is answered here,
streamed from the upstream (and stored, unless another request is storing it). Writes are
refused with ``UNSUPPORTED`` (405), as the Go registry refuses them in proxy mode. The wrappers
run where the handlers run, after every ``before_request`` hook (authentication), and errors
they raise go to the application's one error renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app, jsonify, request

from distribution import errors, manifest, metrics, notifications
from distribution.api import context, pagination
from distribution.digest import Digest
from distribution.proxy.cache import PullThrough
from distribution.reference import is_tag
from distribution.storage.blobs import Descriptor
from distribution.wrappers import Response

EXTENSION = "distribution.proxy"

#: Endpoints that would write: refused.
REFUSED = (
    "uploads.start_upload",
    "uploads.upload_status",
    "uploads.patch_upload",
    "uploads.complete_upload",
    "uploads.cancel_upload",
    "manifests.put_manifest",
    "manifests.delete_manifest",
    "blobs.delete_blob",
)

View = Callable[..., Any]


def wrap(view_functions: dict[str, View]) -> None:
    """Replace the app's handlers with the pull-through ones, keeping the originals to call."""
    for endpoint in REFUSED:
        view_functions[endpoint] = refuse
    view_functions["manifests.get_manifest"] = _manifest(view_functions["manifests.get_manifest"])
    view_functions["blobs.get_blob"] = _blob(view_functions["blobs.get_blob"])
    view_functions["tags.list_tags"] = _tags(view_functions["tags.list_tags"])


def refuse(**values: Any) -> Response:
    raise errors.Unsupported()


def _cache() -> PullThrough:
    return current_app.extensions[EXTENSION]


def _manifest(serve: View) -> View:
    def get_manifest(name: str, reference: str) -> Response:
        pulled = None
        if ":" in reference:
            pulled = _cache().ensure_manifest(name, Digest.parse(reference))
        elif is_tag(reference):
            pulled = _cache().ensure_tag(name, reference)
            accepted = manifest.accepted_types(request.headers.get("Accept", ""))
            _cache().ensure_list_fallback(name, reference, accepted)
        response = serve(name=name, reference=reference)
        if response.status_code == 200:
            metrics.proxy.served("manifest", response.content_length or 0, pulled)
        return response

    return get_manifest


def _blob(serve: View) -> View:
    def get_blob(name: str, digest: str) -> Response:
        cache, parsed = _cache(), Digest.parse(digest)
        if cache.has_blob(name, parsed):
            response = serve(name=name, digest=digest)
            if response.status_code in (200, 206):
                metrics.proxy.served("blob", response.content_length or 0, None)
            return response
        if request.method == "HEAD":
            size = cache.blob_size(name, parsed)
            notifications.blob_pulled(name, Descriptor(parsed, size))  # as Go's ServeBlob does
            metrics.proxy.served("blob", 0, 0)
            return _blob_response(parsed, size, None)
        if "Range" not in request.headers:
            claimed = cache.claim(parsed) is None
            fetch = cache.fetch(name, parsed) if claimed else cache.stream(name, parsed)
            fetch.on_served = notifications.blob_pull_pending(name, fetch.descriptor)
            metrics.proxy.served("blob", fetch.size or 0, fetch.size or 0)
            return _blob_response(parsed, fetch.size, fetch)
        pulled = cache.fill(name, parsed)  # a range: served from storage once it is there
        response = serve(name=name, digest=digest)
        metrics.proxy.served("blob", response.content_length or 0, pulled)
        return response

    return get_blob


def _blob_response(digest: Digest, size: int | None, body: Any) -> Response:
    headers = {
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
        "Docker-Content-Digest": str(digest),
        "Accept-Ranges": "bytes",
    }
    if size is not None:
        headers["Content-Length"] = str(size)
    return Response(
        body,
        status=200,
        headers=headers,
        mimetype="application/octet-stream",
        direct_passthrough=body is not None,
    )


def _tags(serve: View) -> View:
    def list_tags(name: str) -> Response:
        limit = pagination.tags_limit(request.args.get("n"), context.config().tags.maxtags)
        upstream = _cache().tags(name)
        if upstream is None:
            return serve(name=name)
        tags, more = pagination.page(upstream, limit, request.args.get("last", ""))
        response = jsonify({"name": name, "tags": tags})
        if more and limit is not None:
            path = request.script_root + request.path
            response.headers["Link"] = pagination.next_link(path, limit, tags[-1])
        return response

    return list_tags
