"""The API root: ``GET /`` for load balancers and ``GET /v2/`` for version checks."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

bp = Blueprint("base", __name__)


@bp.route("/", methods=["GET", "HEAD"])
def root() -> Response:
    """Always 200, without auth: load balancers probe it."""
    return Response(status=200)


@bp.route("/v2/", methods=["GET", "HEAD"])
def version_check() -> Response:
    """Clients probe this to learn the server speaks registry/2.0."""
    return jsonify({})
