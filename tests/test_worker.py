"""The worker: stalled or trickling clients hold no thread and are closed after a timeout.

Each test runs ``registry serve`` with few threads (2 workers x 2) and short timeouts, opens
many connections that stall at different points, and checks that other clients are still
answered and that every stalled connection is closed. gunicorn's gthread worker fails the
first of these: a thread per stalled connection, for ever.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import json
import logging
import os
import signal
import socket
import ssl
import struct
import threading
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import bcrypt
import pytest
import requests
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from distribution.worker import (
    COALESCE_MAX,
    CoalescingResponse,
    ElasticPool,
    HTTPParser,
    RegistryWorker,
    hold_stop_signals,
    http_date,
    settle,
)
from tests.conftest import make_certificate

#: Timeouts the registry runs with here, in seconds.
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
IDLE_TIMEOUT = 2
#: How long a test waits for an answer that a starved server would never give.
ANSWER_WITHIN = 5.0

CONFIG = f"""
version: 0.1
log: {{level: info, accesslog: {{disabled: true}}}}
storage: {{filesystem: {{rootdirectory: data}}}}
http:
  secret: test-secret
  threads: 2
  timeouts: {{header: {HEADER_TIMEOUT}s, body: {BODY_TIMEOUT}s, idle: {IDLE_TIMEOUT}s}}
"""

USER, PASSWORD = "alice", "secret"


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.split("://")[1].split(":")
    return host, int(port)


def _connect(url: str) -> socket.socket:
    return socket.create_connection(_host_port(url), timeout=10)


def _answered(url: str, **kwargs) -> requests.Response:
    """``GET /v2/`` on a fresh connection, which a starved server would not answer in time."""
    return requests.get(f"{url}/v2/", timeout=ANSWER_WITHIN, **kwargs)


def _answer_to(url: str, head: bytes) -> bytes:
    """All the server sends for ``head`` on a new connection, which it must then close."""
    with _connect(url) as sock:
        sock.sendall(head)
        return _closed_within(sock, 5)


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing ``sock``; fails if it is still open after
    ``seconds``."""
    sock.settimeout(seconds)
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            break
        if not data:
            return received
        received += data
    raise AssertionError(f"connection still open after {seconds} s (got {received[:80]!r})")


def _stall_heads(url: str, count: int) -> list[socket.socket]:
    """``count`` connections stopped at different points of a request head."""
    partials = [b"G", b"GET /v2/ HTTP/1.1\r\n", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAccept: "]
    stalled = []
    for i in range(count):
        sock = _connect(url)
        sock.sendall(partials[i % len(partials)])
        stalled.append(sock)
    return stalled


@pytest.fixture
def registry(start_registry):
    return start_registry(CONFIG)


def test_stalled_heads_hold_no_thread_and_are_closed(registry) -> None:
    stalled = _stall_heads(registry.url, 60)
    silent = [_connect(registry.url) for _ in range(20)]  # connected, nothing sent

    for _ in range(5):
        assert _answered(registry.url).status_code == 200

    for sock in stalled + silent:
        assert _closed_within(sock, HEADER_TIMEOUT + 3) == b""
        sock.close()


def test_a_trickling_head_is_closed_at_its_deadline(registry) -> None:
    """A header line now and then does not keep a head alive: the deadline is for all of it."""
    sock = _connect(registry.url)
    sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
    started, closed = time.monotonic(), False
    while not closed and time.monotonic() - started < HEADER_TIMEOUT + 3:
        time.sleep(0.2)
        try:
            sock.sendall(b"X-Trickle: a\r\n")
            closed = sock.recv(1, socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed = True
    sock.close()
    assert closed, "a trickling head kept its connection past the header timeout"


def test_stalled_bodies_do_not_starve_other_requests(start_registry, tmp_path: Path) -> None:
    """Authenticated uploads that stop mid-body each hold a thread, but the pool grows past
    ``http.threads``; each is closed after the body timeout, and its upload stays resumable
    at what arrived."""
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(
        USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)) + b"\n"
    )
    config = CONFIG + f"auth:\n  htpasswd: {{realm: test, path: {htpasswd}}}\n"
    registry = start_registry(config)
    auth = (USER, PASSWORD)
    credentials = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    stalled = []
    for _i in range(12):
        started = requests.post(f"{registry.url}/v2/stall/blobs/uploads/", auth=auth, timeout=10)
        assert started.status_code == 202
        location = started.headers["Location"].split("://")[1].split("/", 1)[1]
        sock = _connect(registry.url)
        sock.sendall(
            f"PATCH /{location} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n".encode()
            + b"x" * 1000
        )
        stalled.append((sock, started.headers["Docker-Upload-UUID"]))

    for _ in range(5):
        assert _answered(registry.url, auth=auth).status_code == 200

    for sock, upload in stalled:
        _closed_within(sock, BODY_TIMEOUT + 5)
        sock.close()
        status = requests.get(f"{registry.url}/v2/stall/blobs/uploads/{upload}", auth=auth)
        assert status.status_code == 204
        assert status.headers["Range"] == "0-999"


def test_stalled_tls_handshakes_hold_no_thread(start_registry, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    env = {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(key)}
    registry = start_registry(CONFIG, env=env, scheme="https", verify=str(cert))

    silent = [_connect(registry.url) for _ in range(20)]
    half_hello = []
    for _ in range(20):
        sock = _connect(registry.url)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start
        half_hello.append(sock)
    context = ssl.create_default_context(cafile=str(cert))
    half_head = []
    for _ in range(20):
        sock = context.wrap_socket(_connect(registry.url), server_hostname="127.0.0.1")
        sock.sendall(b"GET /v2/ HTTP/1.1\r\n")
        half_head.append(sock)

    for _ in range(5):
        assert _answered(registry.url, verify=str(cert)).status_code == 200

    for sock in silent + half_hello + half_head:
        _closed_within(sock, HEADER_TIMEOUT + 3)
        sock.close()


def test_plain_http_on_the_tls_port_gets_gos_answer(start_registry, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    env = {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(key)}
    registry = start_registry(CONFIG, env=env, scheme="https", verify=str(cert))

    with _connect(registry.url) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = _closed_within(sock, 5)

    assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert answer.endswith(b"Client sent an HTTP request to an HTTPS server.\n")


def test_a_tls_handshake_on_the_plain_port_is_answered_at_once(start_registry) -> None:
    """docker and skopeo try HTTPS first on an insecure registry: they must learn at once
    that it speaks HTTP, not after their handshake timeout (10 s) or ours (here 60 s)."""
    config = CONFIG.replace(f"header: {HEADER_TIMEOUT}s", "header: 60s")
    assert config != CONFIG
    registry = start_registry(config)
    hello = ssl.MemoryBIO()
    client = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), hello)
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()

    with _connect(registry.url) as sock:
        sock.sendall(hello.read())
        answer = _closed_within(sock, 5)

    assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert answer.endswith(b"Client sent an HTTPS request to an HTTP server.\n")
    assert _answered(registry.url).status_code == 200


def test_a_head_too_large_is_refused(registry) -> None:
    with _connect(registry.url) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        try:
            for _ in range(48):  # 1.5 MiB of headers
                sock.sendall(b"X-Big: " + b"a" * 32768 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: the answer may be lost, not the close
        answer = _closed_within(sock, 5)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert _answered(registry.url).status_code == 200


def test_keepalive_pipelining_and_idle_close(registry) -> None:
    with _connect(registry.url) as sock:
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n" * 2)  # two requests in one send
        assert _statuses(sock, 2) == [200, 200]
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")  # a third on the same connection
        assert _statuses(sock, 1) == [200]
        assert _closed_within(sock, IDLE_TIMEOUT + 3) == b""


def _statuses(sock: socket.socket, count: int) -> list[int]:
    """The statuses of the next ``count`` answers on ``sock`` (each with a Content-Length)."""
    reader = sock.makefile("rb")
    statuses = []
    for _ in range(count):
        statuses.append(int(reader.readline().split()[1]))
        length = 0
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        reader.read(length)
    return statuses


def test_a_head_split_across_sends_is_served(registry) -> None:
    with _connect(registry.url) as sock:
        for piece in (b"GET /v2/ HT", b"TP/1.1\r\nHost: x\r", b"\n\r\n"):
            sock.sendall(piece)
            time.sleep(0.05)
        assert _statuses(sock, 1) == [200]


def test_the_pool_grows_while_busy_and_shrinks_when_idle() -> None:
    pool = ElasticPool(core=2, limit=8, idle=0.2)
    release = threading.Event()
    running = threading.Semaphore(0)

    def call() -> None:
        running.release()
        release.wait(10)

    for _ in range(6):
        pool.submit(call)
    for _ in range(6):  # all six run at once, though only two threads are kept
        assert running.acquire(timeout=5)
    assert pool.threads == 6
    release.set()

    deadline = time.monotonic() + 5
    while pool.threads > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.threads == 2
    pool.shutdown()


def test_the_pool_queues_past_its_limit() -> None:
    pool = ElasticPool(core=1, limit=2, idle=0.2)
    release = threading.Event()
    done = threading.Semaphore(0)

    def call() -> None:
        release.wait(10)
        done.release()

    for _ in range(4):
        pool.submit(call)
    assert pool.threads == 2
    release.set()
    for _ in range(4):
        assert done.acquire(timeout=5)
    pool.shutdown()


def test_a_reset_right_after_an_answer_costs_no_thread(registry) -> None:
    """A client that resets its connection just after reading an answer (while the thread
    that answered waits for the next request) must not end that thread with a traceback."""
    linger = struct.pack("ii", 1, 0)  # close with a reset
    for _ in range(20):
        sock = _connect(registry.url)
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _statuses(sock, 1) == [200]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        sock.close()
    for _ in range(5):
        assert _answered(registry.url).status_code == 200
    registry.stop()
    assert "Traceback" not in registry.log, registry.log


def test_a_stop_signal_while_a_worker_boots_arrives_once_it_handles_it() -> None:
    """A SIGTERM between fork and the worker's own handlers (the arbiter's, copied by fork,
    would swallow it) is held back and delivered to the worker's handler."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the booting worker
        try:
            signal.signal(signal.SIGTERM, lambda *_: None)  # the arbiter's handler
            hold_stop_signals(True)
            os.kill(os.getpid(), signal.SIGTERM)
            signal.signal(signal.SIGTERM, lambda *_: os.write(write, b"stop"))  # init_signals
            hold_stop_signals(False)
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as received:
        assert received.read() == b"stop"


@pytest.mark.parametrize(
    ("method", "body", "records"),
    [
        ("GET", b"{}", 1),  # head and body in one send
        ("HEAD", b"", 1),  # the head alone
        ("GET", b"x" * (COALESCE_MAX + 1), 2),  # a large body goes on its own
    ],
)
def test_the_head_goes_out_with_a_small_body(method: str, body: bytes, records: int) -> None:
    """Counted on a packet socket, which keeps each ``send`` a record of its own."""
    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with server, client:
        client.sendall(f"{method} /v2/ HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        request = next(RequestParser(Config(), server, ("127.0.0.1", 1)))
        response = CoalescingResponse(request, server, Config())
        response.start_response("200 OK", [("Content-Length", str(len(body)))])
        response.write(body)
        response.close()
        client.settimeout(0.5)
        sent = []
        with contextlib.suppress(TimeoutError):
            while record := client.recv(1 << 20):
                sent.append(record)
    assert len(sent) == records
    head, _, rest = b"".join(sent).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: " in head
    assert rest == (b"" if method == "HEAD" else body)


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Content-Type", "application/json"), ("Content-Length", " 2 ")],
        [("Docker-Content-Digest", "sha256:" + "0" * 64), ("ETag", '"x"'), ("X-A", "")],
        [("X-Latin", "caf\xe9"), ("X-Tab", "\ta b\t"), ("Link", "</v2/a>; rel=next")],
        [("Connection", "Upgrade"), ("Upgrade", "websocket"), ("Keep-Alive", "5")],
        [("Connection", "close"), ("Upgrade", "h2c"), ("Server", "x"), ("Date", "y")],
        [("Transfer-Encoding", "chunked"), ("TE", "trailers"), ("X-B", "1")],
        [("X-Split", "a\r\nSet-Cookie: b")],
        [("X-A", "1"), ("X-Split", "a\nb")],
        [("X-A", "1\n"), ("X-B", "2")],
        [("Bad Name", "1")],
        [("X-A\nX-B", "1")],
        [("", "1")],
        [("X-Nul", "a\x00b")],
        [("X-Del", "a\x7fb")],
        [("X-Wide", "\u0100")],
        [(b"X-Bytes", "1")],
        [("X-Bytes", b"1")],
        [("Content-Length", "x")],
    ],
)
def test_response_headers_are_checked_and_kept_as_gunicorn_does(headers: list) -> None:
    """Ours checks all names, and all values, in one match each; the outcome is gunicorn's."""

    def outcome(response_class: type) -> tuple:
        request = next(RequestParser(Config(), iter([b"GET / HTTP/1.1\r\n\r\n"]), None))
        response = response_class(request, None, Config())
        try:
            response.process_headers(headers)
        except Exception as err:  # the refusal's kind and message must match
            return type(err), str(err)
        return response.headers, response.response_length, response.upgrade

    assert outcome(CoalescingResponse) == outcome(wsgi.Response)


def test_the_date_header_is_formatted_once_a_second_and_stays_current() -> None:
    """gunicorn formats ``Date`` for every answer; ours keeps it for the second it names."""
    first = http_date()
    assert http_date() is first  # the same second, the same string
    assert abs(parsedate_to_datetime(first).timestamp() - time.time()) < 2
    time.sleep(1.05)
    later = http_date()
    assert parsedate_to_datetime(later) > parsedate_to_datetime(first)
    assert email.utils.formatdate(parsedate_to_datetime(later).timestamp(), usegmt=True) == later


def test_a_workers_settings_are_plain_attributes_with_gunicorns_values() -> None:
    config = Config()
    config.set("keepalive", 7)
    expected = {name: getattr(config, name) for name in config.settings}
    settle(config)
    assert {name: getattr(config, name) for name in config.settings} == expected
    assert vars(config)["keepalive"] == 7  # found without gunicorn's __getattr__
    assert "worker_class" not in vars(config)  # a property of gunicorn's stays one


def test_a_request_after_a_bodiless_one_costs_no_socket_timeout_calls() -> None:
    """gunicorn's parser sets the socket's timeout back after draining the last request's
    body, a system call before each request. Ours skips that when the body is already read
    (a GET's), and still drains one left unread."""

    class Counted(socket.socket):
        settimeouts = 0

        def settimeout(self, value: float | None) -> None:
            Counted.settimeouts += 1
            super().settimeout(value)

    near, far = socket.socketpair()
    server = Counted(fileno=near.detach())
    with server, far:
        far.sendall(
            b"GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET /v2/ HTTP/1.1\r\nHost: a\r\n\r\n"
            b"PUT /v2/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
            b"GET /v2/last HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        parser = HTTPParser(Config(), server, ("127.0.0.1", 1))
        assert [next(parser).path for _ in range(3)] == ["/v2/", "/v2/", "/v2/x"]
        assert Counted.settimeouts == 0
        assert next(parser).path == "/v2/last"  # the PUT's unread body was drained
        assert Counted.settimeouts > 0


@pytest.mark.parametrize(
    "request_head, status",
    [
        (b"GET /v2/ HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", b"400 Bad Request"),
        (b"G(T /v2/ HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request"),
        (b"GET /v2/ HTTP/9.1\r\nHost: x\r\n\r\n", b"400 Bad Request"),
        (
            b"PUT /v2/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: br, chunked\r\n\r\n",
            b"501 Not Implemented",
        ),
        (
            b"PATCH /v2/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"501 Not Implemented",
        ),
        (
            b"PATCH /v2/x HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"501 Not Implemented",
        ),
        (
            b"PATCH /v2/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
            b"501 Not Implemented",
        ),
        (
            b"POST /v2/x/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 9223372036854775808\r\n\r\n",
            b"400 Bad Request",
        ),
        (b"GET /v2/ HTTP/1.1\r\n\r\n", b"400 Bad Request"),
        (b"GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n", b"400 Bad Request"),
        (b"PUT /v2/x/manifests/t HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", b"400 Bad Request"),
    ],
    ids=[
        "header",
        "method",
        "version",
        "transfer-encoding",
        "coded",
        "two-codings",
        "identity",
        "length-past-63-bits",
        "no-host",
        "malformed-host",
        "no-host-with-a-body",
    ],
)
def test_a_request_that_cannot_be_parsed_gets_plain_text_as_from_go(
    registry, request_head: bytes, status: bytes
) -> None:
    head, _, body = _answer_to(registry.url, request_head).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b"\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
    assert body.startswith(status + b": ") and b"<" not in body
    assert f"\r\nContent-Length: {len(body)}\r\n".encode() in head
    assert _answered(registry.url).status_code == 200


@pytest.mark.parametrize(
    "request_head,message",
    [
        (b"GET /v2/ HTTP/1.1\r\n\r\n", b"missing required Host header"),
        (b"HEAD /v2/ HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n", b"malformed Host header"),
        (b"GET /v2/ HTTP/1.0\r\nHost: a/b\r\n\r\n", b"malformed Host header"),
    ],
)
def test_a_missing_or_malformed_host_is_refused_with_gos_words(
    registry, request_head: bytes, message: bytes
) -> None:
    """RFC 9112 3.2, as Go 2.8.2 answers; an HTTP/1.0 request may come without ``Host``."""
    answer = _answer_to(registry.url, request_head)
    assert answer.startswith(b"HTTP/1.1 400 ") and answer.endswith(b"400 Bad Request: " + message)
    assert _answer_to(registry.url, b"GET /v2/ HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.0 200 ")


def test_a_later_http1_minor_version_is_answered_in_http_1_1(registry) -> None:
    answer = _answer_to(registry.url, b"GET /v2/ HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_chunk_size_past_64_bits_is_refused_at_once(registry) -> None:
    """Go: "http chunk length too large". Not a body waited for until the body timeout."""
    started = time.monotonic()
    with _connect(registry.url) as sock:
        sock.sendall(
            b"PUT /v2/x/manifests/t HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            b"10000000000000000\r\n{}\r\n0\r\n\r\n"
        )
        answer = _closed_within(sock, 5)
    assert time.monotonic() - started < BODY_TIMEOUT / 2
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b'"SIZE_INVALID"' in answer


def test_a_long_request_line_is_taken_as_go_takes_it(registry) -> None:
    """Go bounds the head as a whole (1 MiB), not the request line on its own."""
    answer = requests.get(f"{registry.url}/v2/_catalog", params={"last": "a" * 20000}, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"repositories": []}


def test_an_error_that_escaped_the_app_is_an_oci_error() -> None:
    class Worker:
        log = logging.getLogger("test-worker")

    near, far = socket.socketpair()
    with near, far:
        RegistryWorker.handle_error(Worker(), None, near, ("", -1), RuntimeError("bug"))  # type: ignore[arg-type]
        near.close()
        answer = far.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in head
    assert json.loads(body) == {"errors": [{"code": "UNKNOWN", "message": "unknown error"}]}
