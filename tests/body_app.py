"""A WSGI app for tests/test_body.py: hashes the request body with ``copy_body`` under gunicorn."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

from distribution.api import body

#: Hashes for ``X-Hash-Later`` requests, one at a time, in order.
_later = ThreadPoolExecutor(1)


def app(environ, start_response):
    """Answer ``{"sha256", "size", "direct"}`` or, for a cut-off body, 400 ``{"received"}``.

    With ``X-Hash-Later``, each piece is hashed on another thread after a pause while the
    source goes on (the sink returns that future), and the answer tells whether a piece was
    still being hashed when the next one came (``"overlapped"``).
    """
    digest = hashlib.sha256()
    direct = body.direct_source(environ, body.content_length(environ)) is not None
    sink = digest.update
    overlapped = []
    if "HTTP_X_HASH_LATER" in environ:
        last: list[Future] = []

        def hash_later(piece: memoryview) -> Future:
            overlapped.append(bool(last) and not last[-1].done())
            last[:] = [_later.submit(_slowly, digest.update, piece)]
            return last[0]

        sink = hash_later
    try:
        size = body.copy_body(environ, sink)
    except body.IncompleteBody as err:
        status, payload = "400 Bad Request", {"received": err.received}
    else:
        status = "200 OK"
        payload = {"sha256": digest.hexdigest(), "size": size, "direct": direct}
        if overlapped:
            payload["overlapped"] = any(overlapped)
    data = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _slowly(update, piece: memoryview) -> None:
    time.sleep(0.02)  # the next piece arrives meanwhile (into the other half of the buffer)
    update(piece)
