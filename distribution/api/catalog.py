"""The catalog API: ``GET /v2/_catalog``, paginated with ``n`` and ``last``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from distribution.api import access, context, pagination
from distribution.storage import catalog

bp = Blueprint("catalog", __name__)


@bp.route("/v2/_catalog", methods=["GET"])
def list_repositories() -> Response:
    """A page of the repository names the caller may pull, at most ``catalog.maxentries`` long
    (100 by default)."""
    limit = pagination.catalog_limit(request.args.get("n"), context.config().catalog.maxentries)
    last = request.args.get("last", "")
    names: list[str] = []
    more = False
    visible = access.visibility()
    if limit > 0 and not visible.nothing:
        only = None if visible.everything else visible
        names, more = catalog.repositories(context.registry().driver, limit, last, only)
    response = jsonify({"repositories": names})
    if more:
        path = request.script_root + request.path
        response.headers["Link"] = pagination.next_link(path, limit, names[-1])
    return response
