"""Blobs and uploads through ``registry serve``: real gunicorn, two workers, real sockets.

Which worker handled a request is read from the workers' ``/proc/<pid>/io`` counters: a PATCH
adds its body to the ``wchar`` of the worker that wrote it to disk.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import socket
import struct
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from distribution.uploadstate import unpack
from tests.conftest import RegistryProcess

MiB = 1 << 20
SECRET = "process-test-secret"
#: An upload id no test starts.
NEVER_STARTED = "0b8f9d52-58a1-4f4a-8d6e-7a5e3c1e0d11"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def workers(registry: RegistryProcess, count: int = 2) -> list[int]:
    """The pids of the registry's gunicorn workers, once ``count`` of them run."""
    deadline = time.monotonic() + 10
    while True:
        found = sorted(
            int(pid)
            for pid in os.listdir("/proc")
            if pid.isdigit() and _parent(int(pid)) == registry.proc.pid
        )
        if len(found) >= count or time.monotonic() > deadline:
            assert len(found) == count, found
            return found
        time.sleep(0.05)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_field(pid: int, name: str, filename: str = "io") -> int:
    with open(f"/proc/{pid}/{filename}") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == name:
                return int(value.split()[0])
    raise KeyError(name)


def wchar(pids: list[int]) -> dict[int, int]:
    return {pid: proc_field(pid, "wchar") for pid in pids}


@pytest.fixture
def registry(start_registry: Callable[..., RegistryProcess], tmp_path: Path) -> RegistryProcess:
    return start_registry(env=_env(tmp_path / "root"))


def _env(root: Path) -> dict[str, str]:
    return {
        "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(root),
        "REGISTRY_HTTP_SECRET": SECRET,
        "REGISTRY_LOG_LEVEL": "debug",
        "REGISTRY_LOG_ACCESSLOG_DISABLED": "true",
    }


def start(registry: RegistryProcess, name: str = "a/b") -> str:
    response = requests.post(f"{registry.url}/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def blobs_stored(root: Path) -> list[Path]:
    return sorted((root / "docker/registry/v2/blobs").rglob("data"))


def test_large_get_and_range(registry: RegistryProcess, tmp_path: Path) -> None:
    data = random.Random(1).randbytes(8 * MiB + 123)
    digest = digest_of(data)
    pushed = requests.post(f"{registry.url}/v2/a/b/blobs/uploads/?digest={digest}", data=data)
    assert pushed.status_code == 201, pushed.text
    url = f"{registry.url}/v2/a/b/blobs/{digest}"
    for headers, status, expected in [
        ({}, 200, data),
        ({"Range": "bytes=1000000-3999999"}, 206, data[1_000_000:4_000_000]),
    ]:
        response = requests.get(url, headers=headers)
        assert response.status_code == status
        assert response.content == expected
        assert response.headers["Content-Length"] == str(len(expected))
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["ETag"] == f'"{digest}"'
        assert response.headers["Content-Type"] == "application/octet-stream"
        if status == 206:
            assert response.headers["Content-Range"] == f"bytes 1000000-3999999/{len(data)}"
    head = requests.head(url)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(len(data))


def patch(
    session: requests.Session, location: str, chunk: bytes, pids: list[int]
) -> tuple[int, requests.Response]:
    """PATCH ``chunk``; answer the worker that wrote it, and the response."""
    before = wchar(pids)
    response = session.patch(location, data=chunk)
    assert response.status_code == 202, response.text
    after = wchar(pids)
    (pid,) = [pid for pid in pids if after[pid] - before[pid] >= len(chunk)]
    return pid, response


def session_per_worker(registry: RegistryProcess, pids: list[int]) -> dict[int, requests.Session]:
    """A keep-alive session on each worker: a connection stays with the worker that accepted it."""
    pinned: dict[int, requests.Session] = {}
    for _ in range(40):
        session = requests.Session()
        pid, _ = patch(session, start(registry), bytes(MiB), pids)
        if pinned.setdefault(pid, session) is not session:
            session.close()
        if len(pinned) == len(pids):
            return pinned
    raise AssertionError(f"40 connections all went to worker(s) {sorted(pinned)}")


def test_chunked_upload_whose_patches_land_on_different_workers(
    registry: RegistryProcess,
) -> None:
    """PATCHes alternate between the workers; each continues the hash the last one saved, so
    commit needs no re-hash."""
    pids = workers(registry)
    pinned = session_per_worker(registry, pids)
    rng = random.Random(2)
    for _ in range(3):
        location, data = start(registry), b""
        for pid in (pids[0], pids[1], pids[0]):
            chunk = rng.randbytes(MiB + rng.randrange(1000))
            served, response = patch(pinned[pid], location, chunk, pids)
            assert served == pid
            location, data = response.headers["Location"], data + chunk
            assert response.headers["Range"] == f"0-{len(data) - 1}"
        digest = digest_of(data)
        done = pinned[pids[1]].put(f"{location}&digest={digest}")
        assert done.status_code == 201, done.text
        assert requests.get(f"{registry.url}/v2/a/b/blobs/{digest}").content == data
    assert "re-hashing" not in registry.stderr


@pytest.mark.parametrize("saved_hash", ["kept", "lost"])
def test_upload_resumes_after_a_restart(
    start_registry: Callable[..., RegistryProcess], tmp_path: Path, saved_hash: str
) -> None:
    """The restarted registry continues the saved hash; without it, commit re-hashes."""
    root = tmp_path / "root"
    first = start_registry(env=_env(root))
    data = random.Random(3).randbytes(3 * MiB)
    patched = requests.patch(start(first), data=data[: 2 * MiB])
    assert patched.status_code == 202
    location = urlsplit(patched.headers["Location"])
    first.stop()
    if saved_hash == "lost":
        (state,) = root.glob("docker/registry/v2/repositories/a/b/_uploads/*/sha256states/*")
        state.unlink()
    second = start_registry(env=_env(root))
    resumed = requests.patch(f"{second.url}{location.path}?{location.query}", data=data[2 * MiB :])
    assert resumed.status_code == 202, resumed.text
    done = requests.put(f"{resumed.headers['Location']}&digest={digest_of(data)}")
    assert done.status_code == 201, done.text
    assert ("no live hash, re-hashing" in second.stderr) == (saved_hash == "lost")
    assert requests.get(f"{second.url}/v2/a/b/blobs/{digest_of(data)}").content == data


def test_transfer_encoding_chunked_patch(registry: RegistryProcess) -> None:
    data = random.Random(4).randbytes(3 * MiB + 17)

    def body() -> Iterator[bytes]:
        for offset in range(0, len(data), 64 * 1024):
            yield data[offset : offset + 64 * 1024]

    response = requests.patch(start(registry), data=body())
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    done = requests.put(f"{response.headers['Location']}&digest={digest_of(data)}")
    assert done.status_code == 201, done.text


def test_a_broken_chunked_patch_is_size_invalid(
    registry: RegistryProcess,
) -> None:
    location = urlsplit(start(registry))
    with socket.create_connection((location.hostname, location.port), timeout=10) as sock:
        sock.sendall(
            f"PATCH {location.path}?{location.query} HTTP/1.1\r\nHost: {location.netloc}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            "5\r\nhello\r\nzz\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    (error,) = json.loads(body)["errors"]
    assert error["code"] == "SIZE_INVALID"
    assert error["message"] == "request body's chunked encoding is broken or ended early"
    assert list(error["detail"]) == ["received"]  # no "expected": a chunked body has none


def test_streamed_patch_keeps_memory_flat(registry: RegistryProcess) -> None:
    """96 MiB through one PATCH: no worker's peak RSS grows by more than a fraction of it."""
    pids = workers(registry)
    location = start(registry)
    before = {pid: proc_field(pid, "VmHWM", "status") for pid in pids}
    block = random.Random(5).randbytes(MiB)

    def body() -> Iterator[bytes]:
        for _ in range(96):
            yield block

    response = requests.patch(location, data=body())
    assert response.status_code == 202, response.text
    grown_kib = max(proc_field(pid, "VmHWM", "status") - before[pid] for pid in pids)
    assert grown_kib < 24 * 1024
    done = requests.put(f"{response.headers['Location']}&digest={digest_of(block * 96)}")
    assert done.status_code == 201


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnect_mid_patch_leaves_a_resumable_upload(
    registry: RegistryProcess, tmp_path: Path, how: str
) -> None:
    data = random.Random(6).randbytes(4 * MiB)
    sent = 3 * MiB // 2
    location = urlsplit(start(registry))
    with socket.create_connection((location.hostname, location.port)) as sock:
        sock.sendall(
            f"PATCH {location.path}?{location.query} HTTP/1.1\r\n"
            f"Host: {location.netloc}\r\n"
            "Content-Type: application/octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode()
        )
        sock.sendall(data[:sent])
        time.sleep(0.2)
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    status_url = f"{registry.url}{location.path}"
    stored = _settled_size(status_url)
    assert 0 <= stored <= sent
    if how == "close":
        assert stored == sent
    assert blobs_stored(tmp_path / "root") == []
    status = requests.get(status_url)
    resumed = requests.patch(status.headers["Location"], data=data[stored:])
    assert resumed.status_code == 202, resumed.text
    done = requests.put(f"{resumed.headers['Location']}&digest={digest_of(data)}")
    assert done.status_code == 201, done.text
    assert requests.get(f"{registry.url}/v2/a/b/blobs/{digest_of(data)}").content == data
    assert len(blobs_stored(tmp_path / "root")) == 1


def _settled_size(status_url: str) -> int:
    """The stored size once the server has finished with the dropped request."""
    last, deadline = -1, time.monotonic() + 10
    while time.monotonic() < deadline:
        response = requests.get(status_url)
        assert response.status_code == 204, response.text
        token = parse_qs(urlsplit(response.headers["Location"]).query)["_state"][0]
        size = unpack(token, SECRET).offset
        if size == last:
            return size
        last = size
        time.sleep(0.3)
    raise AssertionError("upload size did not settle")


def test_a_full_disk_mid_patch_is_unavailable_and_the_upload_goes_on(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    """ENOSPC: 503 UNAVAILABLE, one log line and no traceback; the rest of the body is
    dropped, so the connection goes on, and with space back the push ends."""
    location = urlsplit(start(registry))
    upload_id = location.path.rsplit("/", 1)[1]
    data_file = tmp_path / "root/docker/registry/v2/repositories/a/b/_uploads" / upload_id / "data"
    data_file.unlink()
    data_file.symlink_to("/dev/full")
    data = random.Random(7).randbytes(4 * MiB)
    conn = http.client.HTTPConnection(location.hostname, location.port, timeout=30)
    conn.request("PATCH", f"{location.path}?{location.query}", body=data)
    refused = conn.getresponse()
    assert refused.status == 503
    assert json.loads(refused.read())["errors"][0]["code"] == "UNAVAILABLE"
    first = conn.sock.getsockname()
    data_file.unlink()
    data_file.touch()
    conn.request("PATCH", f"{location.path}?{location.query}", body=data)
    accepted = conn.getresponse()
    assert accepted.status == 202, accepted.read()
    assert conn.sock.getsockname() == first
    conn.close()
    done = requests.put(f"{accepted.getheader('Location')}&digest={digest_of(data)}")
    assert done.status_code == 201, done.text
    assert requests.get(f"{registry.url}/v2/a/b/blobs/{digest_of(data)}").content == data
    assert registry.stderr.count("No space left on device") == 1
    assert "Traceback" not in registry.stderr


def test_an_early_error_drops_the_unread_body_and_keeps_the_connection(
    registry: RegistryProcess,
) -> None:
    """A client that sends its whole body before reading (http.client) gets the answer, and
    the connection serves the next request."""
    location = urlsplit(registry.url)
    conn = http.client.HTTPConnection(location.hostname, location.port, timeout=30)
    path = f"/v2/a/b/blobs/uploads/{NEVER_STARTED}"
    conn.request("PATCH", path, body=bytes(8 * MiB))
    refused = conn.getresponse()
    assert refused.status == 404
    assert json.loads(refused.read())["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    first = conn.sock.getsockname()
    conn.request("GET", "/v2/")
    assert conn.getresponse().status == 200
    assert conn.sock.getsockname() == first
    conn.close()


def test_a_client_that_stops_sending_still_gets_its_error(registry: RegistryProcess) -> None:
    """Dropping an unread body is bounded: a stalled client gets the answer, then the
    connection closes (the rest of the body never came)."""
    location = urlsplit(registry.url)
    with socket.create_connection((location.hostname, location.port), timeout=30) as sock:
        sock.sendall(
            f"PATCH /v2/a/b/blobs/uploads/{NEVER_STARTED} HTTP/1.1\r\n".encode()
            + f"Host: {location.netloc}\r\nContent-Length: {8 * MiB}\r\n\r\n".encode()
            + bytes(1024)
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 404 "), received[:200]
    assert b"BLOB_UPLOAD_INVALID" in received


def test_a_patch_in_flight_cannot_rewrite_the_blob_a_commit_makes(
    registry: RegistryProcess, tmp_path: Path
) -> None:
    """The race of the hardening review: a PATCH whose body is still arriving while a PUT
    commits the upload. Before uploads were locked, the PUT moved the data file into the blob
    store and the PATCH then wrote its body into the stored blob (Go 2.8 does this). Now the
    PUT waits for the PATCH, finds the upload grown past its ``_state`` and answers 416; no
    blob is ever stored with bytes other than its digest's."""
    location = start(registry)
    first = requests.patch(location, data=b"A" * 1000)
    assert first.status_code == 202
    location = first.headers["Location"]
    digest = digest_of(b"A" * 1000)

    host, port = registry.url.removeprefix("http://").split(":")
    path = location.split(f":{port}", 1)[1]
    with socket.create_connection((host, int(port)), timeout=30) as late:
        late.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + b"E" * 10
        )
        time.sleep(0.5)  # the PATCH's handler has its writer open and waits for the rest
        with ThreadPoolExecutor(1) as pool:
            put = pool.submit(requests.put, f"{location}&digest={digest}", timeout=60)
            time.sleep(1.0)
            late.sendall(b"E" * 990)
            reply = late.recv(65536)
            committed = put.result(timeout=60)
    for data in blobs_stored(tmp_path / "root"):
        assert hashlib.sha256(data.read_bytes()).hexdigest() == data.parent.name
    assert reply.startswith(b"HTTP/1.1 202 ")
    assert committed.status_code == 416, committed.text
    status = requests.get(location)
    assert status.headers["Range"] == "0-1999"
