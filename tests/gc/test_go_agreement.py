"""``registry garbage-collect`` against the Go registry's, on one tree our registry wrote.

The tree: skopeo pushes the end-to-end test images (an OCI image under several tags, an OCI
index and a Docker manifest list of two platforms, a Docker image) and the API pushes the GC
scenario (referrers, an image that lost its tag, a deleted manifest, a stray blob). The
registry is stopped, the tree copied, and each GC runs on its own copy.

Without ``--delete-untagged`` we and Go 2.8.2 delete exactly the same blobs. With it we
legitimately disagree, and the test pins the difference: 2.8.2 deletes the untagged children
of a tagged index (their revision links and their layers and configs, leaving the index
broken; v3 fixed this and keeps them, as we do), and it deletes the untagged referrer of a
tagged image (v3 does too; we keep referrers of kept manifests, as the OCI spec advises).
Everything else it deletes, we delete.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import checks
from tests.e2e.harness import GO_REGISTRY, Server, Skopeo, config_text
from tests.gc.content import (
    Api,
    Scenario,
    check_pullable,
    disk_usage,
    http_send,
    push_scenario,
    stored_blobs,
)

TIMEOUT = 120


def garbage_collect(kind: str, root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    config = root.parent / f"{root.name}.yml"
    config.write_text(config_text(root, 5000))
    if kind == "go":
        command = [GO_REGISTRY, "garbage-collect", *flags, str(config)]
    else:
        command = [sys.executable, "-m", "distribution", "garbage-collect", *flags, str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-2000:])
    return result


@pytest.fixture
def tree(tmp_path: Path, start_server, skopeo: Skopeo, image_set: checks.ImageSet):
    """A tree our registry wrote, with the registry stopped; and what was pushed."""
    server = start_server("python", tmp_path / "written")
    checks.push_all(skopeo, server, image_set)
    scenario = push_scenario(Api(http_send(server.url)))
    server.stop()
    return tmp_path / "written", scenario


def children_blobs(image_set: checks.ImageSet) -> set[str]:
    """Configs and layers reached only through the children of the index and the list."""
    blobs = set()
    for parent in (image_set.oci_index, image_set.docker_list):
        for child in parent.children:
            blobs |= set(child.blobs)
    return blobs


def test_dry_run_changes_nothing_and_agrees_with_go(tree, tmp_path: Path) -> None:
    root, scenario = tree
    before = stored_blobs(root)
    ours = garbage_collect("python", root, "--dry-run")
    go_copy = tmp_path / "go"
    shutil.copytree(root, go_copy)
    go = garbage_collect("go", go_copy, "--dry-run")
    assert stored_blobs(root) == before
    assert _eligible(ours.stdout) == _eligible(go.stdout) == scenario.garbage
    assert _summary(ours.stdout) == _summary(go.stdout)
    assert "dry run: nothing deleted" in ours.stdout


def test_collect_agrees_with_go_and_kept_images_still_pull(
    tree, tmp_path: Path, start_server, skopeo: Skopeo, image_set: checks.ImageSet
) -> None:
    root, scenario = tree
    go_copy = tmp_path / "go"
    shutil.copytree(root, go_copy)
    before, usage = stored_blobs(root), disk_usage(root)
    ours = garbage_collect("python", root)
    garbage_collect("go", go_copy)
    ours_deleted = set(before) - set(stored_blobs(root))
    go_deleted = set(before) - set(stored_blobs(go_copy))
    assert ours_deleted == go_deleted == scenario.garbage
    freed = sum(before[d] for d in ours_deleted)
    assert f"({freed} bytes freed)" in ours.stdout
    assert usage - disk_usage(root) >= freed
    _check_everything_pulls(root, tmp_path, start_server, skopeo, image_set, scenario)


def test_delete_untagged_differs_from_go_282_only_as_documented(
    tree, tmp_path: Path, start_server, skopeo: Skopeo, image_set: checks.ImageSet
) -> None:
    root, scenario = tree
    go_copy = tmp_path / "go"
    shutil.copytree(root, go_copy)
    before = stored_blobs(root)
    ours = garbage_collect("python", root, "--delete-untagged")
    garbage_collect("go", go_copy, "--delete-untagged")
    ours_deleted = set(before) - set(stored_blobs(root))
    go_deleted = set(before) - set(stored_blobs(go_copy))
    assert ours_deleted == scenario.garbage | scenario.untagged
    expected_difference = children_blobs(image_set) | scenario.index_children_blobs
    expected_difference |= scenario.referrer
    assert go_deleted - ours_deleted == expected_difference
    assert ours_deleted <= go_deleted
    for digest in scenario.untagged_manifests:
        assert f"manifest eligible for deletion: {{app {digest} [" in ours.stdout
    _check_everything_pulls(root, tmp_path, start_server, skopeo, image_set, scenario)


def _check_everything_pulls(root, tmp_path, start_server, skopeo, image_set, scenario: Scenario):
    """Serve the collected tree again: every kept image pulls with skopeo, byte for byte."""
    server: Server = start_server("python", root)
    for repo_ref, img in image_set.pushed().items():
        checks.check_manifest(skopeo, server, repo_ref, img)
    pulled = tmp_path / "pulled"
    checks.pull_oci(skopeo, server, "oci/image:latest", image_set.oci_image, pulled / "image")
    checks.pull_oci(skopeo, server, "oci/index:multi", image_set.oci_index, pulled / "index")
    checks.pull_dir(
        skopeo, server, "docker/image:v2s2", image_set.docker_image, pulled / "docker-image"
    )
    checks.pull_dir(
        skopeo, server, "docker/list:multi", image_set.docker_list, pulled / "docker-list"
    )
    skopeo.copy(checks.docker_ref(server, "multi:multi"), f"oci:{pulled / 'multi'}:x", "--all")
    check_pullable(Api(http_send(server.url)), scenario)


def _eligible(stdout: str) -> set[str]:
    prefix = "blob eligible for deletion: "
    return {line[len(prefix) :] for line in stdout.splitlines() if line.startswith(prefix)}


def _summary(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if "eligible for deletion" in line)
