"""``GET /v2/_usage``: what each caller sees, under every auth mode, and its query options."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from distribution import usage
from distribution.api import context
from tests.access.example import section, write_htpasswd
from tests.auth.tokens import ISSUER, SERVICE, Authority
from tests.conftest import make_app
from tests.gc.content import Api, flask_send, layer

NAMES = ("team-a/app", "team-a/lib", "public/tool", "other")

CONFIG = """
version: 0.1
storage:
  inmemory: {{}}
  delete: {{enabled: true}}
  maintenance:
    quotas: [{{repositories: "team-a/**", limit: 1GiB}}]
http:
  secret: s
{auth}
"""


def basic(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{user}-pw".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def populated(auth: str, headers: dict[str, str] | None = None) -> Flask:
    app = make_app(CONFIG.format(auth=auth))
    client = app.test_client()
    if headers:
        client.environ_base["HTTP_AUTHORIZATION"] = headers["Authorization"]
    api = Api(flask_send(client))
    for name in NAMES:
        body, _ = api.image(name, [layer(name), layer("base")], name)
        api.push_manifest(name, "v1", body)
    app.extensions[usage.EXTENSION].flush()
    registry = app.extensions[context.EXTENSION]
    runs = usage.Runs(registry.config, registry.driver)
    runs.then(runs.run(lambda: True))
    return app


def get(app: Flask, query: str = "", user: str | None = None) -> tuple[int, dict]:
    client: FlaskClient = app.test_client()
    response = client.get(f"/v2/_usage{query}", headers=basic(user) if user else {})
    return response.status_code, response.get_json()


@pytest.fixture
def rules_app(tmp_path: Path) -> Flask:
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    auth = f"auth: {{htpasswd: {{realm: Registry Realm, path: {htpasswd}}}}}\n" + section()
    return populated(auth, basic("root"))


def test_open_registry_everyone_is_admin() -> None:
    app = populated("")
    status, body = get(app)
    assert status == 200
    assert [row["name"] for row in body["repositories"]] == sorted(NAMES, key=_go)
    assert body["total"]["repositories"] == 4 and body["total"]["tags"] == 4
    assert [ns["name"] for ns in body["namespaces"]] == ["other", "public", "team-a"]
    (quota,) = body["quotas"]
    assert quota["repositories"] == "team-a/**" and quota["limit"] == 1 << 30
    assert (
        quota["bytes"] == next(ns for ns in body["namespaces"] if ns["name"] == "team-a")["bytes"]
    )
    assert body["generated"].endswith("Z")


def test_admins_see_everything_others_what_they_may_pull(rules_app: Flask) -> None:
    status, body = get(rules_app, user="root")
    assert status == 200 and "total" in body and len(body["repositories"]) == 4
    # alice pulls team-a/** and, by default, everything else: every repository, no totals
    status, body = get(rules_app, user="alice")
    assert status == 200 and "total" not in body and "quotas" not in body
    assert len(body["repositories"]) == 4
    # carol may not pull team-a/**
    status, body = get(rules_app, user="carol")
    assert status == 200
    assert [row["name"] for row in body["repositories"]] == ["other", "public/tool"]
    assert get(rules_app, "?repository=team-a/app", user="carol")[0] == 404
    # anonymous: the sign-in challenge
    assert get(rules_app)[0] == 401
    assert get(rules_app, user="nobody")[0] == 401


def test_signed_in_without_rules_is_admin(tmp_path: Path) -> None:
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    auth = f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}}}"
    app = populated(auth, basic("bob"))
    status, body = get(app, user="bob")
    assert status == 200 and body["total"]["repositories"] == 4
    assert get(app)[0] == 401


def test_token_needs_the_catalog_scope(tmp_path: Path) -> None:
    authority = Authority()
    bundle = authority.write_bundle(tmp_path)
    auth = (
        f"auth: {{token: {{realm: https://auth.example/token, service: {SERVICE}, "
        f"issuer: {ISSUER}, rootcertbundle: {bundle}}}}}"
    )
    pusher = authority.mint(
        [{"type": "repository", "name": n, "actions": ["pull", "push"]} for n in NAMES]
    )
    app = populated(auth, {"Authorization": f"Bearer {pusher}"})
    client = app.test_client()
    response = client.get("/v2/_usage", headers={"Authorization": f"Bearer {pusher}"})
    assert response.status_code == 403
    lister = authority.mint([{"type": "registry", "name": "catalog", "actions": ["*"]}])
    response = client.get("/v2/_usage", headers={"Authorization": f"Bearer {lister}"})
    assert response.status_code == 200 and response.get_json()["total"]["repositories"] == 4


def test_one_repository_one_namespace_and_pages() -> None:
    app = populated("")
    status, body = get(app, "?repository=team-a/lib")
    assert status == 200 and body["repository"]["name"] == "team-a/lib"
    assert body["repository"]["tags"] == 1 and body["repository"]["bytes"] > 0
    assert get(app, "?repository=nope")[0] == 404
    status, body = get(app, "?namespace=team-a")
    assert status == 200 and body["namespace"]["repositories"] == 2
    assert [row["name"] for row in body["repositories"]] == ["team-a/app", "team-a/lib"]
    response = app.test_client().get("/v2/_usage?n=3")
    assert [row["name"] for row in response.get_json()["repositories"]] == [
        "other",
        "public/tool",
        "team-a/app",
    ]
    assert response.headers["Link"] == '</v2/_usage?last=team-a%2Fapp&n=3>; rel="next"'
    status, body = get(app, "?n=3&last=team-a/app")
    assert [row["name"] for row in body["repositories"]] == ["team-a/lib"]


def test_a_page_of_none_is_empty_without_a_next_link() -> None:
    """``n=0`` asks for nothing: an empty page and no ``Link``, as the tags list answers it
    (the spec's rule for ``n=0``)."""
    response = populated("").test_client().get("/v2/_usage?n=0")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["repositories"] == []
    assert "Link" not in response.headers


def test_before_the_first_refresh() -> None:
    app = make_app(CONFIG.format(auth=""))
    response = app.test_client().get("/v2/_usage")
    assert response.status_code == 503
    assert response.get_json()["errors"][0]["code"] == "UNAVAILABLE"


def _go(name: str) -> str:
    return name.replace("/", "\x00")
