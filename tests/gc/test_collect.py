"""Mark and sweep on a filesystem registry filled through the API (Flask client), offline and
online, dry run and real."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from distribution.digest import Digest
from distribution.storage import gc, paths
from distribution.storage.driver import create
from tests.conftest import make_app
from tests.gc.content import (
    OCI_MANIFEST,
    Api,
    check_pullable,
    disk_usage,
    flask_send,
    push_scenario,
    references,
    sha256,
    stored_blobs,
)

CONFIG = """
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http:
  secret: test-secret
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def api(root: Path) -> Api:
    return Api(flask_send(make_app(CONFIG.format(root=root)).test_client()))


def run(root: Path, **options) -> tuple[gc.Report, list[str]]:
    lines: list[str] = []
    driver = create("filesystem", {"rootdirectory": str(root)})
    report = gc.collect(driver, gc.Options(**options), emit=lines.append)
    return report, lines


def age_everything(root: Path, seconds: float = 7200) -> None:
    """Make every file look written ``seconds`` ago, as data that has been there a while."""
    then = time.time() - seconds
    for path in root.rglob("*"):
        os.utime(path, (then, then))


def layer_links(root: Path, repo: str) -> set[str]:
    folder = root / "docker/registry/v2/repositories" / repo / "_layers/sha256"
    return {f"sha256:{p.name}" for p in folder.iterdir() if (p / "link").exists()}


def test_dry_run_deletes_nothing_and_lists_what_would_go(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    before = stored_blobs(root)
    usage = disk_usage(root)
    report, lines = run(root, dry_run=True)
    assert stored_blobs(root) == before
    assert disk_usage(root) == usage
    assert set(report.blobs) == {Digest.parse(d) for d in scenario.garbage}
    eligible = {line.split(": ", 1)[1] for line in lines if line.startswith("blob eligible")}
    assert eligible == scenario.garbage
    assert (
        f"\n{len(report.marked)} blobs marked, {len(scenario.garbage)} blobs and 0 manifests "
        "eligible for deletion" in lines
    )
    assert "app" in lines and "multi/" not in lines
    assert any(line.startswith("multi: marking manifest sha256:") for line in lines)
    assert f"app: layer link eligible for deletion: {scenario.stray}" in lines


def test_collect_keeps_every_manifest_and_deletes_unreferenced_blobs(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    before = stored_blobs(root)
    usage = disk_usage(root)
    report, _ = run(root)
    after = stored_blobs(root)
    assert set(before) - set(after) == scenario.garbage
    assert report.deleted_blobs == len(scenario.garbage)
    assert report.bytes_freed == sum(before[d] for d in scenario.garbage)
    assert usage - disk_usage(root) >= report.bytes_freed
    assert scenario.stray not in layer_links(root, "app")
    for digest in scenario.garbage:
        assert api.blob_status("app", digest) == 404
        assert not (root / paths.blob_dir(Digest.parse(digest)).lstrip("/")).exists()
    check_pullable(api, scenario)
    for digest in scenario.untagged_manifests:
        assert api.get_manifest("app", digest)[0] == 200
    assert run(root)[0].blobs == {}


def test_delete_untagged_keeps_index_children_and_referrers(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    before = stored_blobs(root)
    report, lines = run(root, delete_untagged=True)
    deleted = set(before) - set(stored_blobs(root))
    assert deleted == scenario.garbage | scenario.untagged
    assert {str(d.digest) for d in report.manifests} == set(scenario.untagged_manifests)
    for digest in scenario.untagged_manifests:
        assert any(
            line.startswith(f"manifest eligible for deletion: {{app {digest} [") for line in lines
        )
        assert api.get_manifest("app", digest)[0] == 404
        history = root / "docker/registry/v2/repositories/app/_manifests/tags/latest/index"
        assert not (history / "sha256" / digest.removeprefix("sha256:")).exists()
    check_pullable(api, scenario)
    assert api.get_manifest("multi", "multi")[0] == 200


@pytest.mark.parametrize("delete_untagged", [False, True])
def test_tags_are_read_only_to_find_untagged_manifests(
    api: Api, root: Path, delete_untagged: bool
) -> None:
    """Without ``delete_untagged`` every manifest is kept whatever its tags: a cold mark then
    spares a disk read a repository."""
    push_scenario(api)
    driver = create("filesystem", {"rootdirectory": str(root)})
    read: list[str] = []
    for method in ("list", "get_content", "stat"):
        original = getattr(driver, method)
        setattr(driver, method, lambda path, _o=original: (read.append(path), _o(path))[1])
    gc.collect(driver, gc.Options(dry_run=True, delete_untagged=delete_untagged))
    assert any("/_manifests/tags" in path for path in read) is delete_untagged
    assert any("/_manifests/revisions" in path for path in read)


def test_online_spares_young_blobs(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    before = stored_blobs(root)
    report, _ = run(root, online=True, grace=3600, delete_untagged=True, settle=0)
    assert stored_blobs(root) == before
    assert report.blobs == {} and report.manifests == []
    # Young untagged manifests are roots, so only the unreferenced blobs count as spared.
    assert report.spared == len(scenario.garbage)


def test_online_deletes_old_garbage(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    age_everything(root)
    before = stored_blobs(root)
    report, _ = run(root, online=True, grace=60, delete_untagged=True, settle=0)
    assert set(before) - set(stored_blobs(root)) == scenario.garbage | scenario.untagged
    assert report.bytes_freed == sum(before[d] for d in scenario.garbage | scenario.untagged)
    assert not list((root / "docker/registry/v2/_maintenance/gc/trash").rglob("data"))
    check_pullable(api, scenario)


def test_online_fresh_layer_link_protects_an_old_blob(api: Api, root: Path) -> None:
    """An old unreferenced blob uploaded again (its link rewritten) is in use by a push."""
    scenario = push_scenario(api)
    age_everything(root)
    link = root / paths.layer_link("app", Digest.parse(scenario.stray)).lstrip("/")
    os.utime(link)
    report, _ = run(root, online=True, grace=60, settle=0)
    assert scenario.stray in stored_blobs(root)
    assert Digest.parse(scenario.stray) not in report.blobs


def test_online_manifest_written_during_quarantine_brings_its_blobs_back(
    api: Api, root: Path
) -> None:
    """The race GC must survive: a manifest PUT checked its blobs just before the quarantine
    and writes its revision link during it. The rescan finds the manifest and restores them.

    A PUT that checks after the quarantine started is refused instead (MANIFEST_BLOB_UNKNOWN),
    so it can never store a manifest whose blob is then deleted.
    """
    scenario = push_scenario(api)
    age_everything(root)
    old_image = scenario.old_image
    status, old_body = api.get_manifest("app", old_image)
    assert status == 200
    # Blobs only the untagged old image references: quarantined by --delete-untagged.
    doomed = [d for d in scenario.untagged if d in references(old_body)]
    assert doomed
    driver = create("filesystem", {"rootdirectory": str(root)})
    options = gc.Options(online=True, grace=60, delete_untagged=True, settle=1.5)
    result: list[gc.Report] = []
    collector = threading.Thread(
        target=lambda: result.append(gc.collect(driver, options, emit=str))
    )
    collector.start()
    trash = root / "docker/registry/v2/_maintenance/gc/trash"
    deadline = time.monotonic() + 30
    while not list(trash.rglob("data")) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(trash.rglob("data")), "nothing was quarantined"
    # A PUT that checks now is refused: its blobs are in quarantine.
    status, body = api.put_manifest("app", "late", old_body, OCI_MANIFEST)
    assert status == 400 and b"MANIFEST_BLOB_UNKNOWN" in body
    # The second half of a PUT that checked before the quarantine: blob, revision link, tag.
    digest = Digest.parse(old_image)
    driver.put_content(paths.blob_data(digest), old_body)
    driver.put_content(paths.manifest_revision_link("app", digest), old_image.encode())
    driver.put_content(paths.tag_current_link("app", "raced"), old_image.encode())
    collector.join(timeout=60)
    report = result[0]
    assert report.restored >= len(doomed)
    status, body = api.get_manifest("app", "raced")
    assert (status, body) == (200, old_body)
    for blob in references(old_body):
        status, data = api.get_blob("app", blob)
        assert status == 200 and sha256(data) == blob
    check_pullable(api, scenario)


def test_online_restores_what_an_interrupted_run_left_in_quarantine(api: Api, root: Path) -> None:
    scenario = push_scenario(api)
    driver = create("filesystem", {"rootdirectory": str(root)})
    kept = Digest.parse(sorted(scenario.kept)[0])
    driver.move(paths.blob_data(kept), paths.gc_trash_data(kept))
    run(root, online=True, grace=3600, settle=0)
    assert str(kept) in stored_blobs(root)
    check_pullable(api, scenario)


def test_online_manifest_tagged_again_after_the_mark_keeps_its_blobs(api: Api, root: Path) -> None:
    """An old untagged manifest is pushed again under a tag after the mark chose it and before
    the quarantine: the quarantine must not take the link that push just wrote, and the rescan
    must keep what the tag now reaches."""
    scenario = push_scenario(api)
    age_everything(root)
    status, old_body = api.get_manifest("app", scenario.old_image)
    assert status == 200
    driver = create("filesystem", {"rootdirectory": str(root)})
    pushed: list[str] = []

    def emit(line: str) -> None:
        # The summary line comes after the mark and before any deletion.
        if line.startswith("\n") and not pushed:
            pushed.append(api.push_manifest("app", "again", old_body))

    options = gc.Options(online=True, grace=60, delete_untagged=True, settle=0)
    gc.collect(driver, options, emit=emit)
    assert pushed == [scenario.old_image]
    status, body = api.get_manifest("app", "again")
    assert (status, body) == (200, old_body)
    for blob in references(old_body):
        status, data = api.get_blob("app", blob)
        assert status == 200 and sha256(data) == blob, blob
    check_pullable(api, scenario)
