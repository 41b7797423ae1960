"""What the UI caches stays correct when another replica changes storage: new, moved and
deleted tags, new repositories, large repositories refreshed in the background."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from distribution.storage.driver import StorageDriver, filesystem
from distribution.ui import cache
from tests.api import registry_env
from tests.api.registry_env import Env, build_env
from tests.ui.conftest import push_image

#: The filesystem driver's settling time in these tests (its default is 2 s).
SHORT_SETTLE = 0.05


class CountingDriver:
    """Counts the calls made through a driver (to see what a cache saves)."""

    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver
        self.calls = 0

    def __getattr__(self, name: str):
        attribute = getattr(self._driver, name)
        if callable(attribute):

            def counted(*args, **kwargs):
                self.calls += 1
                return attribute(*args, **kwargs)

            return counted
        return attribute


@pytest.fixture(params=registry_env.DRIVERS)
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Env, Env]:
    """Two registries on one storage, each with its own UI (and caches): ``(ui, other)``."""
    first = build_env(request.param, tmp_path / "root")
    second = build_env(request.param, tmp_path / "root", share=first)
    first.app.extensions["distribution.ui"].view.background = False
    return first, second


def listed(env: Env, url: str) -> list[str]:
    page = env.app.test_client().get(url).get_data(as_text=True)
    return re.findall(r'<th scope="row"><a href="/ui/r/([^"]+?)(?:/-/manifests/[^"]*)?">', page)


def tags(env: Env, name: str, sort: str = "-pushed") -> list[str]:
    page = env.app.test_client().get(f"/ui/r/{name}?sort={sort}").get_data(as_text=True)
    return re.findall(r'/-/manifests/([^"]+)">', page.split("<tbody>", 1)[1])


def digest_shown(env: Env, name: str, tag: str) -> str:
    page = env.app.test_client().get(f"/ui/r/{name}").get_data(as_text=True)
    return re.search(rf'value="{re.escape(tag)}@(sha256:[0-9a-f]+)"', page).group(1)


def settle(env: Env) -> None:
    """Let the folders just written age past the driver's settling time (made short here)."""
    time.sleep(2 * SHORT_SETTLE)


@pytest.fixture(autouse=True)
def short_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filesystem, "VERSION_SETTLE", SHORT_SETTLE)


def test_a_tag_pushed_through_another_replica_shows_at_once(replicas):
    ui, other = replicas
    push_image(other, "x/app", "1")
    settle(ui)
    assert tags(ui, "x/app") == ["1"]
    push_image(other, "x/app", "2", seed="two")
    assert tags(ui, "x/app") == ["2", "1"]


def test_a_tag_deleted_through_another_replica_goes_at_once(replicas):
    ui, other = replicas
    push_image(other, "x/app", "1")
    push_image(other, "x/app", "2", seed="two")
    settle(ui)
    assert sorted(tags(ui, "x/app")) == ["1", "2"]
    time.sleep(0.03)
    assert other.client.delete("/v2/x/app/manifests/1").status_code == 202
    assert tags(ui, "x/app") == ["2"]


def test_a_tag_moved_through_another_replica_shows_its_new_digest(replicas):
    ui, other = replicas
    first = push_image(other, "x/app", "latest")
    second = push_image(other, "x/app", "old", seed="other")
    settle(ui)
    assert digest_shown(ui, "x/app", "latest") == first
    time.sleep(0.03)
    # A move to a manifest the repository has already: no listing changes, only the link.
    body = other.get("x/app", second).get_data()
    other.push("x/app", "latest", body)
    assert digest_shown(ui, "x/app", "latest") == second
    assert tags(ui, "x/app")[0] == "latest"  # the order learns the move too


def test_a_repository_created_through_another_replica_shows_at_once(replicas, request):
    ui, other = replicas
    push_image(other, "x/app", "1")
    settle(ui)
    assert listed(ui, "/ui/") == ["x/app"]
    time.sleep(0.03)
    push_image(other, "x/other", "1")
    push_image(other, "top", "1")
    view = ui.app.extensions["distribution.ui"].view
    if view.driver.directory_versions:
        assert listed(ui, "/ui/") == ["top", "x/app", "x/other"]
    else:  # no directory dates: the list is walked again after UNDATED_MAX_AGE
        assert listed(ui, "/ui/") == ["x/app"]
        view._names_built -= cache.UNDATED_MAX_AGE + 1
        listed(ui, "/ui/")
        view.wait()
        assert listed(ui, "/ui/") == ["top", "x/app", "x/other"]


def test_a_repository_nested_in_another_shows_after_the_full_walk(replicas):
    ui, other = replicas
    push_image(other, "x/app", "1")
    settle(ui)
    assert listed(ui, "/ui/") == ["x/app"]
    push_image(other, "x/app/cache", "1")
    view = ui.app.extensions["distribution.ui"].view
    view._names_built -= cache.DATED_MAX_AGE + 1
    listed(ui, "/ui/")  # starts the walk in the background
    view.wait()
    assert listed(ui, "/ui/") == ["x/app", "x/app/cache"]


def test_unchanged_storage_is_not_read_again(tmp_path):
    env = build_env("filesystem", tmp_path / "root")
    for i in range(20):
        push_image(env, f"ns{i % 4}/app{i}", "1")
    for i in range(30):
        push_image(env, "ns0/app0", f"t{i}", seed=str(i))
    ui = env.app.extensions["distribution.ui"]
    counting = CountingDriver(ui.view.driver)
    ui.view.driver = counting
    settle(env)
    client = env.app.test_client()
    for url in ("/ui/", "/ui/r/ns0/app0"):
        client.get(url)
        before = counting.calls
        assert client.get(url).status_code == 200
        again = counting.calls - before
        # The list: a stat of each namespace folder and the root; the tags page: two stats
        # (the tags and revisions folders) and a stat and a read per row shown.
        assert again <= {"/ui/": 5 + 20 * 2, "/ui/r/ns0/app0": 2 + 31 * 2}[url], again


def test_large_repositories_refresh_in_the_background(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "SYNC_TAGS", 3)
    monkeypatch.setattr(cache, "BACKGROUND_INTERVAL", 0)
    env = build_env("filesystem", tmp_path / "root")
    for tag in ("a", "b", "c", "d", "e"):
        push_image(env, "big/repo", tag, seed=tag)
        time.sleep(0.01)
    view = env.app.extensions["distribution.ui"].view
    assert tags(env, "big/repo") == ["e", "d", "c", "b", "a"]
    settle(env)
    push_image(env, "big/repo", "f", seed="f")
    assert tags(env, "big/repo")[0] == "f"  # added in the request, the rest in the background
    view.wait()
    settle(env)  # once the folders are dated, a refresh makes a table that is kept
    view.tags("big/repo")
    view.wait()
    table = view.tags("big/repo")
    assert table.complete
    assert sorted(table.entries) == ["a", "b", "c", "d", "e", "f"]
    # Its size is added up in the background too (the last size known is shown meanwhile,
    # or, the first time, that it is being added up).
    view._repositories.pop("big/repo")
    with monkeypatch.context() as later:
        later.setattr(view, "_later", lambda key, job: None)
        assert view.summarise("big/repo", table).size is None
        assert "adding up…" in env.app.test_client().get("/ui/").get_data(as_text=True)
    view.summarise("big/repo", table)
    view.wait()
    size = view.summarise("big/repo", table).size
    assert size == sum(
        view.summary("big/repo", entry.digest).size for entry in table.entries.values()
    )


def test_content_facts_are_kept_by_digest(tmp_path):
    env = build_env("filesystem", tmp_path / "root")
    digest = push_image(env, "x/app", "1", layers=3)
    view = env.app.extensions["distribution.ui"].view
    first = view.summary("x/app", digest)
    counting = CountingDriver(view.driver)
    view.driver = counting
    view.blobs = type(view.blobs)(counting, view.blobs.cache)
    assert view.summary("x/app", digest) is first
    assert counting.calls == 0
    assert first.platforms[0].platform == "linux/amd64"
    assert first.size == sum(size for _, size in first.blobs)
