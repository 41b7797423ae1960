"""``GET /v2/`` and the shape of every JSON answer, as the Go registry writes them."""

from __future__ import annotations

from tests.api import registry_env
from tests.api.registry_env import Env

env = registry_env.env
make_env = registry_env.make_env

JSON = "application/json; charset=utf-8"


def test_base_answers_an_empty_object(env: Env) -> None:
    response = env.client.get("/v2/")
    assert response.status_code == 200
    assert response.get_json() == {}
    assert response.headers["Content-Type"] == JSON
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_the_root_answers_200_without_a_body_or_a_content_type(env: Env) -> None:
    for method in ("GET", "HEAD"):
        response = env.client.open("/", method=method)
        assert response.status_code == 200 and response.get_data() == b""
        assert "Content-Type" not in response.headers
        assert response.headers["Cache-Control"] == "no-cache"  # as Go's


def test_errors_are_typed_and_ordered_as_gos(env: Env) -> None:
    response = env.client.get("/v2/missing/tags/list")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == JSON
    assert response.get_data(as_text=True).strip() == (
        '{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry",'
        '"detail":{"name":"missing"}}]}'
    )
