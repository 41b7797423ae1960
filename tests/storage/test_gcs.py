"""The GCS driver against fake-gcs-server: the shared suite, then what only GCS shows."""

from __future__ import annotations

import urllib.request
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from distribution.storage.driver import (
    InvalidParameterError,
    StorageDriver,
    StorageDriverError,
    create,
)
from distribution.storage.driver.gcs import SESSION_CONTENT_TYPE
from tests.storage.driver_suite import DriverSuite
from tests.storage.gcs_emulator import BUCKET, gcs_emulator

__all__ = ["gcs_emulator"]

KiB = 1024
CHUNK = 1024 * KiB


class TestGCSDriver(DriverSuite):
    driver_name = "gcs"
    #: fake-gcs-server's work per chunk grows with what the upload holds: 256 MiB in chunks of
    #: 1 MiB kept it busy 71-75 s a test, in chunks of 16 MiB (Go's default) 10-12 s.
    large_write_parameters: ClassVar[dict[str, Any]] = {"chunksize": 16 * CHUNK}

    @pytest.fixture
    def driver_parameters(self, gcs_emulator: str) -> dict[str, Any]:
        return {"bucket": BUCKET, "rootdirectory": "/registry", "chunksize": CHUNK}


@pytest.fixture
def bucket(gcs_emulator: str) -> storage.Bucket:
    return storage.Client(project="test", credentials=AnonymousCredentials()).bucket(BUCKET)


@pytest.fixture
def driver(gcs_emulator: str) -> StorageDriver:
    return create("gcs", {"bucket": BUCKET, "rootdirectory": "own-tests", "chunksize": CHUNK})


def test_objects_live_below_rootdirectory(driver: StorageDriver, bucket: storage.Bucket) -> None:
    driver.put_content("/docker/registry/v2/link", b"sha256:abc")
    blob = bucket.get_blob("own-tests/docker/registry/v2/link")
    assert blob is not None and blob.download_as_bytes() == b"sha256:abc"
    driver.delete("/docker")


def test_closed_upload_is_a_session_object_keeping_its_tail(
    driver: StorageDriver, bucket: storage.Bucket
) -> None:
    data = bytes(range(256)) * (5 * CHUNK // 256 // 2)  # 2.5 chunks
    with driver.writer("/upload/data") as w:
        w.write(data)
    blob = bucket.get_blob("own-tests/upload/data")
    assert blob is not None and blob.content_type == SESSION_CONTENT_TYPE
    sent = int(blob.metadata["Offset"])
    assert sent % (256 * KiB) == 0 and blob.size == len(data) - sent < 256 * KiB
    assert blob.metadata["Session-URI"].startswith("http")
    assert driver.stat("/upload/data").size == len(data)
    with driver.writer("/upload/data", append=True) as w:
        w.write(b"end")
        w.commit()
    assert driver.get_content("/upload/data") == data + b"end"
    driver.delete("/upload")


def test_a_small_closed_upload_is_a_session_object_as_go_writes_it(
    driver: StorageDriver, bucket: storage.Bucket
) -> None:
    """Under 256 KiB no session has started; Go 2.8 still resumes only a session object."""
    with driver.writer("/small/data") as w:
        w.write(b"first")
    blob = bucket.get_blob("own-tests/small/data")
    assert blob is not None and blob.content_type == SESSION_CONTENT_TYPE
    assert blob.metadata == {"Session-URI": "", "Offset": "0"}
    assert blob.download_as_bytes() == b"first"
    assert driver.stat("/small/data").size == 5
    with driver.writer("/small/data", append=True) as w:
        w.write(b" second")
        w.commit()
    assert driver.get_content("/small/data") == b"first second"
    driver.delete("/small")


def test_a_resumed_writer_closed_unwritten_leaves_the_session_object(
    driver: StorageDriver, bucket: storage.Bucket
) -> None:
    """A PATCH refused at its offset opened the writer: nothing may be written back."""
    with driver.writer("/untouched/data") as w:
        w.write(b"x" * (CHUNK + 5))
    before = bucket.get_blob("own-tests/untouched/data")
    with driver.writer("/untouched/data", append=True) as w:
        assert w.size == CHUNK + 5
    after = bucket.get_blob("own-tests/untouched/data")
    assert (after.generation, after.metadata) == (before.generation, before.metadata)
    driver.delete("/untouched")


@pytest.mark.parametrize("offset", ["0", ""])
def test_resumes_a_session_object_go_wrote_before_any_session(
    driver: StorageDriver, bucket: storage.Bucket, offset: str
) -> None:
    """Go's Close writes ``Session-URI: ""`` (and v3 may leave ``Offset`` empty)."""
    blob = bucket.blob("own-tests/from-go/data")
    blob.metadata = {"Session-URI": "", "Offset": offset}
    blob.upload_from_string(b"go wrote this", content_type=SESSION_CONTENT_TYPE)
    tail = b"-" * (CHUNK + 7)  # enough to start a session of our own
    with driver.writer("/from-go/data", append=True) as w:
        assert w.size == 13
        w.write(tail)
        w.commit()
    assert driver.get_content("/from-go/data") == b"go wrote this" + tail
    driver.delete("/from-go")


def test_a_corrupt_session_object_is_a_driver_error(
    driver: StorageDriver, bucket: storage.Bucket
) -> None:
    blob = bucket.blob("own-tests/corrupt/data")
    blob.metadata = {"Session-URI": "", "Offset": "nine"}
    blob.upload_from_string(b"x", content_type=SESSION_CONTENT_TYPE)
    with pytest.raises(StorageDriverError, match="bad Offset"):
        driver.writer("/corrupt/data", append=True)
    driver.delete("/corrupt")


def test_a_folder_placeholder_is_not_listed(driver: StorageDriver, bucket: storage.Bucket) -> None:
    """The console's "create folder" leaves an object named like the prefix."""
    bucket.blob("own-tests/folder/").upload_from_string(b"")
    driver.put_content("/folder/file", b"x")
    assert driver.list("/folder") == ["/folder/file"]
    driver.delete("/folder")


def test_appending_to_a_large_plain_object_streams_it(driver: StorageDriver) -> None:
    data = b"x" * (3 * CHUNK + 5)
    driver.put_content("/big", data)
    with driver.writer("/big", append=True) as w:
        assert w.size == len(data)
        w.write(b"more")
        w.commit()
    assert driver.get_content("/big") == data + b"more"
    driver.delete("/big")


def test_anonymous_credentials_do_not_redirect(driver: StorageDriver) -> None:
    driver.put_content("/blob", b"x")
    assert driver.redirect_url("/blob", "GET") is None
    driver.delete("/blob")


def test_service_account_credentials_give_a_signed_url(
    gcs_emulator: str, driver: StorageDriver
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    credentials = {
        "type": "service_account",
        "project_id": "test",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "registry@test.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    signing = create(
        "gcs", {"bucket": BUCKET, "rootdirectory": "own-tests", "credentials": credentials}
    )
    driver.put_content("/signed", b"content")
    url = signing.redirect_url("/signed", "GET")
    assert url is not None and url.startswith(gcs_emulator)
    assert "X-Goog-Signature=" in url and "X-Goog-Expires=1200" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"content"
    assert signing.redirect_url("/signed", "PUT") is None
    driver.delete("/signed")


@pytest.mark.parametrize(
    ("parameters", "parameter"),
    [
        ({}, "bucket"),
        ({"bucket": BUCKET, "chunksize": 1000}, "chunksize"),
        ({"bucket": BUCKET, "chunksize": "big"}, "chunksize"),
        ({"bucket": BUCKET, "chunksize": 0}, "chunksize"),
        ({"bucket": BUCKET, "keyfile": "/nonexistent.json"}, "keyfile"),
        ({"bucket": BUCKET, "credentials": {"type": "service_account"}}, "credentials"),
        ({"bucket": BUCKET, "keyfile": "/k.json", "credentials": {"a": 1}}, "credentials"),
    ],
)
def test_bad_parameters(gcs_emulator: str, parameters: dict[str, Any], parameter: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("gcs", parameters)
    assert info.value.parameter == parameter


def test_chunksize_accepts_a_numeric_string(gcs_emulator: str) -> None:
    create("gcs", {"bucket": BUCKET, "chunksize": str(512 * KiB)})
