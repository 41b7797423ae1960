"""The Azure driver against azurite: the shared suite, then what only Azure shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from azure.storage.blob import BlobType, ContainerClient

from distribution.storage.driver import (
    InvalidParameterError,
    StorageDriver,
    StorageDriverError,
    create,
)
from tests.storage.azure_emulator import ACCOUNT, CONTAINER, KEY, azure_emulator
from tests.storage.driver_suite import DriverSuite

__all__ = ["azure_emulator"]


def parameters(url: str, **overrides: Any) -> dict[str, Any]:
    return {
        "accountname": ACCOUNT,
        "accountkey": KEY,
        "container": CONTAINER,
        "serviceurl": url,
        "rootdirectory": "/registry",
        **overrides,
    }


class TestAzureDriver(DriverSuite):
    driver_name = "azure"

    @pytest.fixture
    def driver_parameters(self, azure_emulator: str) -> dict[str, Any]:
        return parameters(azure_emulator)


@pytest.fixture
def container(azure_emulator: str) -> ContainerClient:
    credential = {"account_name": ACCOUNT, "account_key": KEY}
    return ContainerClient(azure_emulator, CONTAINER, credential=credential)


@pytest.fixture
def driver(azure_emulator: str) -> StorageDriver:
    return create("azure", parameters(azure_emulator, rootdirectory="own-tests"))


def test_blobs_live_below_rootdirectory(driver: StorageDriver, container: ContainerClient) -> None:
    driver.put_content("/docker/registry/v2/link", b"sha256:abc")
    blob = container.get_blob_client("own-tests/docker/registry/v2/link")
    assert blob.download_blob().readall() == b"sha256:abc"
    assert blob.get_blob_properties().blob_type == BlobType.BLOCKBLOB
    driver.delete("/docker")


def test_writers_write_append_blobs_go_can_resume(
    driver: StorageDriver, container: ContainerClient
) -> None:
    with driver.writer("/upload/data") as w:
        w.write(b"x" * (5 * 1024 * 1024))
    blob = container.get_blob_client("own-tests/upload/data")
    properties = blob.get_blob_properties()
    assert properties.blob_type == BlobType.APPENDBLOB
    assert properties.size == 5 * 1024 * 1024
    driver.delete("/upload")


def test_redirect_url_is_a_working_read_only_sas(driver: StorageDriver) -> None:
    driver.put_content("/blob", b"signed content")
    url = driver.redirect_url("/blob", "GET")
    assert url is not None and "sig=" in url and "sp=r" in url
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"signed content"
    assert driver.redirect_url("/blob", "PUT") is None
    driver.delete("/blob")


def test_missing_container_fails_at_start(azure_emulator: str) -> None:
    with pytest.raises(StorageDriverError, match="container 'missing' does not exist"):
        create("azure", parameters(azure_emulator, container="missing"))


def test_bad_key_fails_at_start(azure_emulator: str) -> None:
    bad = "A" * 86 + "=="
    with pytest.raises(StorageDriverError, match="credentials refused"):
        create("azure", parameters(azure_emulator, accountkey=bad))


@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"accountname": ""}, "accountname"),
        ({"container": None}, "container"),
        ({"accountkey": ""}, "accountkey"),
        ({"credentials": {"type": "magic"}}, "credentials.type"),
        ({"max_retries": "x"}, "max_retries"),
        ({"skipverify": "yes"}, "skipverify"),
        ({"retry_delay": "soon"}, "retry_delay"),
        ({"serviceurl": "ftp://x"}, "serviceurl"),
    ],
)
def test_bad_parameters(overrides: dict[str, Any], parameter: str) -> None:
    base = parameters("http://127.0.0.1:1/x", credentials={"type": "shared_key"})
    with pytest.raises(InvalidParameterError) as info:
        create("azure", {**base, **overrides})
    assert info.value.parameter == parameter


def test_go_durations() -> None:
    from distribution.storage.driver.azure import _duration

    assert _duration("retry_delay", "100ms") == pytest.approx(0.1)
    assert _duration("retry_delay", "1m30s") == pytest.approx(90)
    assert _duration("retry_delay", 2) == 2.0


def test_put_content_replaces_an_append_blob(
    driver: StorageDriver, container: ContainerClient
) -> None:
    with driver.writer("/link") as w:
        w.write(b"from a writer")
    driver.put_content("/link", b"replaced")
    blob = container.get_blob_client("own-tests/link")
    assert blob.get_blob_properties().blob_type == BlobType.BLOCKBLOB
    assert driver.get_content("/link") == b"replaced"
    driver.delete("/link")


def test_append_retried_after_it_landed_is_not_duplicated(
    driver: StorageDriver, container: ContainerClient
) -> None:
    w = driver.writer("/upload/data")
    # As if the first try reached the service but its answer was lost.
    container.get_blob_client("own-tests/upload/data").append_block(b"abc")
    w.write(b"abc")
    w.commit()
    assert driver.get_content("/upload/data") == b"abc"
    w = driver.writer("/upload/data", append=True)
    container.get_blob_client("own-tests/upload/data").append_block(b"other")
    w.write(b"def")
    with pytest.raises(StorageDriverError, match="expected 6"):
        w.commit()
    driver.delete("/upload")


def test_serve_refuses_a_missing_container_in_one_line(azure_emulator: str, tmp_path) -> None:
    config = tmp_path / "config.yml"
    settings = parameters(azure_emulator, container="nosuch")
    config.write_text(json.dumps({"version": "0.1", "storage": {"azure": settings}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    result = subprocess.run(
        [sys.executable, "-m", "distribution", "serve", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "registry: configuration error: storage.azure: container 'nosuch' does not exist"
    )
    assert "Traceback" not in result.stderr
