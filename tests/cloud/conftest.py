"""Fixtures for the registry on cloud storage: emulators, ``registry serve`` on each driver.

The shared emulators are session-scoped (each test works in its own ``rootdirectory``); a
fault-injection test starts its own, which it stops and restarts on the same port and data dir.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import RegistryProcess
from tests.e2e.harness import children
from tests.storage import azure_emulator as azure
from tests.storage import gcs_emulator as gcs
from tests.storage import s3_emulator as s3
from tests.storage.azure_emulator import azure_emulator
from tests.storage.gcs_emulator import gcs_emulator

__all__ = ["azure_emulator", "gcs_emulator"]

DRIVERS = ["gcs", "azure", "s3"]
#: The session emulator each driver runs against: S3 on Ceph's gateway, which checks signatures.
EMULATORS = {"gcs": "gcs_emulator", "azure": "azure_emulator", "s3": "ceph_s3"}
SECRET = "cloud-test-secret"
#: The smallest GCS chunk, so test-sized blobs go through resumable upload sessions.
GCS_CHUNK = 256 * 1024
_roots = itertools.count()


class CloudRegistry:
    """A started ``registry serve`` seen as the e2e helpers expect a server to look."""

    def __init__(self, driver: str, process: RegistryProcess) -> None:
        self.driver = driver
        self.process = process
        self.url = process.url
        self.netloc = urlsplit(process.url).netloc
        self.port = int(self.netloc.rsplit(":", 1)[1])

    def __repr__(self) -> str:
        return f"<registry on cloud storage {self.url}>"

    def rewrite(self, url: str) -> str:
        """``url`` (absolute or relative) aimed at this registry."""
        parts = urlsplit(url)
        return urlunsplit(("http", self.netloc, parts.path, parts.query, ""))

    def serving_pids(self) -> set[int]:
        """gunicorn's workers."""
        return children(self.process.proc.pid)


def storage_section(driver: str, emulator_url: str, root: str, keyfile: Path) -> str:
    """The ``storage:`` driver entry for ``driver`` on an emulator, short retries."""
    if driver == "gcs":
        return f"""\
  gcs:
    bucket: {gcs.BUCKET}
    rootdirectory: /{root}
    chunksize: {GCS_CHUNK}
    keyfile: {keyfile}
    max_retries: 1
    retry_delay: 10ms"""
    if driver == "s3":
        return f"""\
  s3:
    region: {s3.REGION}
    regionendpoint: {emulator_url}
    bucket: {s3.BUCKET}
    accesskey: {s3.ACCESS_KEY}
    secretkey: {s3.SECRET_KEY}
    rootdirectory: /{root}
    max_retries: 1"""
    return f"""\
  azure:
    accountname: {azure.ACCOUNT}
    accountkey: {azure.KEY}
    container: {azure.CONTAINER}
    serviceurl: {emulator_url}
    rootdirectory: /{root}
    max_retries: 1
    retry_delay: 10ms"""


def config_text(storage: str) -> str:
    return f"""\
version: 0.1
log:
  level: warn
storage:
{storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  secret: {SECRET}
"""


@pytest.fixture(scope="session")
def service_account_keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service-account key made here: enough to sign GCS URLs (the emulator checks none)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path_factory.mktemp("gcs-key") / "key.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "1",
                "private_key": pem,
                "client_email": "registry@test.iam.gserviceaccount.com",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


StartCloudRegistry = Callable[[str, str], CloudRegistry]


@pytest.fixture
def start_cloud_registry(
    start_registry: Callable[..., RegistryProcess], service_account_keyfile: Path
) -> StartCloudRegistry:
    """``start_cloud_registry(driver, emulator_url)``: ``registry serve`` (two workers) on a
    fresh root directory of the emulator at ``emulator_url``."""

    def start(driver: str, emulator_url: str) -> CloudRegistry:
        storage = storage_section(
            driver, emulator_url, f"cloud-{os.getpid()}-{next(_roots)}", service_account_keyfile
        )
        env = {"STORAGE_EMULATOR_HOST": emulator_url} if driver == "gcs" else {}
        registry = CloudRegistry(driver, start_registry(config_text(storage), env))
        registry.process.wait_ready(serving=lambda: len(registry.serving_pids()) >= 2)
        return registry

    return start


@pytest.fixture(params=DRIVERS)
def cloud_registry(
    request: pytest.FixtureRequest, start_cloud_registry: StartCloudRegistry
) -> Iterator[CloudRegistry]:
    """Our registry on each driver, against the session's emulator; its log must hold no
    traceback."""
    driver = request.param
    url = request.getfixturevalue(EMULATORS[driver])
    registry = start_cloud_registry(driver, url)
    yield registry
    assert "Traceback" not in registry.process.log, registry.process.log
