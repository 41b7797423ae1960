"""The registry's responses send the headers werkzeug would send, copied or not."""

from __future__ import annotations

from typing import Any

import flask
import pytest
from werkzeug.test import EnvironBuilder

from distribution import wrappers
from tests.conftest import make_app

ENVIRON = EnvironBuilder("/v2/a/manifests/latest", "http://registry:5000/").get_environ()


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((b"{}\n",), {"content_type": "application/json"}),
        ((), {"status": 200, "headers": {"Content-Length": "5", "ETag": '"x"'}}),
        ((b"body",), {"status": 201, "headers": {"Location": "/v2/a/blobs/sha256:é"}}),
        ((), {"status": 302, "headers": {"content-location": "/v2/ä"}}),
        ((b"gone",), {"status": 204}),
        ((b"same",), {"status": 304, "headers": {"ETag": '"x"', "Content-Type": "a/b"}}),
        ((b"early",), {"status": 103}),
        ((iter([b"streamed"]),), {"status": 200}),
        ((b"x",), {"status": 404, "headers": {"Content-Length": "1"}}),
    ],
)
def test_the_headers_sent_are_werkzeugs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    expected = flask.Response(*args, **kwargs).get_wsgi_headers(ENVIRON)
    got = wrappers.Response(*args, **kwargs).get_wsgi_headers(ENVIRON)
    assert list(got) == list(expected)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/"),
        ("GET", "/v2/_catalog"),
        ("GET", "/v2/a/tags/list"),
        ("HEAD", "/v2/a/blobs/sha256:" + "0" * 64),
        ("POST", "/v2/a/blobs/uploads/"),
        ("GET", "/nowhere"),
    ],
)
def test_views_and_errors_answer_with_the_registrys_class(method: str, path: str) -> None:
    app = make_app()
    with app.test_request_context(path, method=method):
        assert type(app.full_dispatch_request()) is wrappers.Response
