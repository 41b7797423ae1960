"""Manifest pushes through ``registry serve``: real gunicorn, real sockets, bodies that go wrong
on the wire."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import RegistryProcess

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def registry(start_registry: Callable[..., RegistryProcess], tmp_path: Path) -> RegistryProcess:
    return start_registry(
        env={
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(tmp_path / "root"),
            "REGISTRY_HTTP_SECRET": "process-test-secret",
            "REGISTRY_HTTP_TIMEOUTS_BODY": "1s",
            "REGISTRY_LOG_ACCESSLOG_DISABLED": "true",
        }
    )


def push_blob(registry: RegistryProcess, name: str, data: bytes, media_type: str) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = requests.post(f"{registry.url}/v2/{name}/blobs/uploads/").headers["Location"]
    assert requests.put(f"{location}&digest={digest}", data=data).status_code == 201
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def image(registry: RegistryProcess, name: str) -> bytes:
    """A pretty-printed image manifest ending in a newline, as many tools write them: cut
    short of that newline, it is still valid JSON."""
    config = push_blob(
        registry, name, b'{"os":"linux"}', "application/vnd.oci.image.config.v1+json"
    )
    layer = push_blob(registry, name, b"layer", "application/vnd.oci.image.layer.v1.tar+gzip")
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    return json.dumps(doc, indent=2).encode() + b"\n"


def send(registry: RegistryProcess, head: str, body: bytes) -> bytes:
    """Send a request whose body is ``body`` as given, stop sending, and read the answer."""
    location = urlsplit(registry.url)
    with socket.create_connection((location.hostname, location.port), timeout=30) as sock:
        sock.sendall(f"{head}Host: {location.netloc}\r\n\r\n".encode() + body)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_body_cut_short_of_its_content_length_is_never_stored(
    registry: RegistryProcess,
) -> None:
    """A client gone one byte before its Content-Length: its manifest minus the newline is
    valid JSON, but not what it pushed; no tag may point at it."""
    body = image(registry, "a")
    head = (
        "PUT /v2/a/manifests/v1 HTTP/1.1\r\n"
        f"Content-Type: {OCI_MANIFEST}\r\nContent-Length: {len(body)}\r\n"
    )
    received = send(registry, head, body[:-1])
    assert received.startswith(b"HTTP/1.1 400 "), received[:300]
    assert b"SIZE_INVALID" in received
    found = requests.get(f"{registry.url}/v2/a/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert found.status_code == 404
    truncated = "sha256:" + hashlib.sha256(body[:-1]).hexdigest()
    found = requests.get(f"{registry.url}/v2/a/manifests/{truncated}", headers={"Accept": "*/*"})
    assert found.status_code == 404
    whole = requests.put(
        f"{registry.url}/v2/a/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST}
    )
    assert whole.status_code == 201, whole.text


@pytest.mark.parametrize(
    "chunks",
    [b'5\r\n{"sch\r\n', b'5\r\n{"schXX', b'zz\r\n{"sch\r\n0\r\n\r\n'],
    ids=["cut-short", "no-terminator", "bad-size"],
)
def test_a_broken_chunked_body_is_a_client_error(registry: RegistryProcess, chunks: bytes) -> None:
    """A garbled or unfinished chunked body is the client's fault: 400, not a 500 and a
    traceback logged at panic level."""
    head = (
        "PUT /v2/a/manifests/v1 HTTP/1.1\r\n"
        f"Content-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n"
    )
    received = send(registry, head, chunks)
    assert received.startswith(b"HTTP/1.1 400 "), received[:300]
    assert b"SIZE_INVALID" in received
    assert "unexpected error" not in registry.stderr
    assert "Traceback" not in registry.stderr


def test_a_body_that_stops_arriving_is_a_client_error(registry: RegistryProcess) -> None:
    """A client that stalls mid-body, past ``http.timeouts.body``: 400, not a 500 and a
    traceback logged at panic level."""
    location = urlsplit(registry.url)
    with socket.create_connection((location.hostname, location.port), timeout=30) as sock:
        sock.sendall(
            b"PUT /v2/a/manifests/v1 HTTP/1.1\r\n"
            + f"Host: {location.netloc}\r\nContent-Type: {OCI_MANIFEST}\r\n".encode()
            + b'Content-Length: 100\r\n\r\n{"schemaVersion"'
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 400 "), received[:300]
    assert b"SIZE_INVALID" in received
    assert "unexpected error" not in registry.stderr
