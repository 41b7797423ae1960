"""The referrers API (OCI distribution v1.1): ``GET /v2/<name>/referrers/<digest>``.

The answer is always an OCI image index, empty for a subject nothing refers to or a
repository that does not exist (the spec forbids a 404 here). The Go registry has no such
endpoint; clients fall back to tag schemes against it.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from distribution import manifest
from distribution.api import context
from distribution.digest import Digest
from distribution.storage.manifests import ManifestStore
from distribution.storage.referrers import referrers

bp = Blueprint("referrers", __name__)

#: The filters this registry applies, named in ``OCI-Filters-Applied`` when used.
ARTIFACT_TYPE_FILTER = "artifactType"


@bp.route("/v2/<path:name>/referrers/<reference>", methods=["GET"])
def list_referrers(name: str, reference: str) -> Response:
    """Manifests of the repository whose ``subject`` is ``reference``, optionally filtered."""
    subject = Digest.parse(reference)
    artifact_type = request.args.get(ARTIFACT_TYPE_FILTER) or None
    store = ManifestStore(context.registry().blobs, name)
    response = jsonify(manifest.image_index(referrers(store, subject, artifact_type)))
    response.content_type = manifest.OCI_INDEX
    if artifact_type is not None:
        response.headers["OCI-Filters-Applied"] = ARTIFACT_TYPE_FILTER
    return response
