"""The S3 driver against moto and Ceph RGW: the shared suite on both, then what only S3 shows."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import botocore.exceptions
import pytest

from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import (
    InvalidParameterError,
    PathNotFoundError,
    StorageDriver,
    StorageDriverError,
    create,
)
from distribution.storage.driver.s3 import S3Driver, parse_parameters
from distribution.storage.uploads import LiveHashes, Uploads
from tests.storage.driver_suite import DriverSuite
from tests.storage.s3_emulator import BUCKET, client, parameters

MiB = 1 << 20
#: The smallest part S3 takes, so test-sized files go through several parts.
CHUNK = 5 * MiB
SERVERS = ["moto_s3", "ceph_s3"]


class TestS3DriverOnMoto(DriverSuite):
    driver_name = "s3"

    @pytest.fixture
    def driver_parameters(self, moto_s3: str) -> dict[str, Any]:
        # moto answers 500 ("I/O operation on closed file" in its log) to a read or a write
        # of an object that another request is replacing: 28 of 126 requests in one run of
        # the concurrent put test, four in a row for one. S3 and Ceph do not; more retries
        # ride it out.
        return parameters(moto_s3, chunksize=CHUNK, max_retries=10)


class TestS3DriverOnCeph(DriverSuite):
    driver_name = "s3"

    @pytest.fixture
    def driver_parameters(self, ceph_s3: str) -> dict[str, Any]:
        return parameters(ceph_s3, chunksize=CHUNK)


@pytest.fixture(params=SERVERS, ids=["moto", "ceph"])
def server(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(request.param)


@pytest.fixture
def driver(server: str) -> Iterator[StorageDriver]:
    driver = create("s3", parameters(server, rootdirectory="own-tests", chunksize=CHUNK))
    yield driver
    for path in driver.list("/own-tests") if _exists(driver, "/own-tests") else []:
        driver.delete(path)


@pytest.fixture
def bucket(server: str) -> Any:
    return client(server)


def _exists(driver: StorageDriver, path: str) -> bool:
    try:
        driver.stat(path)
    except Exception:
        return False
    return True


def _uploads(bucket: Any, key: str) -> list[dict[str, Any]]:
    answer = bucket.list_multipart_uploads(Bucket=BUCKET, Prefix=key)
    return [u for u in answer.get("Uploads") or [] if u["Key"] == key]


def _parts(bucket: Any, key: str) -> list[int]:
    (upload,) = _uploads(bucket, key)
    answer = bucket.list_parts(Bucket=BUCKET, Key=key, UploadId=upload["UploadId"])
    return [part["Size"] for part in answer.get("Parts") or []]


def test_keys_are_gos(driver: StorageDriver, bucket: Any) -> None:
    driver.put_content("/docker/registry/v2/link", b"sha256:abc")
    body = bucket.get_object(Bucket=BUCKET, Key="own-tests/docker/registry/v2/link")["Body"]
    assert body.read() == b"sha256:abc"
    driver.delete("/docker")


def test_a_closed_writer_is_a_multipart_upload_as_go_leaves_it(
    driver: StorageDriver, bucket: Any
) -> None:
    """Everything written is in S3 parts; no object exists until commit."""
    key = "own-tests/upload/data"
    data = random.Random(1).randbytes(2 * CHUNK + 123)
    with driver.writer("/upload/data") as w:
        w.write(data)
    assert _parts(bucket, key) == [CHUNK, CHUNK + 123]  # the last part is never under 5 MiB
    with pytest.raises(bucket.exceptions.ClientError):
        bucket.head_object(Bucket=BUCKET, Key=key)
    assert driver.stat("/upload/data").size == len(data)
    with driver.writer("/upload/data", append=True) as w:
        assert w.size == len(data)
        w.write(b"end")
        w.commit()
    assert driver.get_content("/upload/data") == data + b"end"
    assert _uploads(bucket, key) == []
    driver.delete("/upload")


def test_a_writer_holds_at_most_two_parts(moto_s3: str) -> None:
    """Issue 25: memory per upload within two parts, here at the default 10 MiB chunksize,
    counting every allocation of the writer and of botocore while 64 MiB go through."""
    driver = create("s3", parameters(moto_s3, rootdirectory="own-tests"))
    piece = random.Random(2).randbytes(MiB)
    with driver.writer("/memory/data") as w:  # botocore's own first-use allocations
        w.write(piece)
        w.commit()
    tracemalloc.start()
    try:
        with driver.writer("/memory/data") as w:
            for _ in range(64):
                w.write(piece)
            w.commit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= 2 * 10 * MiB
    assert driver.stat("/memory/data").size == 64 * MiB
    driver.delete("/memory")


@pytest.mark.parametrize("first", [3 * MiB, 7 * MiB], ids=["under-5MiB", "over-5MiB"])
def test_a_small_last_part_is_recovered_as_go_does(
    driver: StorageDriver, bucket: Any, first: int
) -> None:
    """A part under 5 MiB can only be last: the next writer completes the upload and starts
    a new one from the object (read back under 5 MiB, copied server-side above)."""
    key = "own-tests/small/data"
    rng = random.Random(first)
    head, small, tail = rng.randbytes(first), rng.randbytes(MiB), rng.randbytes(2 * MiB)
    with driver.writer("/small/data") as w:
        w.write(head)
    with driver.writer("/small/data", append=True) as w:
        w.write(small)
    assert _parts(bucket, key)[-1] < 5 * MiB or first > CHUNK
    with driver.writer("/small/data", append=True) as w:
        assert w.size == first + MiB
        w.write(tail)
    # The recovery's object is gone once its bytes are in the new upload (Go leaves it, so a
    # stat or a read of the key showed the old content).
    with pytest.raises(bucket.exceptions.ClientError):
        bucket.head_object(Bucket=BUCKET, Key=key)
    assert len(_uploads(bucket, key)) == 1
    assert driver.stat("/small/data").size == first + 3 * MiB
    with driver.writer("/small/data", append=True) as w:
        assert w.size == first + 3 * MiB
        w.commit()
    assert driver.get_content("/small/data") == head + small + tail
    driver.delete("/small")


def test_resumes_what_go_leaves_after_its_recovery(driver: StorageDriver, bucket: Any) -> None:
    """Go's recovery leaves a stale object beside the new upload: the upload is the file, to
    a writer and to ``stat`` (an upload's status on our side of a mixed fleet)."""
    key = "own-tests/go/data"
    old, new = b"o" * (3 * MiB), b"n" * (3 * MiB)
    bucket.put_object(Bucket=BUCKET, Key=key, Body=old)
    upload_id = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bucket.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=old + new)
    (listed,) = _uploads(bucket, key)
    if listed["Initiated"].year > 2010:  # moto gives every upload 2010-11-10 as its start
        assert driver.stat("/go/data").size == 6 * MiB
    with driver.writer("/go/data", append=True) as w:
        assert w.size == 6 * MiB
        w.write(b"ours")
        w.commit()
    assert driver.get_content("/go/data") == old + new + b"ours"
    driver.delete("/go")


def test_a_new_writer_aborts_stray_uploads_and_delete_aborts_the_rest(
    driver: StorageDriver, bucket: Any
) -> None:
    key = "own-tests/stray/data"
    bucket.create_multipart_upload(Bucket=BUCKET, Key=key)
    with driver.writer("/stray/data") as w:
        w.write(b"x")
    assert len(_uploads(bucket, key)) == 1
    driver.delete("/stray")
    assert _uploads(bucket, key) == []


def test_an_upload_left_at_a_key_hides_no_newer_object(driver: StorageDriver, bucket: Any) -> None:
    """Two moves to one key: one multipart copy dies, the other completes after it started.
    Its upload does not hide the object; where there is none, it is a file being written."""
    key = "own-tests/left/data"
    upload_id = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bucket.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part")
    time.sleep(1.1)  # S3 keeps both times to the second
    driver.put_content("/left/data", b"committed")
    assert driver.stat("/left/data").size == len(b"committed")
    bucket.delete_object(Bucket=BUCKET, Key=key)
    assert driver.stat("/left/data").size == len(b"part")
    driver.delete("/left")


def test_a_push_over_an_upload_left_at_the_blob_key_stores_the_blob(
    driver: StorageDriver, bucket: Any
) -> None:
    """The upload left there is no whole blob (its size is not the blob's): the blob is moved
    into place, not skipped as if stored, and the move aborts that upload."""
    content = random.Random(13).randbytes(100_000)
    digest = Digest.of(content)
    key = "own-tests" + paths.blob_data(digest)
    upload_id = bucket.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    bucket.upload_part(
        Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=1, Body=content[:1000]
    )
    uploads = Uploads(BlobStore(driver), LiveHashes())
    upload = uploads.append(uploads.start("left/repo"), lambda sink: sink(memoryview(content)))
    uploads.commit(upload, digest)
    assert driver.get_content(paths.blob_data(digest)) == content
    assert _uploads(bucket, key) == []
    driver.delete("/docker")


def test_large_move_is_a_multipart_copy(server: str, bucket: Any) -> None:
    driver = create(
        "s3",
        parameters(
            server,
            rootdirectory="own-tests",
            chunksize=CHUNK,
            multipartcopythresholdsize=CHUNK,
            multipartcopychunksize=CHUNK,
        ),
    )
    data = random.Random(9).randbytes(2 * CHUNK + 77)
    driver.put_content("/big", data)
    driver.move("/big", "/moved")
    assert driver.get_content("/moved") == data
    head = bucket.head_object(Bucket=BUCKET, Key="own-tests/moved")
    assert head["ETag"].strip('"').endswith("-3")  # three copied parts
    driver.delete("/moved")


def test_redirect_url_is_a_working_presigned_get(driver: StorageDriver, server: str) -> None:
    driver.put_content("/blob", b"signed content")
    url = driver.redirect_url("/blob", "GET")
    assert url is not None and url.startswith(server)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=1200" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"signed content"
    assert driver.redirect_url("/blob", "PUT") is None
    driver.delete("/blob")


def test_ceph_refuses_a_tampered_presigned_url(ceph_s3: str) -> None:
    driver = create("s3", parameters(ceph_s3, rootdirectory="own-tests"))
    driver.put_content("/blob", b"x")
    url = driver.redirect_url("/blob", "GET")
    assert url is not None
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10)
    assert info.value.code == 403
    driver.delete("/blob")


def test_redirectendpoint_signs_for_the_public_host(moto_s3: str) -> None:
    driver = create(
        "s3", parameters(moto_s3, rootdirectory="own-tests", redirectendpoint="https://cdn.test")
    )
    url = driver.redirect_url("/blob", "GET")
    assert url is not None and url.startswith(f"https://cdn.test/{BUCKET}/own-tests/blob?")


def test_missing_bucket_fails_at_start(server: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("s3", parameters(server, bucket="nosuch"))
    assert info.value.parameter == "bucket"
    assert info.value.message == "bucket 'nosuch' does not exist"


def test_wrong_key_fails_at_start(ceph_s3: str) -> None:
    """moto checks no signature; Ceph does."""
    with pytest.raises(InvalidParameterError) as info:
        create("s3", parameters(ceph_s3, secretkey="wrong"))
    assert info.value.parameter == "accesskey"
    assert info.value.message.startswith("credentials refused for bucket 'registry': ")


def test_unreachable_endpoint_fails_at_start() -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("s3", parameters("http://127.0.0.1:1", max_retries=0))
    assert info.value.parameter == "regionendpoint"
    assert info.value.message.startswith("cannot reach http://127.0.0.1:1: ")


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"bucket": None}, "bucket"),
        ({"regionendpoint": None, "region": None}, "region"),
        ({"regionendpoint": None, "region": "mars-1"}, "region"),
        ({"regionendpoint": "ftp://x"}, "regionendpoint"),
        ({"chunksize": 1000}, "chunksize"),
        ({"chunksize": "big"}, "chunksize"),
        ({"multipartcopychunksize": 6 << 30}, "multipartcopychunksize"),
        ({"multipartcopymaxconcurrency": 0}, "multipartcopymaxconcurrency"),
        ({"multipartcopythresholdsize": -1}, "multipartcopythresholdsize"),
        ({"encrypt": "maybe"}, "encrypt"),
        ({"secure": 3}, "secure"),
        ({"storageclass": "GLACIER"}, "storageclass"),
        ({"objectacl": "everyone"}, "objectacl"),
        ({"secretkey": None}, "secretkey"),
        ({"v4auth": False, "regionendpoint": None}, "v4auth"),
        ({"redirectendpoint": "https://cdn.test/path"}, "redirectendpoint"),
        ({"max_retries": -1}, "max_retries"),
    ],
)
def test_bad_parameters(overrides: dict[str, Any], parameter: str) -> None:
    settings = {k: v for k, v in {**parameters("http://127.0.0.1:1"), **overrides}.items()}
    settings = {k: v for k, v in settings.items() if v is not None}
    with pytest.raises(InvalidParameterError) as info:
        create("s3", settings)
    assert info.value.parameter == parameter


def test_go_value_forms(moto_s3: str) -> None:
    """Numbers as strings, booleans as strings, storage class in any case, both names."""
    from distribution.storage.driver.s3 import parse_parameters

    values = parse_parameters(
        parameters(
            "127.0.0.1:9",
            chunksize="6291456",
            secure="false",
            storageclass="reduced_redundancy",
            encrypt="true",
            keyid="k",
        )
    )
    assert values.chunksize == 6 * MiB
    assert values.regionendpoint == "http://127.0.0.1:9"  # secure: false picks the scheme
    assert values.storageclass == "REDUCED_REDUNDANCY"
    assert values.path_style  # as Go 2.8 with a regionendpoint
    assert not parse_parameters(parameters(moto_s3, forcepathstyle=False)).path_style
    assert create("s3aws", parameters(moto_s3)).name == "s3aws"


def test_listed_times_are_read_as_botocore_reads_them(driver: StorageDriver, bucket: Any) -> None:
    """The standard library reads the times in listings (ours is set on the driver's botocore
    session); the instants are botocore's own, and header dates still go to botocore."""
    from botocore.utils import parse_timestamp

    from distribution.storage.driver.s3 import _timestamp

    for text in ("2026-12-06T05:00:00.000Z", "2026-12-06T05:00:00Z", "2026-12-06T05:00:00.5Z"):
        assert _timestamp(text) == parse_timestamp(text)
        assert _timestamp(text).utcoffset() == timedelta(0)
    http_date = "Sun, 06 Dec 2026 05:00:00 GMT"
    assert _timestamp(http_date) == parse_timestamp(http_date)
    with driver.writer("/times/data") as w:
        w.write(b"in progress")
    (upload,) = _uploads(bucket, "own-tests/times/data")
    assert driver.stat("/times/data").mtime == upload["Initiated"]
    driver.put_content("/times/file", b"x")
    (listed,) = driver.files("/times")
    (found,) = bucket.list_objects_v2(Bucket=BUCKET, Prefix="own-tests/times/")["Contents"]
    assert listed.mtime == found["LastModified"]  # the test's client: botocore's parser
    driver.delete("/times")


def test_every_parameter_as_a_registry_variable() -> None:
    """``REGISTRY_STORAGE_S3_*`` over the image's filesystem default, as Go applies them."""
    from distribution import config as config_module
    from distribution.storage.driver.s3 import parse_parameters

    environ = {
        "REGISTRY_STORAGE": "s3",
        "REGISTRY_STORAGE_S3_ACCESSKEY": "AKIAEXAMPLE",
        "REGISTRY_STORAGE_S3_SECRETKEY": "secret",
        "REGISTRY_STORAGE_S3_SESSIONTOKEN": "token",
        "REGISTRY_STORAGE_S3_REGION": "eu-west-1",
        "REGISTRY_STORAGE_S3_REGIONENDPOINT": "https://s3.example.test",
        "REGISTRY_STORAGE_S3_FORCEPATHSTYLE": "false",
        "REGISTRY_STORAGE_S3_BUCKET": "images",
        "REGISTRY_STORAGE_S3_ENCRYPT": "true",
        "REGISTRY_STORAGE_S3_KEYID": "kms-key",
        "REGISTRY_STORAGE_S3_SECURE": "true",
        "REGISTRY_STORAGE_S3_SKIPVERIFY": "true",
        "REGISTRY_STORAGE_S3_V4AUTH": "true",
        "REGISTRY_STORAGE_S3_CHUNKSIZE": "20971520",
        "REGISTRY_STORAGE_S3_MULTIPARTCOPYCHUNKSIZE": "67108864",
        "REGISTRY_STORAGE_S3_MULTIPARTCOPYMAXCONCURRENCY": "8",
        "REGISTRY_STORAGE_S3_MULTIPARTCOPYTHRESHOLDSIZE": "0",
        "REGISTRY_STORAGE_S3_ROOTDIRECTORY": "/registry",
        "REGISTRY_STORAGE_S3_STORAGECLASS": "STANDARD_IA",
        "REGISTRY_STORAGE_S3_OBJECTACL": "bucket-owner-full-control",
        "REGISTRY_STORAGE_S3_USERAGENT": "my-registry",
        "REGISTRY_STORAGE_S3_USEDUALSTACK": "true",
        "REGISTRY_STORAGE_S3_ACCELERATE": "false",
        "REGISTRY_STORAGE_S3_USEFIPSENDPOINT": "false",
        "REGISTRY_STORAGE_S3_LOGLEVEL": "debug",
        "REGISTRY_STORAGE_S3_REDIRECTENDPOINT": "https://cdn.example.test",
    }
    config = config_module.load(None, environ)
    assert config.storage.driver == "s3"
    values = parse_parameters(config.storage.parameters)
    assert (values.accesskey, values.secretkey, values.sessiontoken) == (
        "AKIAEXAMPLE",
        "secret",
        "token",
    )
    assert (values.region, values.regionendpoint, values.bucket) == (
        "eu-west-1",
        "https://s3.example.test",
        "images",
    )
    assert values.forcepathstyle is False and not values.path_style
    assert values.encrypt and values.keyid == "kms-key" and values.skipverify and values.v4auth
    assert (values.chunksize, values.multipartcopychunksize) == (20 * MiB, 64 * MiB)
    assert (values.multipartcopymaxconcurrency, values.multipartcopythresholdsize) == (8, 0)
    assert (values.rootdirectory, values.storageclass, values.objectacl) == (
        "/registry",
        "STANDARD_IA",
        "bucket-owner-full-control",
    )
    assert (values.useragent, values.usedualstack, values.accelerate) == (
        "my-registry",
        True,
        False,
    )
    assert (values.loglevel, values.redirectendpoint) == ("debug", "https://cdn.example.test")


def test_a_download_that_breaks_off_is_resumed(driver: StorageDriver) -> None:
    """The connection under a reader is cut halfway: the rest comes from a ranged GET."""
    data = random.Random(12).randbytes(3 * MiB)
    driver.put_content("/cut", data)
    with driver.reader("/cut") as reader:
        first = reader.read(MiB)
        reader._body._raw_stream.release_conn()  # type: ignore[attr-defined]
        reader._body.close()  # type: ignore[attr-defined]
        rest = reader.read()
    assert first + rest == data
    driver.delete("/cut")


def test_delete_objects_carries_content_md5(driver: StorageDriver) -> None:
    """Stores that require Content-MD5 on DeleteObjects (older MinIO, some Ceph, Dell ECS)
    get it, as from Go's SDK, and no CRC32 header: the headers the request was sent with."""
    sent: list[Any] = []
    client = driver.driver._client  # type: ignore[attr-defined]  # behind CheckedDriver
    client.meta.events.register(
        "before-send.s3.DeleteObjects", lambda request, **_: sent.append(request)
    )
    driver.put_content("/md5/a", b"a")
    driver.put_content("/md5/b", b"b")
    driver.delete("/md5")
    (request,) = sent
    expected = base64.b64encode(hashlib.md5(request.body).digest())
    assert request.headers["Content-MD5"] == expected  # as sent: bytes
    assert not [name for name in request.headers if name.lower().startswith("x-amz-checksum-")]
    with pytest.raises(PathNotFoundError):
        driver.stat("/md5")


@pytest.mark.parametrize(
    ("piece", "failing"), [(MiB, 1), (4 * CHUNK, 2)], ids=["small-writes", "one-large-write"]
)
def test_a_part_that_fails_loses_no_byte(driver: StorageDriver, piece: int, failing: int) -> None:
    """A part upload fails once (the connection refused, past botocore's retries): the
    write raises, the size counts only what was kept, and writing on from there, closing,
    resuming and committing stores the content byte for byte."""
    data = random.Random(14).randbytes(4 * CHUNK + 321)
    calls = itertools.count(1)

    def fail(**_: Any) -> None:
        if next(calls) == failing:
            raise botocore.exceptions.EndpointConnectionError(endpoint_url="injected")

    client = driver.driver._client  # type: ignore[attr-defined]  # behind CheckedDriver
    client.meta.events.register("before-call.s3.UploadPart", fail)
    failures = 0
    with driver.writer("/failing/data") as w:
        while w.size < len(data):
            try:
                w.write(data[w.size : w.size + piece])
            except StorageDriverError:
                failures += 1
    assert failures == 1
    with driver.writer("/failing/data", append=True) as w:
        assert w.size == len(data)
        w.commit()
    assert driver.get_content("/failing/data") == data
    driver.delete("/failing")


@pytest.mark.parametrize(
    ("overrides", "host"),
    [
        (
            {"regionendpoint": None, "region": "ap-east-1"},
            "https://registry.s3.ap-east-1.amazonaws.com/",
        ),
        (
            {"regionendpoint": "https://s3.example.test", "forcepathstyle": False},
            "https://registry.s3.example.test/",
        ),
        ({"regionendpoint": "https://s3.example.test"}, f"https://s3.example.test/{BUCKET}/"),
        (
            {"regionendpoint": None, "region": "eu-west-1", "forcepathstyle": True},
            f"https://s3.eu-west-1.amazonaws.com/{BUCKET}/",
        ),
        (
            {"regionendpoint": None, "region": "eu-west-1", "bucket": "my.registry"},
            "https://s3.eu-west-1.amazonaws.com/my.registry/",
        ),
    ],
    ids=[
        "aws-regional",
        "forcepathstyle-false",
        "regionendpoint-path",
        "forcepathstyle-true",
        "dotted-bucket",
    ],
)
def test_addressing_follows_forcepathstyle(overrides: dict[str, Any], host: str) -> None:
    """Virtual-hosted (at the bucket's regional host on AWS) unless path style is asked for
    (``forcepathstyle``, or unset with a ``regionendpoint``, as Go 2.8) or the bucket cannot
    be a host name: the URLs of a driver's signed redirects, made without a request."""
    settings = {**parameters("http://127.0.0.1:1"), **overrides}
    driver = S3Driver(parse_parameters({k: v for k, v in settings.items() if v is not None}))
    url = driver.redirect_url("/blob", "GET")
    assert url is not None and url.startswith(f"{host}registry/blob?")


def test_delete_deletes_each_listed_page_as_it_comes(moto_s3: str) -> None:
    """A folder of 1,001 objects: the first thousand are deleted before the next page is
    listed, as Go does, not every key listed into memory first."""
    driver = create("s3", parameters(moto_s3, rootdirectory="own-tests"))
    bucket = client(moto_s3)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: driver.put_content(f"/pages/{i:04d}", b"x"), range(1001)))
    calls: list[str] = []
    client_ = driver.driver._client  # type: ignore[attr-defined]  # behind CheckedDriver
    client_.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    driver.delete("/pages")
    pages = [name for name in calls if name in ("ListObjectsV2", "DeleteObjects")]
    assert pages == ["ListObjectsV2", "DeleteObjects", "ListObjectsV2", "DeleteObjects"]
    assert bucket.list_objects_v2(Bucket=BUCKET, Prefix="own-tests/pages/")["KeyCount"] == 0
