"""The Go registry and ours at once on one S3 bucket (Ceph's gateway), as mixed replicas.

Each reads what the other pushed, and a chunked upload alternates between them PATCH by
PATCH, with chunks under and over S3's 5 MiB part minimum: each side resumes the multipart
upload the other left, including Go's recovery from a last part under 5 MiB (complete, start
again from the object). The Go registry starts without ``AWS_CA_BUNDLE`` (see the harness).
"""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
import requests

from tests.cloud.conftest import storage_section
from tests.e2e import images
from tests.e2e.harness import REQUEST_TIMEOUT, Server, Skopeo, StartServer, sha256
from tests.e2e.test_upload_handoff import REPO, Upload

MiB = 1 << 20
#: PATCH sizes in MiB: a part under 5 MiB left by one side makes the other recover from it.
CHUNKS = [3, 7, 1, 6, 2]
KINDS = ["go", "python"]


@pytest.fixture
def replicas(start_server: StartServer, ceph_s3: str) -> dict[str, Server]:
    """The Go registry and ours on one fresh root directory of the bucket."""
    storage = storage_section("s3", ceph_s3, f"interop-{uuid.uuid4().hex}", Path())
    return {kind: start_server(kind, storage=storage) for kind in KINDS}


@pytest.mark.parametrize("pusher", KINDS)
def test_each_pulls_what_the_other_pushed(
    replicas: dict[str, Server], tmp_path: Path, pusher: str
) -> None:
    puller = replicas["go" if pusher == "python" else "python"]
    image = images.multi_layer_image(seed=31)
    images.write_oci_layout(tmp_path / "in", {"v1": image})
    skopeo = Skopeo(tmp_path / "skopeo-home")
    skopeo.copy(f"oci:{tmp_path / 'in'}:v1", f"docker://{replicas[pusher].netloc}/s3/img:v1")
    ref = f"docker://{puller.netloc}/s3/img:v1"
    assert skopeo.inspect_raw(ref) == image.manifest
    skopeo.copy(ref, f"oci:{tmp_path / 'out'}:pulled")
    tags, blobs = images.read_oci_layout(tmp_path / "out")  # checks every blob's digest
    assert tags == {"pulled": image.digest}
    assert blobs.keys() == image.all_manifests().keys() | image.all_blobs().keys()


@pytest.mark.parametrize("starter", KINDS)
def test_chunked_upload_alternates_between_go_and_ours(
    replicas: dict[str, Server], starter: str
) -> None:
    order = [replicas[starter], replicas["go" if starter == "python" else "python"]]
    rng = random.Random(starter)
    chunks = [rng.randbytes(size * MiB) for size in CHUNKS]
    data = b"".join(chunks)

    upload = Upload.start(order[0])
    for i, chunk in enumerate(chunks):
        if i:  # what the other side stored is what this one reports
            upload.check_status(order[i % 2])
        upload.patch(order[i % 2], chunk)
    upload.put(order[len(chunks) % 2], sha256(data))

    for server in order:  # each redirects to the bucket; the client follows
        response = requests.get(
            f"{server.url}/v2/{REPO}/blobs/{sha256(data)}", timeout=REQUEST_TIMEOUT
        )
        assert response.status_code == 200, response.text
        assert response.history and response.history[0].status_code == 307
        assert sha256(response.content) == sha256(data)
