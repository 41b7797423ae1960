"""``registry serve`` on GCS, Azure and S3 emulators, driven by real clients.

skopeo pushes and pulls a multi-layer image; a chunked upload has its PATCHes served by both
gunicorn workers; a blob GET redirects to the emulator and the client follows it (azurite
checks the SAS signature, Ceph's gateway the presigned URL's, fake-gcs-server serves the
signed URL's path).
"""

from __future__ import annotations

import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.cloud.conftest import CloudRegistry
from tests.e2e import images
from tests.e2e.harness import REQUEST_TIMEOUT, Skopeo, sha256
from tests.e2e.test_multiworker import _patch

CHUNK = 300 * 1024
MIN_CHUNKS = 4
#: With accepts spread at random over two workers, missing one 32 times in a row is 2**-31.
MAX_CHUNKS = 32


def test_skopeo_push_and_pull(cloud_registry: CloudRegistry, tmp_path: Path) -> None:
    image = images.multi_layer_image(seed=11)
    images.write_oci_layout(tmp_path / "in", {"v1": image})
    skopeo = Skopeo(tmp_path / "skopeo-home")
    ref = f"docker://{cloud_registry.netloc}/cloud/image:v1"
    skopeo.copy(f"oci:{tmp_path / 'in'}:v1", ref)
    assert skopeo.inspect_raw(ref) == image.manifest
    skopeo.copy(ref, f"oci:{tmp_path / 'out'}:pulled")
    tags, blobs = images.read_oci_layout(tmp_path / "out")  # checks every blob's digest
    assert tags == {"pulled": image.digest}
    assert blobs.keys() == image.all_manifests().keys() | image.all_blobs().keys()


def test_chunked_upload_across_workers(cloud_registry: CloudRegistry) -> None:
    rng = random.Random(17)
    url = f"{cloud_registry.url}/v2/cloud/chunked/blobs/uploads/"
    response = requests.post(url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    workers = cloud_registry.serving_pids()
    served_by: list[int] = []
    data = bytearray()
    while len(served_by) < MIN_CHUNKS or (
        set(served_by) != workers and len(served_by) < MAX_CHUNKS
    ):
        chunk = rng.randbytes(CHUNK)
        location, pid = _patch(cloud_registry, location, len(data), chunk)  # type: ignore[arg-type]
        served_by.append(pid)
        data += chunk
    digest = sha256(bytes(data))
    response = requests.put(
        cloud_registry.rewrite(location), params={"digest": digest}, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 201, response.text
    assert set(served_by) == workers, f"PATCHes served by {served_by}, workers {workers}"
    response = requests.get(
        f"{cloud_registry.url}/v2/cloud/chunked/blobs/{digest}", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 200, response.text
    assert sha256(response.content) == digest


def test_two_patches_at_one_offset_are_served_one_after_the_other(
    cloud_registry: CloudRegistry,
) -> None:
    """A PATCH arrives while another at the same offset is still sending its body (a client's
    retry, or two clients): it waits for the upload's lock, then finds the size the first
    left and answers 416 without writing; the upload holds the first body alone. The writer
    is opened before the offset check, so this is what keeps a refused PATCH harmless."""
    response = requests.post(
        f"{cloud_registry.url}/v2/cloud/race/blobs/uploads/", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 202, response.text
    location = cloud_registry.rewrite(response.headers["Location"])
    first, second = b"A" * CHUNK, b"B" * CHUNK
    path = location.split(cloud_registry.netloc, 1)[1]
    with socket.create_connection(("127.0.0.1", cloud_registry.port), timeout=60) as slow:
        slow.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {CHUNK}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + first[:10]
        )
        time.sleep(0.5)  # its handler holds the lock and waits for the rest of the body
        with ThreadPoolExecutor(1) as pool:
            racing = pool.submit(requests.patch, location, data=second, timeout=60)
            time.sleep(1.0)
            assert not racing.done()
            slow.sendall(first[10:])
            reply = slow.recv(65536)
            refused = racing.result(timeout=60)
    assert reply.startswith(b"HTTP/1.1 202 "), reply
    assert refused.status_code == 416, refused.text
    assert refused.headers["Range"] == f"0-{CHUNK - 1}"
    digest = sha256(first)
    response = requests.put(location, params={"digest": digest}, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 416  # that token is behind the upload too
    status = requests.get(location, timeout=REQUEST_TIMEOUT)
    assert status.headers["Range"] == f"0-{CHUNK - 1}"
    response = requests.put(
        cloud_registry.rewrite(status.headers["Location"]),
        params={"digest": digest},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    response = requests.get(
        f"{cloud_registry.url}/v2/cloud/race/blobs/{digest}", timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 200 and response.content == first


def test_blob_get_redirects_to_a_url_the_client_follows(cloud_registry: CloudRegistry) -> None:
    data = random.Random(5).randbytes(100 * 1024)
    digest = sha256(data)
    base = f"{cloud_registry.url}/v2/cloud/redirect/blobs"
    response = requests.post(
        f"{base}/uploads/", params={"digest": digest}, data=data, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 201, response.text

    response = requests.get(f"{base}/{digest}", allow_redirects=False, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 307, response.text
    target = response.headers["Location"]
    assert not target.startswith(cloud_registry.url)

    response = requests.get(f"{base}/{digest}", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.history[0].status_code == 307
    assert sha256(response.content) == digest

    if cloud_registry.driver == "gcs":  # fake-gcs-server checks no signature
        assert "X-Goog-Signature=" in target and "X-Goog-Expires=1200" in target
        return
    if cloud_registry.driver == "s3":  # Ceph's gateway checks the presigned GET's signature
        assert "X-Amz-Signature=" in target and "X-Amz-Expires=1200" in target
        tampered = target.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    else:  # azurite does: a read-only SAS, refused once tampered with
        assert "sp=r&" in target and "sig=" in target
        tampered = target.replace("sig=", "sig=AAAA")
    assert requests.get(tampered, timeout=REQUEST_TIMEOUT).status_code == 403
