"""Which listener a connection came in on decides between the API and the debug routes."""

from __future__ import annotations

import pytest
from werkzeug.test import Client

from distribution import debug


class _Socket:
    def __init__(self, local: object) -> None:
        self.local = local

    def getsockname(self) -> object:
        return self.local


def _named(name: bytes):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [name]

    return app


@pytest.mark.parametrize(
    ("debug_addr", "local", "expected"),
    [
        (":5001", ("127.0.0.1", 5001), b"debug"),
        (":5001", ("10.1.2.3", 5001), b"debug"),
        (":5001", ("127.0.0.1", 5000), b"api"),
        ("127.0.0.1:5001", ("127.0.0.1", 5001), b"debug"),
        ("127.0.0.1:5001", ("127.0.0.2", 5001), b"api"),
        ("[::1]:5001", ("::1", 5001, 0, 0), b"debug"),
        ("localhost:5001", ("127.0.0.1", 5001), b"debug"),
        (":5001", "/run/registry.sock", b"api"),
        (":5001", None, b"api"),
    ],
)
def test_routes_by_the_connections_local_address(debug_addr, local, expected) -> None:
    app = debug.by_listener(_named(b"api"), _named(b"debug"), debug_addr)
    environ = {} if local is None else {"gunicorn.socket": _Socket(local)}
    response = Client(app).get("/debug/health", environ_overrides=environ)
    assert response.data == expected


def test_the_host_header_cannot_reach_the_debug_routes() -> None:
    app = debug.by_listener(_named(b"api"), _named(b"debug"), ":5001")
    environ = {"gunicorn.socket": _Socket(("127.0.0.1", 5000)), "SERVER_PORT": "5001"}
    response = Client(app).get(
        "/metrics", headers={"Host": "127.0.0.1:5001"}, environ_overrides=environ
    )
    assert response.data == b"api"
