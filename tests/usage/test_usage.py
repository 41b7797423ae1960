"""Usage figures on every driver, checked against what storage holds as the driver's own tools
list it (``du`` on the filesystem, the SDK's blob list on GCS and Azure), and incremental
refreshes checked against a full count."""

from __future__ import annotations

import json
import time

import pytest

from distribution import usage
from distribution.digest import Digest
from distribution.storage import gc, paths
from distribution.usage import journal
from tests.gc.content import Api, push_scenario, sha256
from tests.usage.conftest import Env, MakeEnv


def figures(env: Env, **options) -> dict:
    return usage.refresh(env.driver, full=True, write=False, **options).report.to_json()


def referenced(api: Api, env: Env, repo: str) -> set[str]:
    """The blobs a repository's manifests reference, the manifests included, found through
    the API and storage listings (not the usage code)."""
    folder = f"/docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256"
    found = set()
    for entry in env.driver.list(folder):
        digest = "sha256:" + entry.rsplit("/", 1)[1]
        status, body = api.get_manifest(repo, digest)
        if status != 200:
            continue  # deleted: its folder stays
        found.add(digest)
        doc = json.loads(body)
        for descriptor in [doc.get("config"), *doc.get("layers", []), *doc.get("manifests", [])]:
            if descriptor:
                found.add(descriptor["digest"])
    return found


def test_figures_match_what_storage_holds(env: Env) -> None:
    push_scenario(env.api)
    before = figures(env)
    gc.collect(env.driver, gc.Options(), emit=lambda line: None)  # the garbage goes
    report = figures(env)
    stored = env.stored() if env.stored else None
    if stored is not None:
        assert before["total"]["stored_bytes"] > sum(stored.values()), "garbage was counted"
        assert report["total"]["stored_bytes"] == sum(stored.values())
        assert report["total"]["stored_blobs"] == len(stored)
        # with the garbage collected, everything stored is referenced
        assert report["total"]["bytes"] == sum(stored.values())
        assert report["total"]["blobs"] == len(stored)
    rows = {row["name"]: row for row in report["repositories"]}
    assert sorted(rows) == ["app", "multi", "other"]
    every: dict[str, set[str]] = {name: referenced(env.api, env, name) for name in rows}
    sizes = stored or {
        d: env.driver.stat(paths.blob_data(Digest.parse(d))).size for n in every for d in every[n]
    }
    for name, row in rows.items():
        blobs = every[name]
        others = set().union(*(every[n] for n in every if n != name))
        assert row["blobs"] == len(blobs)
        assert row["bytes"] == sum(sizes[d] for d in blobs)
        assert row["exclusive_bytes"] == sum(sizes[d] for d in blobs - others)
        assert row["shared_bytes"] == sum(sizes[d] for d in blobs & others)
    # "shared" is one layer in all three repositories
    total = report["total"]
    assert total["shared_bytes"] == sizes[sha256(_shared_layer())]
    assert total["exclusive_bytes"] + total["shared_bytes"] == total["bytes"]
    assert rows["app"]["tags"] == 2 and rows["app"]["manifests"] == 4
    assert rows["multi"]["manifests"] == 3 and rows["other"]["tags"] == 1


def test_namespaces_count_each_blob_once(make_env: MakeEnv) -> None:
    env = make_env()
    api = env.api
    for name in ("team-a/web", "team-a/api", "team-a", "team-b/web"):
        body, _ = api.image(name, [_shared_layer(), f"own {name}".encode()], name)
        api.push_manifest(name, "v1", body)
    report = figures(env)
    namespaces = {row["name"]: row for row in report["namespaces"]}
    rows = {row["name"]: row for row in report["repositories"]}
    team_a = namespaces["team-a"]
    assert team_a["repositories"] == 3 and team_a["tags"] == 3
    own = sum(rows[n]["exclusive_bytes"] for n in ("team-a/web", "team-a/api", "team-a"))
    shared = len(_shared_layer())
    assert team_a["bytes"] == own + shared
    assert team_a["shared_bytes"] == shared  # team-b uses it too
    assert namespaces["team-b"]["exclusive_bytes"] == rows["team-b/web"]["exclusive_bytes"]
    assert report["total"]["bytes"] == own + shared + rows["team-b/web"]["exclusive_bytes"]


def test_an_incremental_refresh_agrees_with_a_full_count(env: Env) -> None:
    api = env.api
    push_scenario(api)
    journal_of = env.app.extensions[usage.EXTENSION]
    journal_of.flush()
    usage.refresh(env.driver)  # saved state: the next refresh reads only what changed
    body, _ = api.image("fresh/one", [b"fresh layer"], "fresh")
    api.push_manifest("fresh/one", "latest", body)
    api.delete_manifest(
        "other", api.push_manifest("other", "extra", api.image("other", [b"x"], "x")[0])
    )
    api.delete_manifest("app", "stable")
    journal_of.flush()
    outcome = usage.refresh(env.driver)
    assert not outcome.full and outcome.scanned == 3
    incremental = outcome.report.to_json()
    full = figures(env)
    for key in ("generated", "generated_unix", "full_scan", "pulls_since", "total"):
        incremental.pop(key), full.pop(key)
    assert incremental == full
    # the journal's batches were merged and removed
    assert journal.read(env.driver) == []


def test_last_push_and_pull(env: Env) -> None:
    api = env.api
    body, _ = api.image("app", [b"layer"], "one")
    before = time.time()
    digest = api.push_manifest("app", "v1", body)
    assert figures(env)["repositories"][0]["last_pull"] is None
    assert api.get_manifest("app", "v1")[0] == 200
    env.app.extensions[usage.EXTENSION].flush()
    state = usage.refresh(env.driver).state
    pulls = state.pulls["app"]
    assert set(pulls) == {"v1", digest} and pulls["v1"] >= before
    row = usage.load_report(env.driver)["repositories"][0]
    assert row["last_pull"] is not None and row["last_push"] is not None
    pushed = state.repositories["app"].tags["v1"]
    assert before - 2 <= pushed <= time.time() + 2  # the link's time (cloud clocks aside)


def test_the_summary_and_gauges(make_env: MakeEnv) -> None:
    env = make_env(
        "    quotas: [{repositories: 'team-a/**', limit: 1MiB}]",
        http="  debug: {addr: '127.0.0.1:5001', prometheus: {enabled: true}}",
    )
    body, _ = env.api.image("team-a/app", [b"a" * 1000], "a")
    env.api.push_manifest("team-a/app", "v1", body)
    runs = usage.Runs(env.app.extensions["registry"].config, env.driver)
    runs.then(runs.run(lambda: True))
    summary = usage.load_summary(env.driver)
    assert summary["quotas"][0]["repositories"] == "team-a/**"
    assert summary["quotas"][0]["limit"] == 1 << 20
    assert summary["quotas"][0]["bytes"] == summary["total"]["bytes"]
    from distribution import metrics

    text = metrics.exposition()[0].decode()
    bytes_used = summary["namespaces"][0]["bytes"]
    assert f'registry_usage_bytes{{namespace="team-a"}} {float(bytes_used)}' in text
    assert 'registry_quota_limit_bytes{repositories="team-a/**"} 1.048576e+06' in text
    assert "registry_usage_stored_bytes " in text and "registry_usage_updated_seconds " in text


@pytest.mark.parametrize("make_env", ["filesystem"], indirect=True)
def test_a_damaged_state_file_means_a_full_scan(make_env: MakeEnv) -> None:
    env = make_env()
    body, _ = env.api.image("app", [b"layer"], "one")
    env.api.push_manifest("app", "v1", body)
    usage.refresh(env.driver)
    env.driver.put_content("/docker/registry/v2/_maintenance/usage/state.json.gz", b"junk")
    outcome = usage.refresh(env.driver)
    assert outcome.full and outcome.report.total.tags == 1


@pytest.mark.parametrize("make_env", ["filesystem"], indirect=True)
def test_no_run_while_nothing_happened(make_env: MakeEnv) -> None:
    env = make_env()
    body, _ = env.api.image("app", [b"layer"], "one")
    env.api.push_manifest("app", "v1", body)
    env.app.extensions[usage.EXTENSION].flush()
    runs = usage.Runs(env.app.extensions["registry"].config, env.driver)
    assert not runs.idle(), "no run yet"
    runs.then(runs.run(lambda: True))
    assert runs.idle()
    assert env.api.get_manifest("app", "v1")[0] == 200
    env.app.extensions[usage.EXTENSION].flush()
    assert not runs.idle(), "a journal batch waits"
    runs.then(runs.run(lambda: True))
    assert runs.idle()
    usage.refresh(env.driver, full=True)  # as another process would: the state is not ours
    assert not runs.idle()
    runs.then(runs.run(lambda: False))  # the lease was lost: nothing saved, no mark
    assert runs.mark is None and not runs.idle()
    runs.then(runs.run(lambda: True))
    assert runs.idle()
    mark = runs.mark
    assert mark is not None
    assert not usage.job.unchanged(env.driver, mark, fullscan=60, now=mark.full_scan + 60)


def _shared_layer() -> bytes:
    from tests.gc.content import layer

    return layer("shared")
