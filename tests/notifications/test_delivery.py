"""One endpoint's delivery: the POST itself, Go's breaker, retrying until accepted."""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from distribution.config import Endpoint as EndpointConfig
from distribution.notifications.delivery import Breaker, DeliveryError, HTTPSender, deliver
from distribution.notifications.dispatcher import endpoint_name
from tests.notifications.receiver import Receiver
from tests.ports import free_port
from tests.tls.pki import Authority

BODY = b'{"events": [{"id": "1"}]}'
BODY_JSON = {"events": [{"id": "1"}]}


def test_breaker_waits_only_after_threshold_failures() -> None:
    breaker = Breaker(threshold=2, backoff=5.0)
    assert breaker.wait(100.0) == 0
    breaker.failure(100.0)
    assert breaker.wait(100.0) == 0
    breaker.failure(101.0)
    assert breaker.wait(102.0) == pytest.approx(4.0)
    assert breaker.wait(107.0) == 0
    breaker.success()
    assert breaker.wait(102.0) == 0


def test_sender_posts_the_envelope_with_headers(receiver: Receiver) -> None:
    sender = HTTPSender(receiver.url + "?key=1", {"X-A": ("1", "2")}, timeout=5)
    assert sender.send(BODY) == 200
    post = receiver.posts[0]
    assert post.path == "/events?key=1"
    assert post.body == {"events": [{"id": "1"}]}
    assert post.header("X-A") == ["1", "2"]


def test_sender_sends_the_urls_user_info_as_basic_auth(receiver: Receiver) -> None:
    """As Go's ``http.Client`` does for ``https://user:password@host/...``: the user info
    (unescaped) becomes a ``Basic`` header before the configured ones, never on a redirect."""
    url = receiver.url.replace("http://", "http://hook:s%40cret@")
    sender = HTTPSender(url, {"Authorization": ("Bearer x",)}, timeout=5)
    assert sender.send(BODY) == 200
    post = receiver.posts.pop()
    assert post.header("Authorization") == ["Basic aG9vazpzQGNyZXQ=", "Bearer x"]
    assert post.header("Host") == [receiver.url.split("/")[2]]
    target = Receiver().start()
    try:
        receiver.status, receiver.location = 307, target.url
        assert sender.send(BODY) == 200
        assert target.posts.pop().header("Authorization") == ["Bearer x"]
    finally:
        target.stop()


def test_a_urls_password_is_never_shown(receiver: Receiver) -> None:
    """Not in an error, nor in the name an unnamed endpoint goes by (logs, metrics, queue)."""
    url = receiver.url.replace("http://", "http://hook:s3cret@")
    receiver.status = 500
    with pytest.raises(DeliveryError) as refused:
        HTTPSender(url, {}, timeout=5).send(BODY)
    assert "s3cret" not in str(refused.value) and "hook:xxxxx@" in str(refused.value)
    down = f"http://hook:s3cret@127.0.0.1:{free_port()}/events"
    with pytest.raises(DeliveryError) as unreachable:
        HTTPSender(down, {}, timeout=5).send(BODY)
    assert "s3cret" not in str(unreachable.value)
    assert endpoint_name(EndpointConfig(url=url)) == url.replace("s3cret", "xxxxx")
    assert endpoint_name(EndpointConfig(name="hook", url=url)) == "hook"


def test_sender_goes_through_the_environments_proxy_as_gos_client(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Go posts through ``http.DefaultTransport``, which takes ``HTTP_PROXY``/``HTTPS_PROXY``
    and ``NO_PROXY`` (names and CIDRs) from the environment and never proxies loopback."""
    seen: list[tuple[str, str, str | None]] = []

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # a plain-HTTP request, its target an absolute URL
            seen.append((self.command, self.path, self.headers.get("Proxy-Authorization")))
            body = self.rfile.read(int(self.headers["Content-Length"]))
            forward = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
            forward.request("POST", urlsplit(self.path).path, body, dict(self.headers))
            status = forward.getresponse().status
            forward.close()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_CONNECT(self) -> None:  # an HTTPS tunnel: refused here, once asked for
            seen.append((self.command, self.path, self.headers.get("Proxy-Authorization")))
            self.send_response(403)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    proxy = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        address = f"proxy:secret@127.0.0.1:{proxy.server_port}"
        monkeypatch.setenv("HTTP_PROXY", f"http://{address}")
        monkeypatch.setenv("HTTPS_PROXY", address)  # no scheme: http://, as in Go
        monkeypatch.setenv("NO_PROXY", "internal.invalid,192.0.2.0/24")
        credentials = "Basic cHJveHk6c2VjcmV0"
        assert HTTPSender("http://hooks.invalid/events", {}, timeout=5).send(BODY) == 200
        assert seen.pop() == ("POST", "http://hooks.invalid/events", credentials)
        assert receiver.posts.pop().body == BODY_JSON
        with pytest.raises(DeliveryError):
            HTTPSender("https://hooks.invalid/events", {}, timeout=5).send(BODY)
        assert seen.pop() == ("CONNECT", "hooks.invalid:443", credentials)
        for direct in (receiver.url, "http://internal.invalid/", "http://192.0.2.1:9/"):
            with contextlib.suppress(DeliveryError):
                HTTPSender(direct, {}, timeout=0.5).send(BODY)
        assert seen == []
        assert receiver.posts.pop().body == BODY_JSON  # loopback: straight to the endpoint
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_an_https_sender_loads_the_trusted_cas_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the system's CAs costs tens of milliseconds of CPU: done for every event, it
    capped an HTTPS endpoint at a few dozen events a second per worker. Go keeps one TLS
    configuration per endpoint; so does the sender."""
    authority = Authority.root("Hook CA")
    cert, key = authority.issue("hook", tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(authority.write_ca(tmp_path / "ca.crt")))
    contexts: list[ssl.SSLContext] = []

    def counted(*args: object, **kwargs: object) -> ssl.SSLContext:
        contexts.append(create_default_context(*args, **kwargs))
        return contexts[-1]

    create_default_context = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", counted)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    receiver = Receiver(tls=server).start()
    try:
        sender = HTTPSender(receiver.url, {}, timeout=5)
        assert [sender.send(BODY) for _ in range(3)] == [200] * 3
        assert len(receiver.posts) == 3
        assert len(contexts) == 1
    finally:
        receiver.stop()


def test_sender_fails_on_error_status_and_refused_connection(receiver: Receiver) -> None:
    sender = HTTPSender(receiver.url, {}, timeout=5)
    receiver.status = 500
    with pytest.raises(DeliveryError, match="500"):
        sender.send(BODY)
    receiver.status = 302
    assert sender.send(BODY) == 302  # 3xx without a Location is accepted, as in Go
    receiver.stop()
    with pytest.raises(DeliveryError, match="error posting"):
        sender.send(BODY)


def test_sender_follows_redirects_as_gos_client(receiver: Receiver) -> None:
    target = Receiver().start()
    try:
        sender = HTTPSender(receiver.url, {"X-A": ("1",)}, timeout=5)
        receiver.location = target.url + "?moved=1"
        for status in (307, 308):  # the POST is repeated there, body and headers
            receiver.status = status
            assert sender.send(BODY) == 200
            post = target.posts.pop()
            assert (post.method, post.path, post.body) == ("POST", "/events?moved=1", BODY_JSON)
            assert post.header("X-A") == ["1"]
        for status in (301, 302, 303):  # the POST becomes a GET, as Go's client does
            receiver.status = status
            assert sender.send(BODY) == 200
            post = target.posts.pop()
            assert (post.method, post.body, post.header("X-A")) == ("GET", {}, ["1"])
        receiver.status = 307
        target.status = 500
        with pytest.raises(DeliveryError, match="500"):
            sender.send(BODY)
        receiver.location = receiver.url  # round and round
        with pytest.raises(DeliveryError, match="10 redirects"):
            sender.send(BODY)
        receiver.location = "ftp://elsewhere/"
        with pytest.raises(DeliveryError, match="redirected"):
            sender.send(BODY)
    finally:
        target.stop()


class RawEndpoint:
    """A listening socket whose one connection reads the request and then answers with
    ``answer`` (bytes written one at a time, ``pause`` seconds apart), then holds it open."""

    def __init__(self, answer: bytes, pause: float = 0.0) -> None:
        self.answer, self.pause = answer, pause
        self.done = threading.Event()  # the whole answer went out
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/events"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        connection, _ = self._listener.accept()
        with connection, contextlib.suppress(OSError):
            connection.settimeout(30)
            request = b""
            while not request.endswith(BODY):
                piece = connection.recv(65536)
                if not piece:
                    return  # the sender went away before its request was whole
                request += piece
            pieces = [self.answer[i : i + 1] for i in range(len(self.answer))]
            for piece in pieces if self.pause else [self.answer]:
                connection.sendall(piece)
                time.sleep(self.pause)
            self.done.set()
            connection.recv(1)  # until the sender closes

    def close(self) -> None:
        self._listener.close()
        self._thread.join(30)


def test_the_timeout_bounds_the_whole_attempt_as_gos_client() -> None:
    """An endpoint answering a byte every half second never lets a read wait the whole
    timeout: each socket read would succeed, for as long as the endpoint likes. Go's
    ``Client.Timeout`` bounds the whole exchange; so does the sender."""
    answer = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 40 + b"\r\n\r\n"
    sender = HTTPSender("http://127.0.0.1/", {}, timeout=1)
    for _ in range(2):  # the watchdog's thread serves one attempt after another
        endpoint = RawEndpoint(answer, 0.5)
        sender.url = endpoint.url
        try:
            with pytest.raises(DeliveryError, match=r"no answer within the timeout \(1s\)"):
                sender.send(BODY)
            assert not endpoint.done.is_set()  # cut off mid-answer, not at its end
        finally:
            endpoint.close()


def test_a_forked_sender_watches_its_own_attempts() -> None:
    """A sender used before a fork (its watchdog's thread left behind in the parent) still
    cuts off a slow endpoint in the child, as a worker forked from gunicorn's master must."""
    sender = HTTPSender("http://127.0.0.1/", {}, timeout=1)
    endpoint = RawEndpoint(b"HTTP/1.1 204 No Content\r\n\r\n")
    sender.url = endpoint.url
    assert sender.send(BODY) == 204
    endpoint.close()
    endpoint = RawEndpoint(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 40 + b"\r\n\r\n", 0.5)
    sender.url = endpoint.url
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        try:
            sender.send(BODY)
        except DeliveryError as err:
            os._exit(0 if "no answer within the timeout" in str(err) else 2)
        os._exit(1)
    try:
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert not endpoint.done.is_set()
    finally:
        endpoint.close()


def test_the_answers_body_is_not_read() -> None:
    """Go closes the answer unread: an endpoint announcing a large body and sending none (or
    a huge one) costs the sender neither the wait nor the memory."""
    endpoint = RawEndpoint(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
    try:
        assert HTTPSender(endpoint.url, {}, timeout=5).send(BODY) == 200
    finally:
        endpoint.close()


def test_sender_turns_any_failure_into_a_delivery_error(receiver: Receiver) -> None:
    """A header value checked at start-up can still not reach a thread crash."""
    sender = HTTPSender(receiver.url, {}, timeout=5)
    sender.headers = {"X-A": ("\u2615",)}
    with pytest.raises(DeliveryError):
        sender.send(BODY)


def test_deliver_retries_until_the_endpoint_is_back(receiver: Receiver) -> None:
    receiver.stop()
    sender = HTTPSender(receiver.url, {}, timeout=5)
    breaker = Breaker(threshold=3, backoff=0.2)
    beats: list[float] = []
    result: list[bool] = []
    stopping = threading.Event()
    thread = threading.Thread(
        target=lambda: result.append(
            deliver(BODY, sender.send, breaker, stopping, "test", lambda: beats.append(1), 0.1)
        )
    )
    thread.start()
    deadline = time.monotonic() + 30
    while breaker.recent < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert breaker.recent >= 5 and beats
    receiver.start()
    thread.join(30)
    assert result == [True]
    assert len(receiver.posts) == 1
    assert breaker.recent == 0


def test_deliver_gives_up_only_when_stopping(receiver: Receiver) -> None:
    receiver.status = 503
    stopping = threading.Event()
    breaker = Breaker(threshold=1, backoff=60)
    sender = HTTPSender(receiver.url, {}, timeout=5)
    timer = threading.Timer(0.3, stopping.set)
    timer.start()
    assert deliver(BODY, sender.send, breaker, stopping, "test") is False
    assert breaker.recent == 1
