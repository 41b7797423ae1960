"""Fixtures of the web UI's tests: registries with the example's rules, signed-in clients, and
images pushed through the API."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from distribution import manifest
from tests.access.example import section, write_htpasswd
from tests.api import registry_env
from tests.api.registry_env import Env, build_env


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives headless Chromium (deselect with -m 'not browser')"
    )


OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{user}-pw".encode()).decode()


def auth_config(tmp_path: Path, rules: bool = True) -> str:
    """htpasswd with the example's users (password ``<user>-pw``), and its rules."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    text = f"auth: {{htpasswd: {{realm: Registry Realm, path: {htpasswd}}}}}\n"
    return text + (section() if rules else "")


@pytest.fixture(params=registry_env.DRIVERS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    """The example's rules on each driver; ``env.client`` pushes through the API as root."""
    built = build_env(request.param, tmp_path / "root", auth_config(tmp_path))
    built.client.environ_base["HTTP_AUTHORIZATION"] = basic("root")
    built.app.extensions["distribution.ui"].view.background = False
    return built


def csrf(response: TestResponse) -> str:
    """The CSRF token of the first form of a page."""
    found = re.search(r'name="csrf" value="([^"]*)"', response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def sign_in(env: Env, user: str, password: str | None = None) -> FlaskClient:
    """A browser-like client signed in to the UI as ``user``."""
    client = env.app.test_client()
    page = client.get("/ui/sign-in")
    response = client.post(
        "/ui/sign-in",
        data={"username": user, "password": password or f"{user}-pw", "csrf": csrf(page)},
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def push_image(
    env: Env,
    name: str,
    tag: str,
    config: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    layers: int = 1,
    seed: str = "",
    subject: dict[str, Any] | None = None,
    artifact_type: str | None = None,
) -> str:
    """Push an image (its config and layers seeded into storage) by tag; its digest."""
    doc = {"architecture": "amd64", "os": "linux", "created": "2026-03-04T05:06:07.123456789Z"}
    doc |= config or {}
    doc["seed"] = seed or f"{name}:{tag}"
    config_blob = env.seed_blob(name, json.dumps(doc).encode())
    config_blob["mediaType"] = OCI_CONFIG
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": manifest.OCI_MANIFEST,
        "config": config_blob,
        "layers": [
            env.seed_blob(name, f"layer {i} of {doc['seed']}".encode())
            | {"mediaType": manifest.OCI_LAYER_GZIP}
            for i in range(layers)
        ],
    }
    if annotations:
        body["annotations"] = annotations
    if subject:
        body["subject"] = subject
    if artifact_type:
        body["artifactType"] = artifact_type
    return env.push(name, tag, json.dumps(body).encode())


def push_index(env: Env, name: str, tag: str, children: dict[str, str]) -> str:
    """Push an OCI index of the ``{digest: architecture}`` images already in ``name``."""
    entries = []
    for digest, architecture in children.items():
        body = env.get(name, digest).get_data()
        entries.append(
            {
                "mediaType": manifest.OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": architecture, "os": "linux"},
            }
        )
    doc = {"schemaVersion": 2, "mediaType": manifest.OCI_INDEX, "manifests": entries}
    return env.push(name, tag, json.dumps(doc).encode(), manifest.OCI_INDEX)
