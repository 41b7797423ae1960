"""A registry app on each driver, with helpers that seed content through the storage layer.

Shared by the manifest, tag, catalog and referrers API tests, which bind the ``env`` and
``make_env`` fixtures from here as module globals, where pytest finds them. Layers and configs
are seeded straight into storage (``BlobStore.put`` + ``RepositoryBlobs.link``) so these tests
do not depend on the upload API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from distribution import manifest
from distribution.api import context
from distribution.app import create_app
from distribution.config import parse
from distribution.digest import Digest
from distribution.storage.blobs import RepositoryBlobs
from distribution.storage.registry import Registry

DRIVERS = ["inmemory", "filesystem"]

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = manifest.OCI_LAYER_GZIP
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"

ACCEPT_ALL = ", ".join(sorted(manifest.PUSHABLE))


@dataclass
class Env:
    """A registry app, its test client, and where its filesystem driver (if any) keeps data."""

    app: Flask
    client: FlaskClient
    root: Path | None

    @property
    def registry(self) -> Registry:
        return self.app.extensions[context.EXTENSION]

    def seed_blob(self, name: str, data: bytes) -> dict[str, Any]:
        """Store ``data`` as a blob linked into ``name``; return its descriptor fields."""
        descriptor = self.registry.blobs.put(data)
        RepositoryBlobs(self.registry.blobs, name).link(descriptor.digest)
        return {"digest": str(descriptor.digest), "size": descriptor.size}

    def image(
        self,
        name: str,
        media_type: str = manifest.OCI_MANIFEST,
        layers: int = 1,
        seed: str = "",
        **fields: Any,
    ) -> bytes:
        """An image manifest whose config and layers are seeded into ``name``."""
        oci = media_type == manifest.OCI_MANIFEST
        config = self.seed_blob(name, json.dumps({"seed": seed, "os": "linux"}).encode())
        config["mediaType"] = OCI_CONFIG if oci else DOCKER_CONFIG
        descriptors = []
        for i in range(layers):
            layer = self.seed_blob(name, f"layer {i} of {seed} in {name}".encode())
            layer["mediaType"] = OCI_LAYER if oci else DOCKER_LAYER
            descriptors.append(layer)
        doc = {"schemaVersion": 2, "mediaType": media_type, "config": config}
        doc["layers"] = descriptors
        doc.update(fields)
        return dumps(doc)

    def put(
        self, name: str, ref: str, body: bytes, content_type: str = manifest.OCI_MANIFEST
    ) -> TestResponse:
        return self.client.put(
            f"/v2/{name}/manifests/{ref}", data=body, headers={"Content-Type": content_type}
        )

    def push(
        self, name: str, ref: str, body: bytes, content_type: str = manifest.OCI_MANIFEST
    ) -> str:
        """PUT a manifest that must be accepted; return its digest."""
        response = self.put(name, ref, body, content_type)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.headers["Docker-Content-Digest"]

    def get(self, name: str, ref: str, accept: str | None = ACCEPT_ALL, method: str = "GET"):
        headers = {"Accept": accept} if accept is not None else {}
        return self.client.open(f"/v2/{name}/manifests/{ref}", method=method, headers=headers)


def dumps(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, indent=3).encode()


def digest_of(body: bytes) -> str:
    return str(Digest.of(body))


def config_text(
    driver: str, root: Path, extra: str = "", delete: bool = True, readonly: bool = False
) -> str:
    storage = "inmemory: {}" if driver == "inmemory" else f"filesystem: {{rootdirectory: {root}}}"
    return (
        "version: 0.1\n"
        "storage:\n"
        f"  {storage}\n"
        f"  delete: {{enabled: {str(delete).lower()}}}\n"
        f"  maintenance: {{readonly: {{enabled: {str(readonly).lower()}}}}}\n"
        "http:\n"
        "  secret: test-secret\n"
        f"{extra}"
    )


MakeEnv = Callable[..., Env]


@pytest.fixture(params=DRIVERS)
def make_env(request: pytest.FixtureRequest, tmp_path: Path) -> MakeEnv:
    """``make_env(extra="", delete=True, readonly=False, share=None)``: a registry on this
    test's driver with more config.

    ``extra`` is YAML appended at the top level (``validation:``, ``tags:``...). Each call
    gets its own storage, unless ``share`` names an :class:`Env` whose storage to serve.
    """
    count = 0

    def make(
        extra: str = "", delete: bool = True, readonly: bool = False, share: Env | None = None
    ) -> Env:
        nonlocal count
        count += 1
        root = share.root if share and share.root else tmp_path / f"root-{count}"
        return build_env(request.param, root, extra, delete, readonly, share)

    return make


def build_env(
    driver: str,
    root: Path,
    extra: str = "",
    delete: bool = True,
    readonly: bool = False,
    share: Env | None = None,
) -> Env:
    """A registry on ``driver`` (a filesystem one under ``root``), or on ``share``'s storage."""
    config = parse(config_text(driver, root, extra, delete, readonly), {})
    app = create_app(config, share.registry if share else None)
    app.testing = True
    return Env(app, app.test_client(), root if driver == "filesystem" else None)


@pytest.fixture
def env(make_env: MakeEnv) -> Env:
    """A registry with deletes enabled, on each driver in turn."""
    return make_env()


def error_code(response: TestResponse) -> str:
    """The OCI error code of ``response``, which must carry exactly one error."""
    body = response.get_json()
    assert body is not None and len(body["errors"]) == 1, response.get_data(as_text=True)
    return body["errors"][0]["code"]
