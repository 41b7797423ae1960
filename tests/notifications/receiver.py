"""A real HTTP endpoint for notifications: a threaded ``http.server`` recording every POST.

``stop()`` closes the listening socket (the endpoint is down: connections are refused) and
``start()`` listens again on the same port; ``status`` makes it answer with an error instead,
or with a redirect to ``location``. A ``GET`` (a redirected POST) is recorded with no body.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import free_port

#: Seconds a test waits for events to arrive.
WAIT_TIMEOUT = 60.0


@dataclass
class Post:
    """One POST as received: the path, every header line in order, the parsed body."""

    path: str
    headers: list[tuple[str, str]]
    body: dict[str, Any]
    method: str = "POST"

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class Receiver:
    """``tls``: a server context to answer over HTTPS with."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.port = free_port()
        self.posts: list[Post] = []
        self.status = 200
        self.location: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/events"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length)) if length else {}
                status = receiver.status
                if status < 300:
                    with receiver._lock:
                        receiver.posts.append(
                            Post(self.path, list(self.headers.items()), body, self.command)
                        )
                self.send_response(status)
                if 300 <= status < 400 and receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [event for post in self.posts for event in post.body["events"]]

    def wait_for(
        self, done: Callable[[list[dict[str, Any]]], bool], timeout: float = WAIT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """The events received once ``done(events)`` holds; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.events()
            if done(received):
                return received
            time.sleep(0.1)
        raise AssertionError(f"events not as expected after {timeout}s: {self.events()}")


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """``(action, repository, digest or tag)`` of each event: what tests compare."""
    return [
        (
            event["action"],
            event["target"].get("repository", ""),
            event["target"].get("digest") or event["target"].get("tag", ""),
        )
        for event in events
    ]
