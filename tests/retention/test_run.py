"""Retention on a tree built by pushes with controlled times: every keep rule, AND within an
entry and OR across, untagged manifests with index children and referrers, immutable tags,
and a dry run that changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distribution import retention, usage
from distribution.retention import run as retention_run
from distribution.storage import catalog, emptied, locks, paths
from tests.gc.content import OCI_INDEX, stored_blobs
from tests.retention.tree import Tree

POLICY = """\
    retention:
      policies:
        - repositories: ["ci/**"]
          keep:
            - {tags: "^v[0-9]+\\\\."}
            - {mostrecent: 3, pushedwithin: 100h}
            - {pulledwithin: 720h}
          untagged: 48h
        - repositories: ["plain/*"]
          keep:
            - {mostrecent: 1}
access:
  immutable:
    - {repositories: "ci/**", tags: "release-*"}
"""


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree.make(tmp_path / "root", POLICY)


def build(tree: Tree) -> dict[str, str]:
    """The scenario; returns the digests by role."""
    d: dict[str, str] = {}
    repo = "ci/app"
    # releases: kept by the regex however old
    d["v1.0"] = tree.tagged(repo, "v1.0", "v1.0", 9000)
    d["v2.3"] = tree.tagged(repo, "v2.3", "v2.3", 5000)
    # builds: the 3 most recent pushed within 100 h stay (AND), and a pulled one (OR)
    for name, hours in (("b1", 300), ("b2", 150), ("b3", 90), ("b4", 50), ("b5", 10), ("b6", 2)):
        d[name] = tree.tagged(repo, name, name, hours)
    # an immutable tag (access rules): always kept
    d["release-1"] = tree.tagged(repo, "release-1", "release-1", 9000)
    # an index tagged by a kept release: its untagged children stay
    kids = [tree.image(repo, f"kid{i}") for i in range(2)]
    d["kept-kids"] = ",".join(digest for _, digest in kids)
    for _, digest in kids:
        tree.age_manifest(repo, digest, 9000)
    d["v3.0-index"] = tree.index(repo, "v3.0", kids, 9000)
    # an index tagged by a build that goes: its children go with it
    gone_kids = [tree.image(repo, f"gonekid{i}") for i in range(2)]
    d["gone-kids"] = ",".join(digest for _, digest in gone_kids)
    for _, digest in gone_kids:
        tree.age_manifest(repo, digest, 400)
    d["b0-index"] = tree.index(repo, "b0", gone_kids, 400)
    # referrers: of a kept image (stays), of an image that goes (goes with it)
    _, b6_body = tree.api.get_manifest(repo, d["b6"])
    d["sig-b6"] = tree.referrer(repo, b6_body, "sig-b6", 400)
    _status, b2_body = tree.api.get_manifest(repo, d["b2"])
    d["sig-b2"] = tree.referrer(repo, b2_body, "sig-b2", 1)
    # untagged: "latest" moved 60 h ago (old one goes), "edge" moved 10 h ago (old one stays),
    # an old one pulled by digest 5 h ago (stays), one pushed by digest long ago (goes)
    d["latest-old"] = tree.tagged(repo, "latest", "latest-old", 500)
    d["latest"] = tree.tagged(repo, "latest", "latest-new", 60)
    d["edge-old"] = tree.tagged(repo, "edge", "edge-old", 500)
    d["edge"] = tree.tagged(repo, "edge", "edge-new", 10)
    _, d["pulled-untagged"] = tree.image(repo, "pulled-untagged")
    tree.age_manifest(repo, d["pulled-untagged"], 500)
    _, d["orphan"] = tree.image(repo, "orphan")
    tree.age_manifest(repo, d["orphan"], 500)
    tree.pulled(repo, {"b1": 100, d["pulled-untagged"]: 5})
    # plain/x: one tag survives; no untagged rule, so untagged manifests stay
    d["x-old"] = tree.tagged("plain/x", "old", "x-old", 20)
    d["x-new"] = tree.tagged("plain/x", "new", "x-new", 10)
    _, d["x-untagged"] = tree.image("plain/x", "x-untagged")
    tree.age_manifest("plain/x", d["x-untagged"], 9000)
    # other: no policy at all
    d["other"] = tree.tagged("other", "ancient", "other", 9000)
    tree.age_blobs()
    tree.pulls_recorded_since(2000)
    return d


def run(tree: Tree, dry_run: bool, collect: bool = False):
    config = tree.config
    driver = tree.driver
    return retention.run_once(
        config,
        driver,
        dry_run=dry_run,
        collect=collect,
        locks=locks.from_config(config, driver),
    )


def test_every_rule(tree: Tree) -> None:
    d = build(tree)
    report, collected = run(tree, dry_run=False)
    assert collected is None
    # regex: v*; the 3 most recent within 100 h: b6 (2 h), then b5 and edge (10 h; b4, b3 and
    # latest are older); pulled within 720 h: b1; immutable: release-1
    assert tree.tags("ci/app") == {"v1.0", "v2.3", "v3.0", "b1", "b5", "b6", "edge", "release-1"}
    assert tree.tags("plain/x") == {"new"}
    assert tree.tags("other") == {"ancient"}

    has = lambda digest: tree.has_manifest("ci/app", digest)  # noqa: E731
    for role in ("v1.0", "v2.3", "b1", "b5", "b6", "release-1", "v3.0-index", "edge"):
        assert has(d[role]), role
    for kid in d["kept-kids"].split(","):
        assert has(kid), "a child of a kept index"
    assert has(d["sig-b6"]), "a referrer of a kept image"
    assert has(d["edge-old"]), "untagged 10 h ago"
    assert has(d["pulled-untagged"]), "pulled 5 h ago"
    for role in ("b2", "b3", "b4", "b0-index", "latest", "latest-old", "orphan", "sig-b2"):
        assert not has(d[role]), role
    for kid in d["gone-kids"].split(","):
        assert not has(kid), "a child of an index that went"
    assert tree.has_manifest("plain/x", d["x-untagged"]), "no untagged rule"
    assert not tree.has_manifest("plain/x", d["x-old"])
    assert tree.has_manifest("other", d["other"])

    outcome = {o.name: o for o in report.repositories}
    assert sorted(outcome) == ["ci/app", "plain/x"]
    app = outcome["ci/app"]
    assert set(app.deleted_tags) == {"b0", "b2", "b3", "b4", "latest"}
    assert app.kept_tags["release-1"] == "immutable[0]"
    assert app.kept_tags["b1"].endswith("keep[2]")
    assert app.kept_tags["v1.0"].endswith("keep[0]")
    assert report.freed_bytes > 0


def test_freed_bytes_are_what_the_collection_frees(tree: Tree) -> None:
    build(tree)
    before = stored_blobs(tree.root)
    report, collected = run(tree, dry_run=False, collect=True)
    assert collected is not None
    after = stored_blobs(tree.root)
    assert sum(before.values()) - sum(after.values()) == report.freed_bytes
    assert len(before) - len(after) == report.freed_blobs


def test_dry_run_changes_nothing_and_says_the_same(tree: Tree, tmp_path: Path) -> None:
    build(tree)
    before = tree.snapshot()
    dry, _ = run(tree, dry_run=True)
    assert tree.snapshot() == before
    real, _ = run(tree, dry_run=False)
    assert [(o.name, o.deleted_tags, o.deleted_manifests) for o in dry.repositories] == [
        (o.name, o.deleted_tags, o.deleted_manifests) for o in real.repositories
    ]
    assert (dry.freed_bytes, dry.freed_blobs) == (real.freed_bytes, real.freed_blobs)
    lines = list(dry.lines())
    assert "ci/app (storage.maintenance.retention.policies[0]):" in lines
    assert any(line.startswith("  would delete tag b2 (sha256:") for line in lines)
    assert "would delete" in dry.summary() and "freed once collected" in dry.summary()


def test_usage_follows_the_run(tree: Tree) -> None:
    build(tree)
    run(tree, dry_run=False)
    report = usage.load_report(tree.driver)
    rows = {row["name"]: row for row in report["repositories"]}
    assert rows["ci/app"]["tags"] == len(tree.tags("ci/app")) == 8
    assert rows["plain/x"]["tags"] == 1


def test_quota_crossings_of_both_usage_refreshes_are_told(tmp_path: Path) -> None:
    quota = '    quotas:\n      - {repositories: "plain/*", limit: 1}\naccess:\n'
    tree = Tree.make(tmp_path / "root", POLICY.replace("access:\n", quota))
    build(tree)
    told: list = []
    retention.run_once(
        tree.config,
        tree.driver,
        dry_run=False,
        collect=False,
        locks=locks.from_config(tree.config, tree.driver),
        announce=told.extend,
    )
    # found by the refresh before the deletions (plain/x stays over its byte)
    assert [(c.repositories, c.threshold) for c in told] == [("plain/*", 80), ("plain/*", 100)]
    again: list = []
    retention.run_once(
        tree.config, tree.driver, dry_run=False, collect=False, announce=again.extend
    )
    assert again == [], "told once"


def test_a_repository_retention_empties_leaves_the_catalog(tmp_path: Path) -> None:
    """Retention notes what it empties, so a catalog that trusts the notes leaves it out."""
    policy = '    retention:\n      policies:\n        - repositories: ["gone/*"]\n'
    policy += '          keep: [{tags: "^never$"}]\n          untagged: 1h\n'
    tree = Tree.make(tmp_path / "root", policy)
    tree.tagged("gone/app", "v1", "gone", 50)
    tree.tagged("kept/app", "v1", "kept", 50)
    assert emptied.sweep(tree.driver, catalog.looked_into(tree.driver)) == 0
    report, _ = run(tree, dry_run=False)
    assert [outcome.name for outcome in report.repositories] == ["gone/app"]
    assert tree.file(paths.emptied_note("gone/app")).exists()
    assert not tree.file(paths.emptied_note("kept/app")).exists()
    assert catalog.repositories(tree.driver, 100) == (["kept/app"], False)


def _untagged_index(tmp_path: Path) -> tuple[Tree, list[tuple[bytes, str]], str]:
    """``r/app`` with an index of two images, untagged 400 hours ago (the tag moved on), all
    three due to go under ``untagged: 48h``; the tree, the images and the index's digest."""
    policy = '    retention:\n      policies:\n        - repositories: ["r/app"]\n'
    policy += "          keep: [{mostrecent: 1}]\n          untagged: 48h\n"
    tree = Tree.make(tmp_path / "root", policy)
    repo = "r/app"
    kids = [tree.image(repo, f"kid{i}") for i in range(2)]
    index = tree.index(repo, "stable", kids, 500)
    tree.tagged(repo, "stable", "moved-on", 400)
    tree.tagged(repo, "new", "new", 1)
    tree.age_blobs()
    tree.pulls_recorded_since(2000)
    return tree, kids, index


def _run_on(tree: Tree, driver) -> retention_run.Report:
    """A run for real on ``driver``, which wraps the tree's storage, with storage locks."""
    settings = retention.parse(tree.config)
    state = usage.refresh(tree.driver, full=True, write=False).state
    return retention_run.run(
        driver, settings, state, dry_run=False, locks=locks.from_config(tree.config, driver)
    )


class _PushOnFirstDelete:
    """The storage driver, but the first deletion (retention's first tag) lets ``push`` run
    first: a push that lands while a run is deleting."""

    def __init__(self, driver, push) -> None:
        self._driver = driver
        self._push = push

    def __getattr__(self, name: str):
        return getattr(self._driver, name)

    def delete(self, path: str) -> None:
        push, self._push = self._push, None
        if push is not None:
            push()
        self._driver.delete(path)


def test_an_index_tagged_again_during_the_run_keeps_its_children(tmp_path: Path) -> None:
    """A rollback while retention runs: an old untagged index (its children untagged too, all
    due to go) is tagged again while the run deletes tags. The index stays, since its link
    changed, and so must its children, which the push did not rewrite."""
    tree, kids, index = _untagged_index(tmp_path)
    repo = "r/app"
    status, index_body = tree.api.get_manifest(repo, index)
    assert status == 200
    pushed: list[str] = []

    def rollback() -> None:
        pushed.append(tree.api.push_manifest(repo, "rollback", index_body, OCI_INDEX))

    report = _run_on(tree, _PushOnFirstDelete(tree.driver, rollback))
    assert pushed == [index]
    assert "stable" in report.repositories[0].deleted_tags
    assert tree.has_manifest(repo, index)
    for body, digest in kids:
        assert tree.has_manifest(repo, digest), "a child of the index tagged again"
        assert tree.api.get_manifest(repo, digest) == (200, body)


class _PushBeforeFirstManifestLock:
    """The storage driver, but ``push`` runs just before retention locks its first manifest:
    after the run's last read of the repository, before it unlinks what it decided on."""

    def __init__(self, driver, push) -> None:
        self._driver = driver
        self._push = push

    def __getattr__(self, name: str):
        return getattr(self._driver, name)

    def lock(self, path: str, timeout: float, check: bool = True):
        if "/_manifests/revisions/" in path:
            push, self._push = self._push, None
            if push is not None:
                push()
        return self._driver.lock(path, timeout, check)


def test_an_index_pushed_after_the_last_read_keeps_its_children(tmp_path: Path) -> None:
    """A new index of old untagged images, pushed when the run has read the repository for
    the last time and is about to unlink those images: the push writes each child's link again
    under the child's lock, so the run finds them changed and leaves them."""
    tree, kids, old = _untagged_index(tmp_path)
    repo = "r/app"
    pushed: list[str] = []

    def push_index() -> None:
        pushed.append(tree.api.push_manifest(repo, "rebuilt", rebuilt, OCI_INDEX))

    _, old_body = tree.api.get_manifest(repo, old)
    document = json.loads(old_body)
    document["manifests"].reverse()
    rebuilt = json.dumps(document).encode()
    report = _run_on(tree, _PushBeforeFirstManifestLock(tree.driver, push_index))
    (outcome,) = report.repositories
    assert len(pushed) == 1 and pushed[0] != old
    assert old in outcome.deleted_manifests and not tree.has_manifest(repo, old)
    for body, digest in kids:
        assert digest not in outcome.deleted_manifests
        assert f"manifest {digest}" in outcome.skipped
        assert tree.api.get_manifest(repo, digest) == (200, body), "a child of the new index"
    assert tree.api.get_manifest(repo, pushed[0]) == (200, rebuilt)


def test_the_collection_after_a_run_honours_the_gc_dry_run(tmp_path: Path) -> None:
    """``storage.maintenance.gc.dryrun`` makes every collection only say what it would delete,
    the one that follows retention included (it takes ``age`` and ``deleteuntagged`` from the
    same section)."""
    tree = Tree.make(
        tmp_path / "root",
        POLICY.replace("    retention:", "    gc: {dryrun: true}\n    retention:"),
    )
    build(tree)
    before = stored_blobs(tree.root)
    report, collected = run(tree, dry_run=False, collect=True)
    assert report.deleted_manifests and collected is not None
    assert collected.blobs, "the collection found what it would free"
    assert stored_blobs(tree.root) == before


def test_an_index_that_goes_takes_its_children_without_an_untagged_rule(tmp_path: Path) -> None:
    """A multi-arch image whose tag goes goes whole: its children (untagged, as every index's
    are) follow the index, as a referrer follows its subject, whatever ``untagged`` says."""
    policy = '    retention:\n      policies:\n        - repositories: ["r/app"]\n'
    policy += "          keep: [{mostrecent: 1}]\n"
    tree = Tree.make(tmp_path / "root", policy)
    repo = "r/app"
    kids = [tree.image(repo, f"kid{i}") for i in range(2)]
    for _, digest in kids:
        tree.age_manifest(repo, digest, 500)
    index = tree.index(repo, "old", kids, 500)
    kept_kids = [tree.image(repo, f"kept-kid{i}") for i in range(2)]
    for _, digest in kept_kids:
        tree.age_manifest(repo, digest, 500)
    kept_index = tree.index(repo, "new", kept_kids, 1)
    _, loose = tree.image(repo, "loose")  # untagged, no index: stays without the rule
    tree.age_manifest(repo, loose, 500)
    tree.pulls_recorded_since(2000)
    report, _ = run(tree, dry_run=False)
    assert report.repositories[0].deleted_tags.keys() == {"old"}
    assert not tree.has_manifest(repo, index)
    for _, digest in kids:
        assert not tree.has_manifest(repo, digest), "a child of the index that went"
    assert tree.has_manifest(repo, kept_index) and tree.has_manifest(repo, loose)
    for _, digest in kept_kids:
        assert tree.has_manifest(repo, digest), "a child of the index that stays"
