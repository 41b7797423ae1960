"""A WSGI app for tests/test_body.py: hashes the request body with ``copy_body`` under gunicorn."""

from __future__ import annotations

import hashlib
import json

from distribution.api import body


def app(environ, start_response):
    """Answer ``{"sha256", "size", "direct"}`` or, for a cut-off body, 400 ``{"received"}``."""
    digest = hashlib.sha256()
    direct = body.direct_source(environ, body.content_length(environ)) is not None
    try:
        size = body.copy_body(environ, digest.update)
    except body.IncompleteBody as err:
        status, payload = "400 Bad Request", {"received": err.received}
    else:
        status = "200 OK"
        payload = {"sha256": digest.hexdigest(), "size": size, "direct": direct}
    data = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]
