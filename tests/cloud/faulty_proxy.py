"""An HTTP proxy in front of an emulator that fails chosen requests, to prove retries.

It forwards everything to the emulator (rewriting ``Location`` so upload sessions also come
back through it), except the next requests matching a test's rule: those are answered with a
chosen status, or their connection is dropped without an answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

#: What a failed request gets: an HTTP status, or None for a dropped connection.
Fault = int | None
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class FaultyProxy:
    """Serves on a free port of 127.0.0.1 until :meth:`stop`."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._faults: list[Fault] = []
        self._matches: Callable[[str, str], bool] = lambda method, path: False
        self._lock = threading.Lock()
        #: ``(method, path, fault)`` of every request failed on purpose.
        self.injected: list[tuple[str, str, Fault]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(self, matches: Callable[[str, str], bool], faults: list[Fault]) -> None:
        """Fail the next ``len(faults)`` requests for which ``matches(method, path)``."""
        with self._lock:
            self._matches, self._faults = matches, list(faults)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self, method: str, path: str) -> tuple[bool, Fault]:
        with self._lock:
            if self._faults and self._matches(method, path):
                fault = self._faults.pop(0)
                self.injected.append((method, path, fault))
                return True, fault
        return False, None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                failed, fault = proxy._next_fault(self.command, self.path)
                if failed and fault is None:
                    self.close_connection = True
                    return
                if failed:
                    self.send_response(fault)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = requests.request(
                    self.command,
                    proxy.target + self.path,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=30,
                )
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() in _HOP_BY_HOP or name.lower() == "content-encoding":
                        continue
                    if name.lower() == "location":
                        value = value.replace(proxy.target, proxy.url)
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.content)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _forward

        return Handler
