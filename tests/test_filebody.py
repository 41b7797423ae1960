"""Blob GETs under real gunicorn: the bytes sent from mapped windows on the socket itself."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import struct
import time
from pathlib import Path

import pytest
import requests

from distribution.api import filebody
from distribution.api.filebody import MAP_WINDOW, MAPPED_PIECE, SEND_CHUNK
from tests.api.test_uploads_process import proc_field, workers
from tests.conftest import free_port, make_certificate
from tests.observability.test_metrics import samples
from tests.replicas.blobs import push_blob

#: Three windows, the last one short and not page-aligned.
DATA = os.urandom(2 * MAP_WINDOW + 12345)
NAME = "served/blob"
TIMEOUT = 30


def filesystem_config(root: Path, extra: str = "") -> str:
    return f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
  cache: {{blobdescriptor: inmemory}}
http:
  secret: test-secret
{extra}
"""


def connect(registry) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port_of(registry), timeout=TIMEOUT)


def port_of(registry) -> int:
    return int(registry.url.rsplit(":", 1)[1])


def get(conn: http.client.HTTPConnection, path: str, **headers: str) -> tuple[int, dict, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_blob_bodies_are_whole_on_one_keep_alive_connection(start_registry, tmp_path) -> None:
    debug_port = free_port()
    debug = f"  debug: {{addr: '127.0.0.1:{debug_port}', prometheus: {{enabled: true}}}}"
    registry = start_registry(
        filesystem_config(tmp_path / "data", debug),
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
    )
    digest = push_blob(registry.url, NAME, DATA)
    path = f"/v2/{NAME}/blobs/{digest}"
    conn = connect(registry)

    status, headers, body = get(conn, path)
    assert (status, headers["Content-Length"], body == DATA) == (200, str(len(DATA)), True)
    # starts inside a page, crosses a window's end, ends inside the next window
    start, stop = MAPPED_PIECE + 4097, MAP_WINDOW + 5000
    status, headers, body = get(conn, path, Range=f"bytes={start}-{stop}")
    assert (status, headers["Content-Range"]) == (206, f"bytes {start}-{stop}/{len(DATA)}")
    assert body == DATA[start : stop + 1]
    status, _, body = get(conn, path, Range="bytes=-100")
    assert (status, body) == (206, DATA[-100:])
    status, _, body = get(conn, path, Range=f"bytes={MAP_WINDOW}-")
    assert (status, body == DATA[MAP_WINDOW:]) == (206, True)
    status, _, body = get(conn, path, **{"If-None-Match": f'"{digest}"'})
    assert (status, body) == (304, b"")
    assert get(conn, "/v2/")[::2] == (200, b"{}\n")  # the connection is still in step
    conn.close()

    sent = len(DATA) + (stop + 1 - start) + 100 + len(DATA) - MAP_WINDOW
    scraped = samples(requests.get(f"http://127.0.0.1:{debug_port}/metrics", timeout=10).text)
    assert scraped[("registry_http_response_size_bytes_sum", (("handler", "blob"),))] == sent
    assert registry.stop() == 0
    assert f'"GET {path} HTTP/1.1" 200 {len(DATA)} ' in registry.stdout
    assert f'"GET {path} HTTP/1.1" 206 {len(DATA) - MAP_WINDOW} ' in registry.stdout


@pytest.mark.parametrize(
    "dropped",
    [(0, len(DATA)), (0, MAP_WINDOW), (MAP_WINDOW, MAP_WINDOW), (2 * MAP_WINDOW, 12345)],
    ids=["all", "first-window", "middle-window", "last-window"],
)
def test_blob_bodies_from_the_disk(start_registry, tmp_path: Path, dropped) -> None:
    """What the page cache does not hold goes out with ``sendfile``, the rest from mapped
    windows: the same bytes either way, and counted as sent."""
    root = tmp_path / "data"
    registry = start_registry(filesystem_config(root), env={"REGISTRY_HTTP_WORKERS": "1"})
    digest = push_blob(registry.url, NAME, DATA)
    path = f"/v2/{NAME}/blobs/{digest}"
    data_file = _data_file(root, digest)
    conn = connect(registry)
    ranges = [None, f"bytes={MAPPED_PIECE + 4097}-{MAP_WINDOW + 5000}", f"bytes={MAP_WINDOW}-"]
    for byte_range in ranges:
        _drop(data_file, *dropped)
        assert not _cached_at(data_file, dropped[0])
        status, _, body = get(conn, path, **({"Range": byte_range} if byte_range else {}))
        if byte_range is None:
            assert (status, body == DATA) == (200, True)
        else:
            start, _, stop = byte_range.removeprefix("bytes=").partition("-")
            expected = DATA[int(start) : int(stop) + 1 if stop else None]
            assert (status, len(body), body == expected) == (206, len(expected), True)
    conn.close()
    assert registry.stop() == 0
    assert f'"GET {path} HTTP/1.1" 200 {len(DATA)} ' in registry.stdout
    assert f'"GET {path} HTTP/1.1" 206 {len(DATA) - MAP_WINDOW} ' in registry.stdout


def test_the_page_cache_probe(tmp_path: Path) -> None:
    """The probe reads nothing: a page it found missing is still missing a while later."""
    data_file = tmp_path / "blob"
    data_file.write_bytes(DATA)
    _drop(data_file, 0, len(DATA))
    assert not _cached_at(data_file, 0) and not _cached_at(data_file, MAP_WINDOW)
    time.sleep(0.5)  # time for a read the probe started to land
    assert not _cached_at(data_file, 0) and not _cached_at(data_file, MAP_WINDOW)
    with open(data_file, "rb") as f:
        f.read(SEND_CHUNK)
    assert _cached_at(data_file, 0)


def test_the_page_cache_probe_without_cachestat(tmp_path: Path, monkeypatch) -> None:
    """Where ``cachestat`` is missing, a read that may not wait answers for a cached page, and
    a descriptor that cannot tell counts as cached."""
    monkeypatch.setattr(filebody, "_cachestat", None)
    data_file = tmp_path / "blob"
    data_file.write_bytes(DATA)
    with open(data_file, "rb") as f:
        f.read(SEND_CHUNK)
    assert _cached_at(data_file, 0)
    reader, writer = os.pipe()
    try:
        assert filebody._cached(reader, 0)
    finally:
        os.close(reader)
        os.close(writer)


def _data_file(root: Path, digest: str) -> Path:
    hexdigest = digest.split(":")[1]
    return root / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def _drop(path: Path, offset: int, length: int) -> None:
    """Take ``length`` bytes of ``path`` at ``offset`` out of the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def _cached_at(path: Path, offset: int) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return filebody._cached(fd, offset)
    finally:
        os.close(fd)


def test_sent_pages_leave_the_workers_memory(start_registry, tmp_path: Path) -> None:
    """A window's pages are let go once sent: a pull does not raise a worker's peak by one."""
    registry = start_registry(filesystem_config(tmp_path / "data"))
    digest = push_blob(registry.url, NAME, DATA)
    path = f"/v2/{NAME}/blobs/{digest}"
    pids = workers(registry)
    conns = [connect(registry) for _ in pids]
    for conn in conns:  # each worker's first blob answer, before the peak is read
        assert get(conn, path, Range="bytes=0-99")[::2] == (206, DATA[:100])
    before = {pid: proc_field(pid, "VmHWM", "status") for pid in pids}
    for conn in conns * 2:
        status, _, body = get(conn, path)
        assert (status, body == DATA) == (200, True)
    grown_kib = max(proc_field(pid, "VmHWM", "status") - before[pid] for pid in pids)
    assert grown_kib < MAP_WINDOW // 2 // 1024, grown_kib
    for conn in conns:
        conn.close()


def test_blob_bodies_over_tls(start_registry, tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    cert, key = make_certificate(tmp_path / "tls")
    tls = f"  tls: {{certificate: {cert}, key: {key}}}"
    registry = start_registry(
        filesystem_config(tmp_path / "data", tls), scheme="https", verify=str(cert)
    )
    verify = str(cert)
    location = requests.post(f"{registry.url}/v2/{NAME}/blobs/uploads/", verify=verify)
    digest = "sha256:" + hashlib.sha256(DATA).hexdigest()
    url = f"{location.headers['Location']}&digest={digest}"
    assert requests.put(url, data=DATA, verify=verify).status_code == 201
    got = requests.get(f"{registry.url}/v2/{NAME}/blobs/{digest}", verify=verify, timeout=TIMEOUT)
    assert (got.status_code, got.content == DATA) == (200, True)


def test_blobs_without_a_file_descriptor_are_read_and_sent(start_registry) -> None:
    inmemory = "version: 0.1\nstorage: {inmemory: {}}\nhttp: {secret: s}\n"
    # one worker: in-memory storage is per process
    registry = start_registry(inmemory, env={"REGISTRY_HTTP_WORKERS": "1"})
    digest = push_blob(registry.url, NAME, DATA)
    got = requests.get(f"{registry.url}/v2/{NAME}/blobs/{digest}", timeout=TIMEOUT)
    assert (got.status_code, got.content == DATA) == (200, True)


def test_a_client_leaving_mid_blob_leaves_the_server_serving(start_registry, tmp_path) -> None:
    registry = start_registry(filesystem_config(tmp_path / "data"))
    digest = push_blob(registry.url, NAME, DATA)
    port = port_of(registry)
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(f"GET /v2/{NAME}/blobs/{digest} HTTP/1.1\r\nHost: r\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            # close with a reset while the server is still sending
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    got = requests.get(f"{registry.url}/v2/{NAME}/blobs/{digest}", timeout=TIMEOUT)
    assert got.content == DATA
    assert registry.stop() == 0
    assert "Traceback" not in registry.stderr


def test_a_blob_file_cut_short_ends_the_connection(start_registry, tmp_path: Path) -> None:
    """The size comes from the blob descriptor cache; the file on disk lost its end."""
    root = tmp_path / "data"
    registry = start_registry(filesystem_config(root), env={"REGISTRY_HTTP_WORKERS": "1"})
    digest = push_blob(registry.url, NAME, DATA)
    assert requests.head(f"{registry.url}/v2/{NAME}/blobs/{digest}").status_code == 200
    data_file = _data_file(root, digest)
    os.truncate(data_file, MAP_WINDOW + 100)

    conn = connect(registry)
    started = time.monotonic()
    conn.request("GET", f"/v2/{NAME}/blobs/{digest}")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == str(len(DATA))
    try:
        response.read()
    except http.client.IncompleteRead as short:
        assert short.partial == DATA[: MAP_WINDOW + 100]
    else:
        raise AssertionError("a short body was read as whole")
    assert time.monotonic() - started < TIMEOUT / 2  # closed, not left waiting
    assert requests.get(f"{registry.url}/v2/", timeout=TIMEOUT).status_code == 200
    registry.stop()
    assert (
        f"{data_file}: {len(DATA) - MAP_WINDOW - 100} bytes missing at its end" in registry.stderr
    )
