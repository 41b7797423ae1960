"""An HTTP proxy in front of an emulator that fails chosen requests, to prove retries.

It forwards everything to the emulator (rewriting ``Location`` so upload sessions also come
back through it), except the next requests matching a test's rule: those are answered with a
chosen status, or their connection is dropped without an answer. :meth:`FaultyProxy.shorten`
instead forwards only the first half of the next GCS chunk uploads, as GCS does when it
persists less than it was sent (its 308 answer then says how much it holds).
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

#: What a failed request gets: an HTTP status, or None for a dropped connection.
Fault = int | None
#: GCS persists resumable uploads in multiples of this.
GCS_QUANTUM = 256 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}


class FaultyProxy:
    """Serves on a free port of 127.0.0.1 until :meth:`stop`."""

    def __init__(self, target: str, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: serve HTTPS with this server context instead of plain HTTP."""
        self.target = target.rstrip("/")
        self._faults: list[Fault] = []
        self._matches: Callable[[str, str], bool] = lambda method, path: False
        self._lock = threading.Lock()
        #: ``(method, path, fault)`` of every request failed on purpose.
        self.injected: list[tuple[str, str, Fault]] = []
        self._shorten = 0
        #: ``(bytes sent, bytes forwarded)`` of every chunk shortened on purpose.
        self.shortened: list[tuple[int, int]] = []
        #: The ``User-Agent`` of every request forwarded.
        self.user_agents: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(self, matches: Callable[[str, str], bool], faults: list[Fault]) -> None:
        """Fail the next ``len(faults)`` requests for which ``matches(method, path)``."""
        with self._lock:
            self._matches, self._faults = matches, list(faults)

    def shorten(self, count: int) -> None:
        """Forward only the first half (in 256 KiB units) of the next ``count`` chunk PUTs."""
        with self._lock:
            self._shorten = count

    def _shortened(self, headers: dict[str, str], body: bytes) -> bytes:
        """``body`` cut down, and ``headers`` rewritten to match, if a shortening is due."""
        found = re.fullmatch(r"bytes (\d+)-(\d+)/\*", headers.get("Content-Range", ""))
        keep = len(body) // 2 // GCS_QUANTUM * GCS_QUANTUM
        with self._lock:
            if not (self._shorten and found and keep):
                return body
            self._shorten -= 1
            self.shortened.append((len(body), keep))
        start = int(found.group(1))
        headers["Content-Range"] = f"bytes {start}-{start + keep - 1}/*"
        return body[:keep]

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
                proxy.user_agents.append(self.headers.get("User-Agent", ""))
                failed, fault = proxy._next_fault(self.command, self.path)
                if failed and fault is None:
                    self.close_connection = True
                    return
                if failed:
                    self.send_response(fault)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                if self.command == "PUT":
                    body = proxy._shortened(headers, body)
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
