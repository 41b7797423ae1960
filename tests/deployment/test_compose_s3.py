"""The S3 compose file's registry: its ``REGISTRY_STORAGE_S3_*`` environment over the image's
config.yml, run as a process against Ceph's gateway (in place of MinIO, which does not run
here), pushing and pulling a blob."""

from __future__ import annotations

import random
from pathlib import Path

import requests
import yaml

from tests.api.blob_fixtures import digest_of
from tests.e2e.harness import REQUEST_TIMEOUT
from tests.storage import s3_emulator as s3

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "contrib" / "compose" / "s3" / "docker-compose.yml"


def test_compose_s3_environment_serves(ceph_s3: str, start_registry) -> None:  # type: ignore[no-untyped-def]
    service = yaml.safe_load(COMPOSE.read_text())["services"]["registry"]
    env = {k: str(v) for k, v in service["environment"].items()}
    assert env["REGISTRY_STORAGE"] == "s3"
    # Only where the store is and its keys change: Ceph for MinIO.
    env.update(
        REGISTRY_STORAGE_S3_REGIONENDPOINT=ceph_s3,
        REGISTRY_STORAGE_S3_BUCKET=s3.BUCKET,
        REGISTRY_STORAGE_S3_ACCESSKEY=s3.ACCESS_KEY,
        REGISTRY_STORAGE_S3_SECRETKEY=s3.SECRET_KEY,
        REGISTRY_STORAGE_S3_ROOTDIRECTORY=f"/compose-{random.getrandbits(32)}",
        REGISTRY_HTTP_SECRET="compose-test",
    )
    registry = start_registry((ROOT / "etc" / "config.yml").read_text(), env)
    data = random.Random(3).randbytes(300 * 1024)
    digest = digest_of(data)
    url = f"{registry.url}/v2/compose/s3/blobs"
    response = requests.post(
        f"{url}/uploads/", params={"digest": digest}, data=data, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code == 201, response.text
    response = requests.get(f"{url}/{digest}", allow_redirects=False, timeout=REQUEST_TIMEOUT)
    assert (response.status_code, response.content) == (200, data)  # redirects are off
    objects = s3.client(ceph_s3).list_objects_v2(
        Bucket=s3.BUCKET, Prefix=env["REGISTRY_STORAGE_S3_ROOTDIRECTORY"][1:]
    )
    assert any(o["Key"].endswith(f"/blobs/sha256/{digest[7:9]}/{digest[7:]}/data")
               for o in objects["Contents"])  # fmt: skip
