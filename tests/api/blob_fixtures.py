"""Fixtures and helpers shared by the blob and upload API tests.

Every API test runs once per built-in driver (inmemory, and filesystem under ``tmp_path``),
as the driver suite does for drivers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from distribution.storage.driver import StorageDriver
from tests.conftest import make_app

SECRET = "test-secret"


def config_text(storage: str, delete: bool = True, readonly: bool = False, http: str = "") -> str:
    return f"""
version: 0.1
storage:
  {storage}
  delete: {{enabled: {str(delete).lower()}}}
  maintenance: {{readonly: {{enabled: {str(readonly).lower()}}}}}
http:
  secret: {SECRET}
  {http}
"""


@pytest.fixture(params=["inmemory", "filesystem"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``storage`` section's driver line for each built-in driver."""
    if request.param == "inmemory":
        return "inmemory: {}"
    return f"filesystem: {{rootdirectory: '{tmp_path / 'root'}'}}"


@pytest.fixture
def make_client(storage: str) -> Callable[..., FlaskClient]:
    """``make_client(delete=True, readonly=False, http="")``: a client on a fresh app."""

    def make(**options: object) -> FlaskClient:
        return make_app(config_text(storage, **options)).test_client()

    return make


@pytest.fixture
def app(storage: str) -> Flask:
    return make_app(config_text(storage))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def driver(app: Flask) -> StorageDriver:
    return app.extensions["registry"].driver


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_code(response: TestResponse) -> str:
    return response.get_json()["errors"][0]["code"]


def state_of(location: str) -> str:
    return parse_qs(urlsplit(location).query)["_state"][0]


def path_of(location: str) -> str:
    """The path and query of a ``Location``, to hand back to the test client."""
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def start_upload(client: FlaskClient, name: str) -> str:
    response = client.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.data
    return path_of(response.headers["Location"])


def push_blob(client: FlaskClient, name: str, data: bytes) -> str:
    """Upload ``data`` into ``name`` (POST, then PUT with the body); its digest."""
    digest = digest_of(data)
    response = client.put(f"{start_upload(client, name)}&digest={digest}", data=data)
    assert response.status_code == 201, response.data
    return digest
