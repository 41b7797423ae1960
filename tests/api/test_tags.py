"""The tags list API on both drivers, and the pagination helpers it shares with the catalog."""

from __future__ import annotations

import pytest

from distribution import errors
from distribution.api import context, pagination
from distribution.app import create_app
from distribution.config import parse
from distribution.digest import Digest
from distribution.storage.tags import TagLists, TagStore
from tests.api import registry_env
from tests.api.registry_env import Env, MakeEnv, error_code
from tests.conftest import TEST_CONFIG, make_app

# Fixtures, shared with the other API test modules.
env = registry_env.env
make_env = registry_env.make_env

TAGS = ["1.0", "10", "2.0", "A", "Latest", "_x", "a", "b-c", "b.c", "b_c", "latest"]


def tag_all(env: Env, name: str, tags: list[str]) -> None:
    body = env.image(name)
    for tag in tags:
        env.push(name, tag, body)


def tags_of(env: Env, query: str = "", name: str = "app"):
    return env.client.get(f"/v2/{name}/tags/list{query}")


class TestList:
    def test_all_tags_lexically_sorted(self, env: Env) -> None:
        tag_all(env, "app", list(reversed(TAGS)))
        response = tags_of(env)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert response.get_json() == {"name": "app", "tags": sorted(TAGS)}
        assert "Link" not in response.headers

    def test_nested_repository_name(self, env: Env) -> None:
        tag_all(env, "org/team/app", ["v1"])
        response = tags_of(env, name="org/team/app")
        assert response.get_json() == {"name": "org/team/app", "tags": ["v1"]}

    def test_pages_follow_the_link_header(self, env: Env) -> None:
        tag_all(env, "app", TAGS)
        url, seen = "/v2/app/tags/list?n=4", []
        for _ in range(10):
            response = env.client.get(url)
            assert response.status_code == 200
            page = response.get_json()["tags"]
            assert len(page) <= 4
            seen += page
            if "Link" not in response.headers:
                break
            link = response.headers["Link"]
            assert link == f'</v2/app/tags/list?last={page[-1]}&n=4>; rel="next"'
            url = link[1 : link.index(">")]
        assert seen == sorted(TAGS)

    def test_no_link_when_the_page_ends_exactly(self, env: Env) -> None:
        tag_all(env, "app", ["a", "b"])
        response = tags_of(env, "?n=2")
        assert response.get_json()["tags"] == ["a", "b"]
        assert "Link" not in response.headers

    def test_last_alone_lists_everything_after_it(self, env: Env) -> None:
        tag_all(env, "app", ["a", "b", "c"])
        assert tags_of(env, "?last=a").get_json()["tags"] == ["b", "c"]
        assert tags_of(env, "?last=bb").get_json()["tags"] == ["c"]
        assert tags_of(env, "?last=z").get_json()["tags"] == []

    def test_n_zero_is_an_empty_page_without_link(self, env: Env) -> None:
        tag_all(env, "app", ["a"])
        response = tags_of(env, "?n=0")
        assert response.get_json() == {"name": "app", "tags": []}
        assert "Link" not in response.headers

    def test_empty_n_lists_everything(self, env: Env) -> None:
        tag_all(env, "app", ["a", "b"])
        assert tags_of(env, "?n=").get_json()["tags"] == ["a", "b"]

    def test_untagged_repository_has_an_empty_list(self, env: Env) -> None:
        tag_all(env, "app", ["a"])
        env.client.delete("/v2/app/manifests/a")
        assert tags_of(env).get_json() == {"name": "app", "tags": []}


class TestTagLists:
    """The per-process tag lists: what another worker, replica or Go writes is seen at once."""

    def test_tags_written_or_removed_behind_the_cache_are_seen(self, env: Env) -> None:
        tag_all(env, "app", ["a", "b"])
        assert tags_of(env).get_json()["tags"] == ["a", "b"]
        other = TagStore(env.registry.driver, "app")  # another process: no shared memory
        other.tag("c", Digest.parse(env.push("app", "d", env.image("app", seed="x"))))
        assert tags_of(env).get_json()["tags"] == ["a", "b", "c", "d"]
        other.untag("a")
        assert tags_of(env).get_json()["tags"] == ["b", "c", "d"]
        assert tags_of(env, "?n=2&last=b").get_json()["tags"] == ["c", "d"]

    def test_held_lists_stay_within_their_budget(self) -> None:
        lists = TagLists(budget=5)
        lists.put("a", 1, ["x", "y", "z"])
        lists.put("b", 1, ["x", "y"])
        assert lists.get("a", 1) == ["x", "y", "z"] and lists.get("a", 2) is None
        lists.put("c", 1, ["x"])  # over budget: the least recently used list goes
        assert lists.get("b", 1) is None and lists.get("c", 1) == ["x"]
        lists.put("d", 1, list("abcdef"))  # larger than the whole budget: not kept
        assert lists.get("d", 1) is None and lists.get("a", 1) == ["x", "y", "z"]


class TestErrors:
    @pytest.mark.parametrize("name", ["unknown", "a/b/c"])
    def test_unknown_repository_is_name_unknown(self, env: Env, name: str) -> None:
        response = tags_of(env, name=name)
        assert response.status_code == 404
        assert error_code(response) == "NAME_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == {"name": name}

    def test_repository_with_only_blobs_is_name_unknown(self, env: Env) -> None:
        env.seed_blob("app", b"layer")
        assert error_code(tags_of(env)) == "NAME_UNKNOWN"

    @pytest.mark.parametrize(("n", "detail"), [("-1", -1), ("x", 0), ("1.5", 0), (" 1", 0)])
    def test_bad_n(self, env: Env, n: str, detail: int) -> None:
        tag_all(env, "app", ["a"])
        response = tags_of(env, f"?n={n}")
        assert response.status_code == 400
        assert error_code(response) == "PAGINATION_NUMBER_INVALID"
        assert response.get_json()["errors"][0]["detail"] == {"n": detail}

    def test_n_above_maxtags_is_lowered_to_it_with_a_link(self, make_env: MakeEnv) -> None:
        """Go 3.1.1: ``maxtags`` clamps ``n`` and the ``Link`` header leads to the rest."""
        env = make_env("tags:\n  maxtags: 2\n")
        tag_all(env, "app", ["a", "b", "c"])
        response = tags_of(env, "?n=3")
        assert response.status_code == 200
        assert response.get_json()["tags"] == ["a", "b"]
        assert response.headers["Link"] == '</v2/app/tags/list?last=b&n=2>; rel="next"'
        assert tags_of(env, "?n=2&last=b").get_json()["tags"] == ["c"]
        # As in Go, a list without n is not capped.
        assert tags_of(env).get_json()["tags"] == ["a", "b", "c"]

    def test_name_invalid(self, env: Env) -> None:
        response = tags_of(env, name="Bad")
        assert response.status_code == 400 and error_code(response) == "NAME_INVALID"

    def test_a_name_in_utf8_is_routed_decoded_and_refused(self, env: Env) -> None:
        """The path's bytes reach routing as UTF-8 text, whatever the ``Host`` says."""
        response = env.client.get(
            "/v2/caf%C3%A9/tags/list", headers={"Host": "Registry.Example:80"}
        )
        assert response.status_code == 400 and error_code(response) == "NAME_INVALID"
        assert response.get_json()["errors"][0]["detail"] == {"name": "café"}


def test_link_keeps_the_http_prefix() -> None:
    plain = make_app()
    tag_all(Env(plain, plain.test_client(), None), "app", ["a", "b"])
    config = parse(TEST_CONFIG + "  prefix: /reg\n", {})
    prefixed = create_app(config, plain.extensions[context.EXTENSION]).test_client()
    response = prefixed.get("/reg/v2/app/tags/list?n=1")
    assert response.get_json()["tags"] == ["a"]
    assert response.headers["Link"] == '</reg/v2/app/tags/list?last=a&n=1>; rel="next"'


class TestPagination:
    """The pure helpers, including Go's exact error details."""

    @pytest.mark.parametrize(
        ("raw", "maximum", "expected"),
        [
            (None, 1000, None),
            ("", 5, None),
            ("0", 1000, 0),
            ("7", 1000, 7),
            ("+3", 5, 3),
            ("007", 1000, 7),
            ("6", 5, 5),
        ],
    )
    def test_tags_limit(self, raw: str | None, maximum: int, expected: int | None) -> None:
        assert pagination.tags_limit(raw, maximum) == expected

    @pytest.mark.parametrize("raw", ["-1", "x", "1_0", "9" * 5000, str(2**63)])
    def test_tags_limit_invalid(self, raw: str) -> None:
        with pytest.raises(errors.PaginationNumberInvalid):
            pagination.tags_limit(raw, 1000)

    @pytest.mark.parametrize(
        ("raw", "maximum", "expected"),
        [(None, 1000, 100), (None, 50, 50), ("0", 1000, 0), ("1000", 1000, 1000), ("5", 10, 5)],
    )
    def test_catalog_limit(self, raw: str | None, maximum: int, expected: int) -> None:
        assert pagination.catalog_limit(raw, maximum) == expected

    @pytest.mark.parametrize(
        ("raw", "detail"),
        [
            ("-1", {"n": "-1"}),
            ("abc", {"n": "abc"}),
            ("1001", {"n": 1001}),
            ("9" * 30, {"n": "9" * 30}),
        ],
    )
    def test_catalog_limit_invalid(self, raw: str, detail: dict) -> None:
        with pytest.raises(errors.PaginationNumberInvalid) as caught:
            pagination.catalog_limit(raw, 1000)
        assert caught.value.detail == detail

    def test_page(self) -> None:
        items = ["a", "b", "c"]
        assert pagination.page(items, None, "") == (items, False)
        assert pagination.page(items, 2, "") == (["a", "b"], True)
        assert pagination.page(items, 2, "a") == (["b", "c"], False)
        assert pagination.page(items, 3, "") == (items, False)
        assert pagination.page(items, 0, "") == ([], False)
        assert pagination.page(items, 5, "c") == ([], False)

    def test_next_link_escapes_like_go(self) -> None:
        link = pagination.next_link("/v2/_catalog", 2, "a/b c")
        assert link == '</v2/_catalog?last=a%2Fb+c&n=2>; rel="next"'
