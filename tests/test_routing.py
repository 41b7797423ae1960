"""Remembered URL matches answer as werkzeug's matcher does, every time."""

from __future__ import annotations

import pytest
from flask import Flask
from werkzeug.exceptions import BadHost, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from distribution import routing
from tests.conftest import make_app


def rules() -> list[Rule]:
    return [
        Rule("/v2/<path:name>/blobs/<digest>", endpoint="blob", methods=["GET", "HEAD"]),
        Rule("/v2/<path:name>/tags/list", endpoint="tags", methods=["GET"]),
    ]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v2/a/b/c/blobs/sha256:abc", "HEAD"),
        ("/v2/a/tags/list", "GET"),
        ("/v2/a/tags/list", "PUT"),
        ("/v2/nothing", "GET"),
        ("/v2/a/blobs/", "GET"),
    ],
)
def test_a_remembered_match_is_werkzeugs(path: str, method: str) -> None:
    plain = Map(rules(), strict_slashes=False).bind("registry", default_method=method)
    remembering = routing.RegistryMap(rules(), strict_slashes=False).bind(
        "registry", default_method=method
    )
    for _ in range(3):
        try:
            expected: object = plain.match(path, return_rule=True)
        except (NotFound, MethodNotAllowed) as error:
            expected = type(error)
        try:
            got: object = remembering.match(path, return_rule=True)
        except (NotFound, MethodNotAllowed) as error:
            got = type(error)
        if isinstance(expected, tuple):
            assert isinstance(got, tuple)
            assert (got[0].endpoint, got[1]) == (expected[0].endpoint, expected[1])
        else:
            assert got is expected


def test_each_match_gets_its_own_values() -> None:
    adapter = routing.RegistryMap(rules()).bind("registry")
    _, values = adapter.match("/v2/a/blobs/sha256:abc", return_rule=True)
    values.pop("name")
    _, again = adapter.match("/v2/a/blobs/sha256:abc", return_rule=True)
    assert again == {"name": "a", "digest": "sha256:abc"}


def test_a_rule_added_later_is_matched() -> None:
    url_map = routing.RegistryMap(rules())
    with pytest.raises(NotFound):
        url_map.bind("registry").match("/v2/_catalog")
    url_map.add(Rule("/v2/_catalog", endpoint="catalog"))
    assert url_map.bind("registry").match("/v2/_catalog") == ("catalog", {})


def test_the_registry_checks_a_remembered_name_every_time() -> None:
    app: Flask = make_app()
    assert isinstance(app.url_map, routing.RegistryMap)
    client = app.test_client()
    for _ in range(2):
        response = client.get("/v2/UPPER/tags/list")
        assert response.status_code == 400
        assert response.get_json()["errors"][0]["code"] == "NAME_INVALID"
    for _ in range(2):
        response = client.get("/v2/lower/tags/list")
        assert response.status_code == 404
        assert response.get_json()["errors"][0]["code"] == "NAME_UNKNOWN"


@pytest.mark.parametrize(
    "host", ["registry", "Registry.Example.COM:5000", "bücher.example", "[::1]:5000", "10.0.0.1"]
)
def test_a_bound_host_is_werkzeugs(host: str) -> None:
    plain = Map(rules()).bind(host, "/prefix", url_scheme="https", path_info="/v2/a/tags/list")
    for _ in range(2):
        ours = routing.RegistryMap(rules()).bind(
            host, "/prefix", url_scheme="https", path_info="/v2/a/tags/list"
        )
        assert vars(ours) | {"map": None} == vars(plain) | {"map": None}


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example"])
def test_a_host_that_is_no_name_is_refused_every_time(host: str) -> None:
    with pytest.raises(BadHost):
        Map(rules()).bind(host)
    for _ in range(2):
        with pytest.raises(BadHost):
            routing.RegistryMap(rules()).bind(host)


def test_the_registry_answers_a_bad_host_with_400_every_time() -> None:
    client = make_app().test_client()
    for _ in range(2):
        assert client.get("/v2/", headers={"Host": "a..b"}).status_code == 400
    assert client.get("/v2/", headers={"Host": "bücher.example"}).status_code == 200
