"""A registry app on every driver (the cloud ones on their emulators), with what each stores
listed independently of the registry: ``du`` on the filesystem, the SDK's blob list on GCS and
Azure."""

from __future__ import annotations

import itertools
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from distribution.api import context
from distribution.storage.driver import StorageDriver
from tests.conftest import make_app
from tests.gc.content import Api, flask_send
from tests.storage import azure_emulator as azure
from tests.storage.azure_emulator import azure_emulator
from tests.storage.gcs_emulator import BUCKET, gcs_emulator

__all__ = ["azure_emulator", "gcs_emulator"]

DRIVERS = ["inmemory", "filesystem", "gcs", "azure"]
BLOBS = "docker/registry/v2/blobs/"
_roots = itertools.count()

CONFIG = """
version: 0.1
storage:
{storage}
  delete: {{enabled: true}}
  maintenance:
    uploadpurging: {{enabled: false}}
{extra}
http:
  secret: usage-secret
{http}
"""


@dataclass
class Env:
    """An app on one driver; ``stored()`` lists ``blobs/`` with the driver's own tools."""

    driver_name: str
    app: Flask
    api: Api
    stored: Callable[[], dict[str, int]] | None

    @property
    def driver(self) -> StorageDriver:
        return self.app.extensions[context.EXTENSION].driver


MakeEnv = Callable[..., Env]


@pytest.fixture(params=DRIVERS)
def make_env(request: pytest.FixtureRequest, tmp_path: Path) -> MakeEnv:
    """``make_env(extra="", http="")``: an app on the parametrised driver, ``extra`` under
    storage, ``http`` under http."""
    name = request.param
    root = f"usage-{next(_roots)}"
    if name == "inmemory":
        storage, stored = "  inmemory: {}", None
    elif name == "filesystem":
        folder = tmp_path / "root"
        storage, stored = f"  filesystem: {{rootdirectory: {folder}}}", lambda: du(folder)
    elif name == "gcs":
        request.getfixturevalue("gcs_emulator")
        storage = f"  gcs: {{bucket: {BUCKET}, rootdirectory: /{root}, chunksize: 262144}}"
        stored = lambda: gcs_blobs(root)  # noqa: E731
    else:
        url = request.getfixturevalue("azure_emulator")
        storage = (
            f"  azure: {{accountname: {azure.ACCOUNT}, accountkey: '{azure.KEY}', "
            f"container: {azure.CONTAINER}, serviceurl: '{url}', rootdirectory: /{root}}}"
        )
        stored = lambda: azure_blobs(url, root)  # noqa: E731

    def make(extra: str = "", http: str = "") -> Env:
        app = make_app(CONFIG.format(storage=storage, extra=extra, http=http))
        return Env(name, app, Api(flask_send(app.test_client())), stored)

    return make


@pytest.fixture
def env(make_env: MakeEnv) -> Env:
    return make_env()


def du(root: Path) -> dict[str, int]:
    """Every blob's bytes as ``du --apparent-size`` counts them."""
    files = sorted((root / BLOBS).glob("*/*/*/data"))
    if not files:
        return {}
    out = subprocess.run(
        ["du", "--apparent-size", "--block-size=1", *map(str, files)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = {}
    for line in out.splitlines():
        size, path = line.split("\t", 1)
        parts = Path(path).parts
        found[f"{parts[-4]}:{parts[-2]}"] = int(size)
    return found


def gcs_blobs(root: str) -> dict[str, int]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return _by_digest(
        (blob.name, blob.size) for blob in client.list_blobs(BUCKET, prefix=f"{root}/{BLOBS}")
    )


def azure_blobs(url: str, root: str) -> dict[str, int]:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        url, credential={"account_name": azure.ACCOUNT, "account_key": azure.KEY}
    )
    container = service.get_container_client(azure.CONTAINER)
    return _by_digest(
        (blob.name, blob.size) for blob in container.list_blobs(name_starts_with=f"{root}/{BLOBS}")
    )


def _by_digest(objects) -> dict[str, int]:
    found = {}
    for name, size in objects:
        parts = name.split("/")
        if parts[-1] == "data":
            found[f"{parts[-4]}:{parts[-2]}"] = size
    return found
