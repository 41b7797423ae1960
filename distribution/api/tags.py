"""The tags API: ``GET /v2/<name>/tags/list``, paginated with ``n`` and ``last``."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from distribution.api import context, pagination
from distribution.storage.tags import TagStore

bp = Blueprint("tags", __name__)


@bp.route("/v2/<path:name>/tags/list", methods=["GET"])
def list_tags(name: str) -> Response:
    """The repository's tags, lexically sorted; ``NAME_UNKNOWN`` for an unknown repository."""
    limit = pagination.tags_limit(request.args.get("n"), context.config().tags.maxtags)
    last = request.args.get("last", "")
    registry = context.registry()
    tags = TagStore(registry.driver, name, registry.tag_lists).all()
    tags, more = pagination.page(tags, limit, last)
    response = jsonify({"name": name, "tags": tags})
    if more and limit is not None:
        response.headers["Link"] = pagination.next_link(_request_path(), limit, tags[-1])
    return response


def _request_path() -> str:
    """The path the client asked for, ``http.prefix`` included, as Go's ``r.URL`` has it."""
    return request.script_root + request.path
