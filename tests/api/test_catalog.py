"""The catalog API on both drivers: Go's walk order, nested names, pagination and limits."""

from __future__ import annotations

import pytest

from distribution.storage import catalog, paths
from tests.api import registry_env
from tests.api.registry_env import Env, MakeEnv, error_code

# Fixtures, shared with the other API test modules.
env = registry_env.env
make_env = registry_env.make_env

#: Names in Go's order: component by component, so ``a/b`` comes before ``a-b``.
REPOSITORIES = ["a", "a/0", "a/b", "a/b/c", "a-b", "a0", "b", "b/a", "z9/y_8/x.7"]


def create(env: Env, names: list[str]) -> None:
    for name in names:
        env.push(name, "latest", env.image(name))


def catalog_of(env: Env, query: str = ""):
    return env.client.get(f"/v2/_catalog{query}")


class TestList:
    def test_empty_registry(self, env: Env) -> None:
        response = catalog_of(env)
        assert response.status_code == 200
        assert response.get_json() == {"repositories": []}
        assert "Link" not in response.headers

    def test_nested_names_in_go_order(self, env: Env) -> None:
        create(env, list(reversed(REPOSITORIES)))
        response = catalog_of(env)
        assert response.get_json() == {"repositories": REPOSITORIES}
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"

    def test_only_folders_with_manifests_count(self, env: Env) -> None:
        create(env, ["app"])
        env.seed_blob("blobs-only", b"layer")
        env.registry.driver.put_content(f"{paths.repository('loose')}/file", b"x")
        assert catalog_of(env).get_json() == {"repositories": ["app"]}

    def test_pages_follow_the_link_header(self, env: Env) -> None:
        create(env, REPOSITORIES)
        url, seen = "/v2/_catalog?n=2", []
        for _ in range(10):
            response = env.client.get(url)
            page = response.get_json()["repositories"]
            assert len(page) <= 2
            seen += page
            if "Link" not in response.headers:
                break
            link = response.headers["Link"]
            assert link.endswith('&n=2>; rel="next"') and link.startswith("</v2/_catalog?last=")
            url = link[1 : link.index(">")]
        assert seen == REPOSITORIES

    def test_link_escapes_slashes_like_go(self, env: Env) -> None:
        create(env, ["a", "a/b", "c"])
        response = catalog_of(env, "?n=2")
        assert response.headers["Link"] == '</v2/_catalog?last=a%2Fb&n=2>; rel="next"'

    def test_no_link_when_the_page_ends_exactly(self, env: Env) -> None:
        create(env, ["a", "b"])
        response = catalog_of(env, "?n=2")
        assert response.get_json()["repositories"] == ["a", "b"]
        assert "Link" not in response.headers

    def test_last_that_is_not_a_repository(self, env: Env) -> None:
        create(env, REPOSITORIES)
        assert catalog_of(env, "?last=a/a").get_json()["repositories"] == REPOSITORIES[2:]
        assert catalog_of(env, "?last=a-a&n=2").get_json()["repositories"] == ["a-b", "a0"]
        assert catalog_of(env, "?last=zz").get_json()["repositories"] == []

    def test_n_zero(self, env: Env) -> None:
        create(env, ["a"])
        response = catalog_of(env, "?n=0")
        assert response.get_json() == {"repositories": []}
        assert "Link" not in response.headers

    def test_default_page_is_100(self, env: Env) -> None:
        names = [f"r{i:03}" for i in range(101)]
        for name in names:  # a tag link is enough to be listed (cheaper than 101 pushes)
            env.registry.driver.put_content(paths.tag_current_link(name, "t"), b"sha256:0")
        response = catalog_of(env)
        assert response.get_json()["repositories"] == names[:100]
        assert response.headers["Link"] == '</v2/_catalog?last=r099&n=100>; rel="next"'

    def test_maxentries_caps_the_default_page(self, make_env: MakeEnv) -> None:
        env = make_env("catalog:\n  maxentries: 2\n")
        create(env, ["a", "b", "c"])
        response = catalog_of(env)
        assert response.get_json()["repositories"] == ["a", "b"]
        assert response.headers["Link"] == '</v2/_catalog?last=b&n=2>; rel="next"'


class TestErrors:
    @pytest.mark.parametrize(("n", "detail"), [("-1", "-1"), ("x", "x"), ("2.0", "2.0")])
    def test_bad_n(self, env: Env, n: str, detail: str) -> None:
        response = catalog_of(env, f"?n={n}")
        assert response.status_code == 400
        assert error_code(response) == "PAGINATION_NUMBER_INVALID"
        assert response.get_json()["errors"][0]["detail"] == {"n": detail}

    def test_n_above_maxentries(self, make_env: MakeEnv) -> None:
        env = make_env("catalog:\n  maxentries: 5\n")
        response = catalog_of(env, "?n=6")
        assert error_code(response) == "PAGINATION_NUMBER_INVALID"
        assert response.get_json()["errors"][0]["detail"] == {"n": 6}
        assert catalog_of(env, "?n=5").status_code == 200

    def test_default_maxentries_is_1000(self, env: Env) -> None:
        assert catalog_of(env, "?n=1000").status_code == 200
        assert error_code(catalog_of(env, "?n=1001")) == "PAGINATION_NUMBER_INVALID"


def test_path_key_is_gos_less_path() -> None:
    assert sorted(["a-b", "a/b", "a", "a/b/c", "a0"], key=catalog.path_key) == [
        "a",
        "a/b",
        "a/b/c",
        "a-b",
        "a0",
    ]
