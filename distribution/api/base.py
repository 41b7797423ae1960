"""The API root: ``GET /`` for load balancers and ``GET /v2/`` for version checks."""

from __future__ import annotations

from flask import Blueprint, current_app

from distribution.wrappers import Response

bp = Blueprint("base", __name__)

#: ``jsonify({})``'s body, made once: the most frequent request need not encode it each time.
EMPTY_OBJECT = b"{}\n"


#: What Go's root answers carry: a proxy or load balancer must not answer a probe from a cache.
ROOT_HEADERS = {"Cache-Control": "no-cache"}


@bp.route("/", methods=["GET", "HEAD"])
def root() -> Response:
    """Always 200, without auth: load balancers probe it."""
    return Response.empty(200, ROOT_HEADERS)


@bp.route("/v2/", methods=["GET", "HEAD"])
def version_check() -> Response:
    """Clients probe this to learn the server speaks registry/2.0."""
    return Response(EMPTY_OBJECT, content_type=current_app.json.mimetype)
