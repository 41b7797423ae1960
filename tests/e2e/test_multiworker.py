"""A chunked upload whose PATCHes are served by different gunicorn workers of one registry.

No worker may keep state the next PATCH needs. Each PATCH goes on a new connection, and
``/proc`` names the process that accepted it: the test keeps going until every serving process
(both workers of ours; the single Go process) has taken part, then checks the stored digest.
"""

from __future__ import annotations

import http.client
import random
from urllib.parse import urlsplit

import requests

from tests.e2e.harness import REQUEST_TIMEOUT, Server, connection_owner, sha256

REPO = "multi/worker"
CHUNK = 64 * 1024
MIN_CHUNKS = 8
#: With accepts spread at random over two workers, missing one 64 times in a row is 2**-63.
MAX_CHUNKS = 64


def test_chunked_upload_across_workers(registry: Server) -> None:
    rng = random.Random(7)
    response = requests.post(f"{registry.url}/v2/{REPO}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    workers = registry.serving_pids()
    served_by: list[int] = []
    data = bytearray()
    while len(served_by) < MIN_CHUNKS or (
        set(served_by) != workers and len(served_by) < MAX_CHUNKS
    ):
        chunk = rng.randbytes(CHUNK)
        location, pid = _patch(registry, location, len(data), chunk)
        served_by.append(pid)
        data += chunk

    digest = sha256(bytes(data))
    response = requests.put(
        registry.rewrite(location), params={"digest": digest}, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 201, response.text
    assert set(served_by) == workers, f"PATCHes served by {served_by}, workers {workers}"
    response = requests.get(f"{registry.url}/v2/{REPO}/blobs/{digest}", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.content == data


def _patch(registry: Server, location: str, offset: int, chunk: bytes) -> tuple[str, int]:
    """PATCH ``chunk`` on a new connection: ``(next location, pid that served it)``.

    Half the body is sent, then the serving process is looked up while it is reading the
    request, so the pid is that of the worker that handled this PATCH.
    """
    url = urlsplit(registry.rewrite(location))
    conn = http.client.HTTPConnection("127.0.0.1", registry.port, timeout=REQUEST_TIMEOUT)
    try:
        conn.connect()
        assert conn.sock is not None
        client_port = conn.sock.getsockname()[1]
        conn.putrequest("PATCH", f"{url.path}?{url.query}")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(len(chunk)))
        conn.putheader("Content-Range", f"{offset}-{offset + len(chunk) - 1}")
        half = len(chunk) // 2
        conn.endheaders(chunk[:half])
        pid = connection_owner(registry, client_port)
        conn.send(chunk[half:])
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 202, (response.status, body[:300])
    assert response.getheader("Range") == f"0-{offset + len(chunk) - 1}"
    return response.getheader("Location"), pid
