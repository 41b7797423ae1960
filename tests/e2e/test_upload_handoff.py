"""Mixed replicas: an upload begun on one registry continues on another with the same secret.

Both registries run at once on one root directory, as replicas behind a load balancer would.
Each request follows the ``Location`` the last server returned (its ``_state`` token) with only
host and port changed, which is what a balancer that picks another replica does.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import KINDS, REQUEST_TIMEOUT, Server, StartServer, sha256

PAIRS = [(a, b) for a in KINDS for b in KINDS]
IDS = [f"{a}-then-{b}" for a, b in PAIRS]
REPO = "handoff/blob"
CHUNK = 256 * 1024


@pytest.mark.parametrize(("starter", "finisher"), PAIRS, ids=IDS)
def test_upload_started_on_one_finished_on_the_other(
    starter: str, finisher: str, start_server: StartServer, tmp_path: Path
) -> None:
    root = tmp_path / "shared-root"
    first, second = start_server(starter, root), start_server(finisher, root)
    chunks = _chunks(3, seed=1)
    data = b"".join(chunks)

    upload = Upload.start(first)
    upload.patch(first, chunks[0])
    upload.check_status(second)
    upload.patch(second, chunks[1])
    upload.put(second, sha256(data), chunks[2])

    _check_blob(root, [first, second], data, upload.uuid)


@pytest.mark.parametrize(("starter", "other"), PAIRS, ids=IDS)
def test_upload_alternates_between_replicas(
    starter: str, other: str, start_server: StartServer, tmp_path: Path
) -> None:
    """Every PATCH lands on the other replica, so neither can rely on what it saw last."""
    root = tmp_path / "shared-root"
    servers = [start_server(starter, root), start_server(other, root)]
    chunks = _chunks(5, seed=2)
    data = b"".join(chunks)

    upload = Upload.start(servers[0])
    for i, chunk in enumerate(chunks):
        upload.patch(servers[i % 2], chunk)
    upload.put(servers[len(chunks) % 2], sha256(data))

    _check_blob(root, servers, data, upload.uuid)


class Upload:
    """One chunked upload, driven with plain HTTP requests, each on a new connection."""

    def __init__(self, location: str, uuid: str) -> None:
        self.location = location
        self.uuid = uuid
        self.offset = 0

    @classmethod
    def start(cls, server: Server) -> Upload:
        response = requests.post(f"{server.url}/v2/{REPO}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 202, _explain(server, response)
        assert "_state=" in response.headers["Location"]
        return cls(response.headers["Location"], response.headers["Docker-Upload-UUID"])

    def patch(self, server: Server, chunk: bytes) -> None:
        end = self.offset + len(chunk) - 1
        response = requests.patch(
            server.rewrite(self.location),
            data=chunk,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{self.offset}-{end}",
            },
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 202, _explain(server, response)
        assert response.headers["Range"] == f"0-{end}"
        assert response.headers["Docker-Upload-UUID"] == self.uuid
        self.location = response.headers["Location"]
        self.offset = end + 1

    def check_status(self, server: Server) -> None:
        response = requests.get(server.rewrite(self.location), timeout=REQUEST_TIMEOUT)
        assert response.status_code == 204, _explain(server, response)
        assert response.headers["Range"] == f"0-{self.offset - 1}"
        assert response.headers["Docker-Upload-UUID"] == self.uuid

    def put(self, server: Server, digest: str, chunk: bytes = b"") -> None:
        response = requests.put(
            server.rewrite(self.location),
            params={"digest": digest},
            data=chunk,
            headers={"Content-Type": "application/octet-stream"},
            timeout=REQUEST_TIMEOUT,
        )
        assert response.status_code == 201, _explain(server, response)
        assert response.headers["Docker-Content-Digest"] == digest
        assert response.headers["Location"].endswith(f"/v2/{REPO}/blobs/{digest}")


def _check_blob(root: Path, servers: list[Server], data: bytes, uuid: str) -> None:
    """Every server serves the blob; storage holds it once, linked, with the upload gone."""
    digest = sha256(data)
    for server in servers:
        response = requests.get(f"{server.url}/v2/{REPO}/blobs/{digest}", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, _explain(server, response)
        assert response.headers["Docker-Content-Digest"] == digest
        assert sha256(response.content) == digest
    v2 = root / "docker" / "registry" / "v2"
    hex_digest = digest.removeprefix("sha256:")
    assert (v2 / "blobs" / "sha256" / hex_digest[:2] / hex_digest / "data").read_bytes() == data
    repo = v2 / "repositories" / REPO
    assert (repo / "_layers" / "sha256" / hex_digest / "link").read_text() == digest
    assert not (repo / "_uploads" / uuid).exists()


def _chunks(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(CHUNK + rng.randrange(1, 4096)) for _ in range(count)]


def _explain(server: Server, response: requests.Response) -> str:
    return f"{server}: {response.request.method} -> {response.status_code} {response.text[:300]}"
