"""The storage emulator stopped in the middle of an upload, then restarted.

While it is down the registry answers 503 ``UNAVAILABLE`` in OCI JSON (never a 500 or a
traceback); once it is back on the same port with the same data, the upload carries on from
where the registry says it is (or the client restarts it when the registry says it is gone),
and every blob served hashes to its digest.
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.cloud.conftest import DRIVERS, CloudRegistry, StartCloudRegistry
from tests.e2e.harness import REQUEST_TIMEOUT, sha256
from tests.storage import azure_emulator as azure
from tests.storage import gcs_emulator as gcs
from tests.storage import s3_emulator as s3

CHUNK = 600 * 1024
REPO = "cloud/faults"


@pytest.fixture(params=DRIVERS)
def emulator(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Emulator]]:
    """``(driver, emulator)``: an emulator of this test's own, which it may stop and start."""
    if request.param == "gcs":
        server: Emulator = gcs.FakeGCS(tmp_path)
        url = server.start()
        storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
        ).create_bucket(gcs.BUCKET)
    elif request.param == "s3":
        server = _Gateway(s3.Ceph(tmp_path))
    else:
        server = azure.Azurite(tmp_path)
        url = server.start()
        credential = {"account_name": azure.ACCOUNT, "account_key": azure.KEY}
        BlobServiceClient(url, credential=credential).create_container(azure.CONTAINER)
    yield request.param, server
    if isinstance(server, _Gateway):
        server.ceph.stop()
    else:
        server.stop()


class _Gateway:
    """A Ceph cluster whose gateway is what stops and starts: the objects stay in RADOS."""

    def __init__(self, ceph: s3.Ceph) -> None:
        self.ceph = ceph
        self.url = ceph.url
        try:
            ceph.start()
        except BaseException:
            ceph.stop()
            raise

    def start(self) -> str:
        self.ceph.start_gateway()
        return self.url

    def stop(self) -> None:
        self.ceph.stop_gateway()


Emulator = gcs.FakeGCS | azure.Azurite | _Gateway


def test_upload_survives_the_emulator_going_away(
    emulator: tuple[str, Emulator], start_cloud_registry: StartCloudRegistry
) -> None:
    driver, server = emulator
    registry = start_cloud_registry(driver, server.url)
    rng = random.Random(23)
    first, second = rng.randbytes(CHUNK), rng.randbytes(CHUNK)
    stored = _push(registry, rng.randbytes(50 * 1024))

    response = requests.post(f"{registry.url}/v2/{REPO}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    location = _patch(registry, response.headers["Location"], 0, first).headers["Location"]

    server.stop()
    response = _patch(registry, location, len(first), second, expect=503)
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    response = requests.get(f"{registry.url}/v2/{REPO}/blobs/{stored}", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 503 and response.json()["errors"][0]["code"] == "UNAVAILABLE"

    server.start()
    data = first + second
    response = _patch(registry, location, len(first), second, expect=None)
    if response.status_code != 202:  # the upload's state went with the emulator: start over
        assert driver == "gcs", response.text  # azurite, Ceph keep what they stored; GCS not
        assert response.status_code == 503, response.text
        assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
        status = requests.get(registry.rewrite(location), timeout=REQUEST_TIMEOUT)
        assert status.status_code == 204, status.text
        assert status.headers["Range"] == "0-0"  # nothing stored: no corrupt prefix kept
        response = _patch(registry, status.headers["Location"], 0, data)
    digest = sha256(data)
    response = requests.put(
        registry.rewrite(response.headers["Location"]),
        params={"digest": digest},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text

    for blob in (stored, digest):
        response = requests.get(f"{registry.url}/v2/{REPO}/blobs/{blob}", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, response.text
        assert sha256(response.content) == blob
    assert "Traceback" not in registry.process.log, registry.process.log


def test_workers_started_while_the_emulator_is_down_serve_503(
    emulator: tuple[str, Emulator], start_cloud_registry: StartCloudRegistry
) -> None:
    """A worker that boots while storage is unreachable (respawned after the OOM killer, or the
    second one still booting when storage went away) answers 503 like the others: storage was
    checked once, when ``registry serve`` started, and the registry keeps running."""
    driver, server = emulator
    registry = start_cloud_registry(driver, server.url)
    stored = _push(registry, random.Random(29).randbytes(1024))
    blob_url = f"{registry.url}/v2/{REPO}/blobs/{stored}"

    server.stop()
    killed = registry.serving_pids()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    response = requests.get(blob_url, timeout=REQUEST_TIMEOUT)  # waits for a new worker
    assert response.status_code == 503, response.text
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"

    server.start()
    response = requests.get(blob_url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text
    assert sha256(response.content) == stored
    assert registry.process.proc.poll() is None, registry.process.log
    assert not registry.serving_pids() & killed
    assert "Traceback" not in registry.process.log, registry.process.log


def _push(registry: CloudRegistry, data: bytes) -> str:
    digest = sha256(data)
    response = requests.post(
        f"{registry.url}/v2/{REPO}/blobs/uploads/",
        params={"digest": digest},
        data=data,
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return digest


def _patch(
    registry: CloudRegistry, location: str, offset: int, chunk: bytes, expect: int | None = 202
) -> requests.Response:
    """PATCH ``chunk`` at ``offset``; the status must be ``expect`` unless that is None."""
    response = requests.patch(
        registry.rewrite(location),
        data=chunk,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
        },
        timeout=REQUEST_TIMEOUT,
    )
    assert expect is None or response.status_code == expect, (response.status_code, response.text)
    return response
