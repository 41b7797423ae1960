"""The referrers API (OCI distribution v1.1): ``GET /v2/<name>/referrers/<digest>``.

The answer is always an OCI image index, empty for a subject nothing refers to or a
repository that does not exist (the spec forbids a 404 here). The Go registry has no such
endpoint; clients fall back to tag schemes against it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from distribution import manifest
from distribution.api import context, pagination
from distribution.digest import Digest
from distribution.storage.manifests import ManifestStore
from distribution.storage.referrers import referrers

bp = Blueprint("referrers", __name__)

#: The filters this registry applies, named in ``OCI-Filters-Applied`` when used.
ARTIFACT_TYPE_FILTER = "artifactType"


@bp.route("/v2/<path:name>/referrers/<reference>", methods=["GET"])
def list_referrers(name: str, reference: str) -> Response:
    """Manifests of the repository whose ``subject`` is ``reference``, optionally filtered,
    by digest order in pages of ``n`` (after ``last``) with a ``Link`` to the next one."""
    subject = Digest.parse(reference)
    artifact_type = request.args.get(ARTIFACT_TYPE_FILTER) or None
    limit = pagination.referrers_limit(request.args.get("n"))
    last = request.args.get("last", "")
    store = ManifestStore(context.registry().blobs, name)
    found = {d["digest"]: d for d in referrers(store, subject, artifact_type)}
    digests, more = pagination.page(sorted(found), limit, last)
    response = jsonify(manifest.image_index([found[digest] for digest in digests]))
    response.content_type = manifest.OCI_INDEX
    kept = []
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = ARTIFACT_TYPE_FILTER
        kept.append((ARTIFACT_TYPE_FILTER, artifact_type))
    if more:
        path = request.script_root + request.path
        response.headers["Link"] = pagination.next_link(path, limit, digests[-1], *kept)
    return response
