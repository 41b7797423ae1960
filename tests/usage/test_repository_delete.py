"""Deleting a whole repository, on every driver; emptied repositories leave the catalog."""

from __future__ import annotations

import hashlib

import pytest

from distribution import errors, usage
from distribution.api import usage as usage_api
from distribution.storage import gc, repositories
from tests.conftest import make_app
from tests.gc.content import layer
from tests.usage.conftest import Env, MakeEnv


def catalog(env: Env) -> list[str]:
    response = env.app.test_client().get("/v2/_catalog")
    return response.get_json()["repositories"]


def push(env: Env, repo: str, tag: str, *layers: bytes) -> str:
    body, _ = env.api.image(repo, list(layers), f"{repo}:{tag}")
    return env.api.push_manifest(repo, tag, body)


def start_upload(env: Env, repo: str) -> str:
    status, headers, _ = env.api.send("POST", f"/v2/{repo}/blobs/uploads/", b"", {})
    assert status == 202
    return headers["Location"]


def test_delete_takes_everything_of_the_repository_and_nothing_else(env: Env) -> None:
    shared = layer("shared")
    digest = push(env, "team/app", "v1", shared, layer("own"))
    push(env, "team/app", "v2", layer("own2"))
    push(env, "team/app/sub", "v1", shared)  # a repository below it
    push(env, "team/other", "v1", shared)
    _, subject = env.api.get_manifest("team/app", "v1")
    signature, _ = env.api.referrer("team/app", subject, "sig")
    env.api.push_manifest("team/app", _sha(signature), signature)
    assert env.app.test_client().get(f"/v2/team/app/referrers/{digest}").status_code == 200
    upload = start_upload(env, "team/app")
    with env.app.test_request_context():
        held = usage_api.delete_repository("team/app")
    assert sorted(held.tags) == ["v1", "v2"] and len(held.manifests) == 3
    assert len(held.layers) == 7 and len(held.uploads) == 1
    assert catalog(env) == ["team/app/sub", "team/other"]
    client = env.app.test_client()
    assert client.get("/v2/team/app/tags/list").status_code == 404
    assert env.api.get_manifest("team/app", digest)[0] == 404
    assert env.api.blob_status("team/app", held.layers[0]) == 404
    assert client.get(upload[upload.index("/v2/") :]).status_code == 404
    assert env.api.get_manifest("team/app/sub", "v1")[0] == 200
    assert env.api.get_manifest("team/other", "v1")[0] == 200
    # nothing of the repository's own folders is left
    left = _own_folders(env, "team/app")
    assert left == [], left
    with env.app.test_request_context(), pytest.raises(errors.NameUnknown):
        usage_api.delete_repository("team/app")
    # its blobs go at the next collection, the shared one stays
    report = gc.collect(env.driver, gc.Options(), emit=lambda line: None)
    # own, own2, two configs, the signature's config and payload, and three manifests
    assert len(report.blobs) == 9
    assert env.api.get_blob("team/other", _sha(shared))[0] in (200, 307)  # 307: a cloud URL


def test_emptied_repositories_leave_the_catalog(env: Env) -> None:
    digest = push(env, "gone", "v1", layer("gone"))
    push(env, "kept", "v1", layer("kept"))
    untagged = push(env, "untagged-only", "v1", layer("u"))
    env.api.delete_manifest("untagged-only", "v1")  # the tag goes, the manifest stays
    assert catalog(env) == ["gone", "kept", "untagged-only"]
    env.api.delete_manifest("gone", digest)
    assert catalog(env) == ["kept", "untagged-only"]
    assert env.api.get_manifest("untagged-only", untagged)[0] == 200
    push(env, "gone", "v2", layer("back"))
    assert catalog(env) == ["gone", "kept", "untagged-only"]


def test_delete_refuses_immutable_tags_and_needs_delete(make_env: MakeEnv) -> None:
    env = make_env("access:\n  immutable: [{repositories: '**', tags: 'v*'}]")
    push(env, "frozen", "v1", layer("f"))
    with env.app.test_request_context(), pytest.raises(errors.Denied, match=r"v1 \(immutable"):
        usage_api.delete_repository("frozen")
    assert catalog(env) == ["frozen"]


def test_delete_needs_delete_enabled() -> None:
    app = make_app("version: 0.1\nstorage: {inmemory: {}}\n")  # delete is off by default
    with app.test_request_context(), pytest.raises(errors.Unsupported):
        usage_api.delete_repository("app")


def test_a_pull_through_cache_deletes_no_repository(tmp_path) -> None:
    """What a pull-through cache holds is the upstream's: 405, as its API answers deletes."""
    app = make_app(
        "version: 0.1\n"
        f"storage: {{filesystem: {{rootdirectory: {tmp_path}}}, delete: {{enabled: true}}}}\n"
        "proxy: {remoteurl: 'http://127.0.0.1:9'}\n"
    )
    with app.test_request_context(), pytest.raises(errors.Unsupported):
        usage_api.delete_repository("app")


def test_usage_forgets_a_deleted_repository(env: Env) -> None:
    push(env, "a", "v1", layer("a"))
    push(env, "b", "v1", layer("b"))
    env.app.extensions[usage.EXTENSION].flush()
    usage.refresh(env.driver)
    with env.app.test_request_context():
        usage_api.delete_repository("a")
    env.app.extensions[usage.EXTENSION].flush()
    report = usage.refresh(env.driver).report.to_json()
    assert [row["name"] for row in report["repositories"]] == ["b"]


def test_contents_of_an_unknown_repository(env: Env) -> None:
    with pytest.raises(errors.NameUnknown):
        repositories.contents(env.driver, "nothing/here")


def _own_folders(env: Env, name: str) -> list[str]:
    try:
        children = env.driver.list(f"/docker/registry/v2/repositories/{name}")
    except Exception:
        return []
    return [c for c in children if c.rsplit("/", 1)[1].startswith("_")]


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
