"""``copy_body`` under real gunicorn: the socket fast path, keep-alive, pipelining, TLS."""

from __future__ import annotations

import ctypes
import hashlib
import json
import mmap
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from threading import Thread

import pytest
import requests

from distribution.api import body
from tests.conftest import free_port, make_certificate
from tests.process import START_TIMEOUT

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


def _serve(tmp_path: Path, *tls: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    args = ["-k", "gthread", "--threads", "4", "-w", "1", "-b", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *args, *tls, "tests.body_app:app"],
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert proc.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
        time.sleep(0.1)
    yield "127.0.0.1", port
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    yield from _serve(tmp_path)


@pytest.fixture
def tls_server(tmp_path: Path, certificate) -> Iterator[tuple[str, int]]:
    cert, key = certificate
    yield from _serve(tmp_path, "--certfile", str(cert), "--keyfile", str(key))


def _request(data: bytes, close: bool = False) -> bytes:
    connection = "Connection: close\r\n" if close else ""
    head = f"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n{connection}\r\n"
    return head.encode() + data


def _responses(conn: socket.socket, count: int) -> list[dict]:
    """Read ``count`` HTTP/1.1 responses with Content-Length bodies from ``conn``."""
    stream = conn.makefile("rb")
    found = []
    for _ in range(count):
        status = stream.readline()
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        found.append({"status": int(status.split()[1]), **json.loads(stream.read(length))})
    return found


@pytest.mark.parametrize("size", [1, 4096, (1 << 20) + 3, 5 << 20])
def test_body_of_known_length_takes_the_socket_path(server, size: int) -> None:
    data = os.urandom(size)
    response = requests.put(f"http://{server[0]}:{server[1]}/", data=data, timeout=30).json()
    assert response == {"sha256": hashlib.sha256(data).hexdigest(), "size": size, "direct": True}


def test_chunked_body_takes_the_stream_path(server) -> None:
    pieces = [os.urandom(100_000) for _ in range(7)]
    response = requests.put(f"http://{server[0]}:{server[1]}/", data=iter(pieces), timeout=30)
    expected = hashlib.sha256(b"".join(pieces)).hexdigest()
    assert response.json() == {"sha256": expected, "size": 700_000, "direct": False}


def test_pipelined_requests_on_one_connection(server) -> None:
    bodies = [os.urandom(n) for n in (300, 2 << 20, 0, 70_000)]
    with socket.create_connection(server, timeout=30) as conn:
        conn.sendall(b"".join(_request(b) for b in bodies))
        answers = _responses(conn, len(bodies))
    assert [a["status"] for a in answers] == [200] * len(bodies)
    assert [a["sha256"] for a in answers] == [hashlib.sha256(b).hexdigest() for b in bodies]


def test_client_gone_mid_body(server) -> None:
    with socket.create_connection(server, timeout=30) as conn:
        conn.sendall(b"PUT / HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n")
        conn.sendall(os.urandom(5000))
        time.sleep(0.2)
        conn.shutdown(socket.SHUT_WR)
        answer = _responses(conn, 1)[0]
    assert answer["status"] == 400
    assert answer["received"] == 5000
    assert requests.put(f"http://{server[0]}:{server[1]}/", data=b"x", timeout=10).ok


@pytest.mark.parametrize("size", [(1 << 20) + 3, 6 << 20])
def test_a_piece_stays_intact_until_the_sink_is_done_with_it(server, size: int) -> None:
    """A sink hashing each piece later, on another thread, while the next piece arrives gets
    every piece intact, and every hash is done when ``copy_body`` returns."""
    data = os.urandom(size)
    response = requests.put(
        f"http://{server[0]}:{server[1]}/", data=data, headers={"X-Hash-Later": "1"}, timeout=30
    ).json()
    assert response["sha256"] == hashlib.sha256(data).hexdigest()
    assert response["direct"] and response["overlapped"]


def test_tls_keep_alive(tls_server, certificate) -> None:
    context = ssl.create_default_context(cafile=str(certificate[0]))
    bodies = [os.urandom(3 << 20), os.urandom(10)]
    raw = socket.create_connection(tls_server, timeout=30)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        for data in bodies:
            conn.sendall(_request(data))
        answers = _responses(conn, 2)
    assert [a["sha256"] for a in answers] == [hashlib.sha256(b).hexdigest() for b in bodies]
    assert all(a["direct"] for a in answers)


def test_an_idle_buffer_holds_one_piece_in_memory() -> None:
    """A body of more than one piece touches both halves; once the buffer is idle the second
    half's pages are freed (``mincore``; in a shared mapping they would stay, in shmem)."""
    body._idle.clear()
    with body._buffer() as view:
        view[:] = b"\x01" * len(view)
    pieces = _resident(view.obj)
    half = len(pieces) // 2
    assert all(pieces[:half]) and not any(pieces[half:])


def _resident(mapped: mmap.mmap) -> list[bool]:
    """Whether each page of ``mapped`` is in memory."""
    found = (ctypes.c_ubyte * (len(mapped) // mmap.PAGESIZE))()
    address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
    mincore = ctypes.CDLL(None, use_errno=True).mincore
    mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert mincore(address, len(mapped), found) == 0, os.strerror(ctypes.get_errno())
    return [bool(flags & 1) for flags in found]


def test_receive_buffers_follow_the_bodies_not_the_threads() -> None:
    """Bodies received at once get their own buffers; afterwards at most ``IDLE_BUFFERS`` stay,
    and a buffer one thread let go serves the next body on any thread."""
    body._idle.clear()
    with ExitStack() as stack:
        views = [stack.enter_context(body._buffer()) for _ in range(4)]
        assert len({id(view.obj) for view in views}) == 4
        assert all(len(view) == 2 * body.CHUNK_SIZE for view in views)
    assert len(body._idle) == body.IDLE_BUFFERS
    kept = {id(view.obj) for view in body._idle}
    taken: list[int] = []

    def receive() -> None:
        with body._buffer() as view:
            taken.append(id(view.obj))

    thread = Thread(target=receive)
    thread.start()
    thread.join()
    assert taken[0] in kept
    assert len(body._idle) == body.IDLE_BUFFERS
