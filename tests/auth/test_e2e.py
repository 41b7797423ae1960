"""Real processes: our registry under gunicorn, skopeo, and a token server, over HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import requests

from tests.auth.tokens import ISSUER, SERVICE, Authority, TokenServer
from tests.e2e import images
from tests.e2e.harness import Skopeo

TIMEOUT = 30


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small OCI image on disk, as ``oci:DIR:latest``."""
    directory = tmp_path_factory.mktemp("image")
    img = images.image([images.random_layer(64 * images.KiB, 41), images.random_layer(2000, 42)])
    images.write_oci_layout(directory, {"latest": img})
    return f"oci:{directory}:latest"


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo-home")


def entry(user: str, password: str) -> bytes:
    return f"{user}:".encode() + bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)) + b"\n"


def htpasswd_config(root: Path, path: Path) -> str:
    return f"""
version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http:
  secret: auth-e2e
auth:
  htpasswd:
    realm: Registry Realm
    path: {path}
"""


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def statuses(url: str, headers: dict[str, str], count: int = 8) -> set[int]:
    """Status codes of ``count`` fresh connections: they spread over both workers."""
    return {requests.get(url, headers=headers, timeout=TIMEOUT).status_code for _ in range(count)}


def test_skopeo_push_and_pull_with_htpasswd(tmp_path, start_registry, skopeo, layout):
    path = tmp_path / "htpasswd"
    path.write_bytes(entry("alice", "wonderland"))
    registry = start_registry(htpasswd_config(tmp_path / "data", path))
    ref = f"docker://{registry.url.removeprefix('http://')}/team/app:v1"

    skopeo.copy(layout, ref, "--dest-creds", "alice:wonderland")
    inspected = skopeo.run("inspect", "--tls-verify=false", "--creds", "alice:wonderland", ref)
    assert b'"Digest"' in inspected.stdout

    wrong = skopeo.run(
        "copy", "--dest-tls-verify=false", "--dest-creds", "alice:wrong", layout, ref, check=False
    )
    assert wrong.returncode != 0
    assert b"unauthorized: authentication required" in wrong.stderr
    anonymous = skopeo.run("inspect", "--tls-verify=false", ref, check=False)
    assert anonymous.returncode != 0
    # Each refusal was audited, with the user and never the password.
    refusals = [line for line in registry.log.splitlines() if "authorization failed" in line]
    assert any("level=warning" in line and "auth.user.name=alice" in line for line in refusals)
    assert all("wrong" not in line for line in refusals)


def test_raw_requests_against_gunicorn(tmp_path, start_registry):
    path = tmp_path / "htpasswd"
    path.write_bytes(entry("alice", "pw"))
    registry = start_registry(htpasswd_config(tmp_path / "data", path))
    assert requests.get(f"{registry.url}/", timeout=TIMEOUT).status_code == 200
    for header in [
        "Basic %%%garbage%%%",
        "Basic " + "QUFB" * 2500,  # above gunicorn's default 8190-byte header limit
        "Basic " + "QUFB" * 12000,  # above what the registry reads
        "Bearer abc.def.ghi",
        "Basic",
        "basic " + base64.b64encode(b"alice:nope").decode(),
    ]:
        response = requests.get(
            f"{registry.url}/v2/app/tags/list", headers={"Authorization": header}, timeout=TIMEOUT
        )
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
    ok = requests.get(f"{registry.url}/v2/", headers=basic("alice", "pw"), timeout=TIMEOUT)
    assert ok.status_code == 200


def test_htpasswd_reload_while_running(tmp_path, start_registry):
    path = tmp_path / "htpasswd"
    path.write_bytes(entry("alice", "one"))
    registry = start_registry(htpasswd_config(tmp_path / "data", path))
    url = f"{registry.url}/v2/"
    assert statuses(url, basic("alice", "one")) == {200}
    assert statuses(url, basic("bob", "two")) == {401}

    path.write_bytes(entry("alice", "one") + entry("bob", "two"))
    assert statuses(url, basic("bob", "two")) == {200}

    # Replaced atomically, as editors and config management do: alice is gone at once,
    # although her credentials sit in both workers' caches.
    replacement = tmp_path / "htpasswd.new"
    replacement.write_bytes(entry("bob", "two"))
    replacement.replace(path)
    assert statuses(url, basic("alice", "one")) == {401}
    assert statuses(url, basic("bob", "two")) == {200}


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    server = TokenServer(
        Authority(),
        {
            "alice": ("alice-pw", {"*": ["pull", "push"]}),
            "bob": ("bob-pw", {"*": ["pull"]}),
        },
    )
    yield server
    server.stop()


def test_token_flow_with_skopeo(tmp_path, start_registry, skopeo, layout, token_server):
    bundle = token_server.authority.write_bundle(tmp_path)
    registry = start_registry(
        f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {tmp_path / "data"}}}
http:
  secret: auth-e2e
auth:
  token:
    realm: {token_server.realm}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {bundle}
"""
    )
    netloc = registry.url.removeprefix("http://")
    ref = f"docker://{netloc}/team/app:v1"

    challenge = requests.get(f"{registry.url}/v2/", timeout=TIMEOUT).headers["WWW-Authenticate"]
    assert challenge == f'Bearer realm="{token_server.realm}",service="{SERVICE}"'

    skopeo.copy(layout, ref, "--dest-creds", "alice:alice-pw")
    scopes = {s for r in token_server.requests for s in r["query"].get("scope", [])}
    assert "repository:team/app:pull,push" in scopes

    # bob may pull ...
    pulled = skopeo.run("inspect", "--tls-verify=false", "--creds", "bob:bob-pw", ref)
    assert b'"Digest"' in pulled.stdout
    # ... but not push: his token is valid, its scope is not enough.
    denied = skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "bob:bob-pw",
        layout,
        f"docker://{netloc}/team/other:v1",
        check=False,
    )
    assert denied.returncode != 0
    assert b"denied" in denied.stderr, denied.stderr

    # The same over plain HTTP: the token server's token for bob, then a push.
    token = token_server.issue("bob", ["repository:team/app:pull,push"])
    response = requests.post(
        f"{registry.url}/v2/team/app/blobs/uploads/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 403
    assert response.json()["errors"][0]["code"] == "DENIED"
    assert response.headers["WWW-Authenticate"].endswith('error="insufficient_scope"')
