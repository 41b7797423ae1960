"""Blob uploads on S3 through the registry's API (the Flask app, moto as the server): what each
request asks of S3, counted by a botocore event hook on the driver's own client.

Every request saved per PATCH is CPU on a box the S3 server shares and a round trip against
AWS; what stays is what keeps an upload whole (see :mod:`distribution.storage.uploads`).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from distribution import uploadstate
from distribution.api import context
from tests.conftest import make_app
from tests.redis_server import RedisServer
from tests.storage import s3_emulator as s3

MiB = 1 << 20
SECRET = "s3-uploads-secret"
NAME = "calls/counted"
#: What a PATCH asks besides its parts: the upload's start time (the lock's look for the
#: upload, and the ``_state``'s time), then its upload and parts (the offset check's size, the
#: writer's place to continue, the size after the append).
PATCH_LOOKUPS = ["GetObject", "ListMultipartUploads", "ListParts"]
#: What a status asks: the start time, then the upload's size by a ``stat``, which also looks
#: for an object at the key (a newer one is the file: an upload beside it is a dead copy's).
STATUS_LOOKUPS = ["GetObject", "ListMultipartUploads", "ListParts", "HeadObject"]
_roots = itertools.count()


class Registry:
    """The app on one S3 server, with the S3 operations its driver sent since ``reset``."""

    def __init__(self, client: FlaskClient, calls: list[str]) -> None:
        self.client = client
        self.calls = calls

    def lookups(self) -> list[str]:
        """The calls but the parts sent, and forget them."""
        found = [name for name in self.calls if name != "UploadPart"]
        self.calls.clear()
        return found

    def parts_sent(self) -> int:
        return self.calls.count("UploadPart")


@pytest.fixture(params=["driver", "redis"], ids=["driver-locks", "redis-locks"])
def registry(request: pytest.FixtureRequest, moto_s3: str, tmp_path: Path) -> Iterator[Registry]:
    redis = None
    if request.param == "redis":
        redis = RedisServer(tmp_path / "redis").start()
        request.addfinalizer(redis.stop)
    app = make_app(
        f"""\
version: 0.1
storage:
  s3:
    region: {s3.REGION}
    regionendpoint: {moto_s3}
    bucket: {s3.BUCKET}
    accesskey: {s3.ACCESS_KEY}
    secretkey: {s3.SECRET_KEY}
    rootdirectory: /uploads-{next(_roots)}-{uuid.uuid4().hex[:8]}
    chunksize: {5 * MiB}
  redirect: {{disable: true}}
http: {{secret: {SECRET}}}
{f"redis: {{addr: '{redis.addr}'}}" if redis else ""}
"""
    )
    with app.app_context():
        driver = context.registry().driver
    calls: list[str] = []
    s3_client = driver.driver._client  # type: ignore[attr-defined]  # behind CheckedDriver
    s3_client.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    yield Registry(app.test_client(), calls)


def _patch(registry: Registry, location: str, body: bytes, offset: int) -> str:
    response = registry.client.patch(
        location,
        data=body,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(body) - 1}",
        },
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.headers["Range"] == f"0-{offset + len(body) - 1}"
    return response.headers["Location"]


def test_a_patch_looks_up_the_upload_once(registry: Registry) -> None:
    """Three lookups a PATCH (it took nine): the lock does not look for the start time file
    before it is read, and the offset check, the writer and the size after the append share
    the writer's one listing of the upload and its parts. Then one write: the hash, saved for
    whichever replica takes the next request (its live hash spares this one a read)."""
    location = registry.client.post(f"/v2/{NAME}/blobs/uploads/").headers["Location"]
    chunks = [random.Random(i).randbytes(6 * MiB + i) for i in range(3)]
    offset = 0
    for chunk in chunks:
        registry.lookups()
        location = _patch(registry, location, chunk, offset)
        offset += len(chunk)
        assert registry.parts_sent() == 1  # 6 MiB and a few bytes: one part
        assert registry.lookups() == [*PATCH_LOOKUPS, "PutObject"]
    digest = "sha256:" + hashlib.sha256(b"".join(chunks)).hexdigest()
    response = registry.client.put(f"{location}&digest={digest}")
    assert response.status_code == 201, response.get_data(as_text=True)
    blob = registry.client.get(f"/v2/{NAME}/blobs/{digest}")
    assert blob.status_code == 200
    assert blob.get_data() == b"".join(chunks)


def test_the_status_reads_the_start_time_and_the_size_once(registry: Registry) -> None:
    location = registry.client.post(f"/v2/{NAME}/blobs/uploads/").headers["Location"]
    location = _patch(registry, location, b"x" * 1000, 0)
    registry.lookups()
    response = registry.client.get(location)
    assert response.status_code == 204
    assert response.headers["Range"] == "0-999"
    assert registry.lookups() == STATUS_LOOKUPS


def test_a_patch_at_a_wrong_offset_sends_nothing(registry: Registry) -> None:
    """A replayed PATCH (its ``_state`` one chunk behind): 416 at the size the writer found,
    no part sent, the upload as it was."""
    location = registry.client.post(f"/v2/{NAME}/blobs/uploads/").headers["Location"]
    stale = _patch(registry, location, b"a" * 1000, 0)
    location = _patch(registry, stale, b"b" * 1000, 1000)
    registry.lookups()
    response = registry.client.patch(
        stale,
        data=b"c" * 1000,
        headers={"Content-Type": "application/octet-stream", "Content-Range": "1000-1999"},
    )
    assert response.status_code == 416
    assert response.headers["Range"] == "0-1999"
    assert registry.parts_sent() == 0
    assert registry.lookups() == PATCH_LOOKUPS
    digest = "sha256:" + hashlib.sha256(b"a" * 1000 + b"b" * 1000).hexdigest()
    assert registry.client.put(f"{location}&digest={digest}").status_code == 201


def test_an_unknown_upload_is_one_lookup(registry: Registry) -> None:
    """A signed ``_state`` for an upload that does not exist (committed or cancelled by
    another replica): 404 ``BLOB_UPLOAD_UNKNOWN`` from the start time's read alone, no
    file or listing looked at before it, nothing written."""
    upload_id = str(uuid.uuid4())
    state = uploadstate.UploadState(NAME, upload_id, 0, datetime.now(UTC))
    token = uploadstate.pack(state, SECRET)
    registry.lookups()
    response = registry.client.patch(
        f"/v2/{NAME}/blobs/uploads/{upload_id}?_state={token}",
        data=b"late",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert registry.lookups() == ["GetObject"]
    assert registry.parts_sent() == 0
