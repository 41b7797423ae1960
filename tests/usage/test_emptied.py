"""The catalog's notes of emptied repositories, on every driver: written by the deletion that
empties, trusted once a sweep has noted what was empty before, and spared reads."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from distribution.digest import Digest
from distribution.proxy import schedule
from distribution.storage import catalog, emptied, gc, paths
from distribution.storage.driver import PathNotFoundError, StorageDriver, StorageDriverError
from tests.gc.content import layer
from tests.usage.conftest import Env


def push(env: Env, repo: str, tag: str, seed: str) -> str:
    body, _ = env.api.image(repo, [layer(seed)], f"{repo}:{tag}")
    return env.api.push_manifest(repo, tag, body)


def noted(env: Env, name: str) -> bool:
    try:
        env.driver.stat(paths.emptied_note(name))
    except PathNotFoundError:
        return False
    return True


def listed(env: Env) -> list[str]:
    response = env.app.test_client().get("/v2/_catalog")
    assert response.status_code == 200
    return response.get_json()["repositories"]


def sweep(env: Env) -> int | None:
    return emptied.sweep(env.driver, catalog.looked_into(env.driver))


@pytest.mark.parametrize("swept", [False, True], ids=["unswept", "swept"])
def test_the_deletion_that_empties_notes(env: Env, swept: bool) -> None:
    if swept:
        assert sweep(env) == 0 and emptied.noted(env.driver)
    first = push(env, "app", "v1", "one")
    second = push(env, "app", "v2", "two")
    push(env, "app/sub", "v1", "sub")  # below it: a repository of its own
    env.api.delete_manifest("app", "v1")
    env.api.delete_manifest("app", "v2")  # untagged: both manifests are still there
    assert not noted(env, "app") and listed(env) == ["app", "app/sub"]
    env.api.delete_manifest("app", first)
    assert not noted(env, "app")  # the second manifest is left
    env.api.delete_manifest("app", second)
    assert noted(env, "app")
    assert listed(env) == ["app/sub"]
    # a push fills it again: the note stays, and the walk looks in and lists it
    push(env, "app", "v3", "three")
    assert noted(env, "app") and listed(env) == ["app", "app/sub"]
    # until the next sweep takes the note off
    assert sweep(env) == 0
    assert not noted(env, "app") and listed(env) == ["app", "app/sub"]


def test_a_sweep_takes_off_the_notes_of_repositories_filled_again(env: Env) -> None:
    for name in ("a", "b"):
        digest = push(env, name, "v1", name)
        env.api.delete_manifest(name, digest)
        assert noted(env, name)
    push(env, "a", "v2", "a2")
    assert sweep(env) == 0
    assert not noted(env, "a") and noted(env, "b")
    assert _looked_into(env.driver, lambda: catalog.repositories(env.driver, 100)) == (
        {"b"} if _kept(env.driver, "b") else set()
    )
    assert catalog.repositories(env.driver, 100) == (["a"], False)


def test_a_sweep_notes_again_what_was_emptied_while_it_took_the_note_off(env: Env) -> None:
    digest = push(env, "a", "v1", "a")
    env.api.delete_manifest("a", digest)
    # the sweep's look found content, which a deletion then removed before the note went
    assert emptied.sweep(env.driver, [catalog.Found("a", True, True)]) == 0
    assert noted(env, "a") and listed(env) == []


def test_a_sweep_is_due_first_and_then_once_a_day(env: Env) -> None:
    assert emptied.due(env.driver)
    assert sweep(env) == 0
    swept = env.driver.stat(paths.EMPTIED_NOTED).mtime
    assert not emptied.due(env.driver)
    assert not emptied.due(env.driver, swept + emptied.SWEEP_EVERY - timedelta(seconds=1))
    assert emptied.due(env.driver, swept + emptied.SWEEP_EVERY)


def test_deleting_a_tag_that_outlived_its_manifest_notes(env: Env) -> None:
    digest = push(env, "dangling", "v1", "d")
    env.driver.delete(paths.manifest_revision_link("dangling", Digest.parse(digest)))
    assert listed(env) == ["dangling"]  # a tag is content, even one pointing at nothing
    env.api.delete_manifest("dangling", "v1")
    assert noted(env, "dangling") and listed(env) == []


def test_a_sweep_notes_what_was_emptied_before_it(env: Env) -> None:
    push(env, "a", "v1", "a")
    push(env, "b", "v1", "b")
    kept = _empty_behind_the_registry(env.driver, "a")
    assert listed(env) == ["b"]  # never swept: every repository is looked into
    assert sweep(env) == kept
    assert noted(env, "a") is kept and emptied.noted(env.driver)
    assert listed(env) == ["b"]


def test_what_is_emptied_outside_is_listed_until_the_next_sweep(env: Env) -> None:
    push(env, "a", "v1", "a")
    push(env, "b", "v1", "b")
    assert sweep(env) == 0
    kept = _empty_behind_the_registry(env.driver, "a")  # as the Go registry would: no note
    # as Go lists it; on object stores the folders went with their last object
    assert listed(env) == (["a", "b"] if kept else ["b"])
    env.driver.delete(paths.EMPTIED_NOTED)
    assert sweep(env) == kept
    assert listed(env) == ["b"]


def test_a_sweep_told_to_stop_marks_nothing(env: Env) -> None:
    push(env, "a", "v1", "a")
    _empty_behind_the_registry(env.driver, "a")
    assert emptied.sweep(env.driver, catalog.looked_into(env.driver), lambda: False) is None
    assert not emptied.noted(env.driver) and not noted(env, "a")


def test_a_swept_catalog_looks_only_into_noted_repositories(env: Env) -> None:
    for name in ("a", "b", "c"):
        push(env, name, "v1", name)
    env.api.delete_manifest("b", "v1")
    env.api.delete_manifest("b", _only_manifest(env.driver, "b"))
    assert noted(env, "b")
    emptied_kept = {"b"} if _kept(env.driver, "b") else set()
    for swept in (False, True):
        if swept:
            assert sweep(env) == 0  # "b" was noted as it was emptied
        looked = _looked_into(env.driver, lambda: catalog.repositories(env.driver, 100))
        assert looked == (emptied_kept if swept else {"a", "c"} | emptied_kept)
        assert catalog.repositories(env.driver, 100) == (["a", "c"], False)


def test_a_collection_that_empties_notes(env: Env) -> None:
    assert sweep(env) == 0
    push(env, "keep", "v1", "keep")
    push(env, "untagged", "v1", "u")
    env.api.delete_manifest("untagged", "v1")
    assert listed(env) == ["keep", "untagged"]  # an untagged manifest is content
    report = gc.collect(env.driver, gc.Options(delete_untagged=True), emit=lambda line: None)
    assert [deletion.name for deletion in report.manifests] == ["untagged"]
    assert noted(env, "untagged") and not noted(env, "keep")
    assert listed(env) == ["keep"]


def test_a_pull_through_expiry_that_empties_notes(env: Env) -> None:
    body, _ = env.api.image("cached", [layer("cached")], "cached")
    digest = env.api.push_manifest("cached", "sha256:" + hashlib.sha256(body).hexdigest(), body)
    past = datetime.now(UTC) - timedelta(seconds=1)
    entry = schedule.Entry.make("cached", Digest.parse(digest), schedule.MANIFEST, 0, past)
    schedule.record(env.driver, [entry])
    assert listed(env) == ["cached"]
    assert schedule.expire(env.driver) == [entry]
    assert noted(env, "cached") and listed(env) == []


def test_a_note_that_cannot_be_written_fails_no_deletion(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    assert sweep(env) == 0
    digest = push(env, "a", "v1", "a")
    put_content = env.driver.put_content

    def refuse_notes(path: str, content: bytes) -> None:
        if "/_emptied/" in path:
            raise StorageDriverError(f"{path}: refused")
        put_content(path, content)

    env.driver.put_content = refuse_notes
    try:
        env.api.delete_manifest("a", digest)  # 202: the deletion stands
    finally:
        del env.driver.put_content
    assert "catalog: cannot note a as emptied, so it stays listed" in caplog.text
    assert not noted(env, "a")
    kept = _kept(env.driver, "a")
    assert listed(env) == (["a"] if kept else [])  # listed, as Go lists it
    with pytest.raises(StorageDriverError):  # a sweep that cannot note marks nothing
        env.driver.delete(paths.EMPTIED_NOTED)
        env.driver.put_content = refuse_notes
        try:
            emptied.sweep(env.driver, [catalog.Found("a", False, False)])
        finally:
            del env.driver.put_content
    assert not emptied.noted(env.driver)


def _empty_behind_the_registry(driver: StorageDriver, name: str) -> bool:
    """Delete every tag and manifest of ``name`` without a note; whether :func:`_kept`."""
    driver.delete(paths.tags(name))
    driver.delete(paths.manifest_revisions(name))
    return _kept(driver, name)


def _kept(driver: StorageDriver, name: str) -> bool:
    """Whether the emptied repository's ``_manifests`` folder is left; on object stores it goes
    with its last object, and the walk finds no repository to list or note."""
    return paths.manifests(name) in driver.list(paths.repository(name))


def _only_manifest(driver: StorageDriver, name: str) -> str:
    (revision,) = driver.list(paths.manifest_revisions_of(name, "sha256"))
    return "sha256:" + revision.rsplit("/", 1)[1]


def _looked_into(driver: StorageDriver, run) -> set[str]:
    """The repositories whose ``_manifests`` folder ``run`` reads."""
    read: list[str] = []
    for method in ("list", "stat", "has_children", "get_content"):
        original = getattr(driver, method)
        setattr(driver, method, lambda path, _o=original: (read.append(path), _o(path))[1])
    try:
        run()
    finally:
        for method in ("list", "stat", "has_children", "get_content"):
            delattr(driver, method)
    prefix = paths.REPOSITORIES + "/"
    return {
        path.removeprefix(prefix).split("/_manifests", 1)[0]
        for path in read
        if path.startswith(prefix) and "/_manifests" in path
    }
