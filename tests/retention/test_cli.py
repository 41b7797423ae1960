"""``registry retention``, ``registry usage`` and ``registry delete-repository`` as commands,
and ``registry serve`` refusing bad sections at start-up."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from distribution import maintenance, usage
from distribution.storage import gc
from tests.conftest import free_port
from tests.gc.content import stored_blobs
from tests.retention.test_run import POLICY, build
from tests.retention.tree import Tree
from tests.usage.conftest import du


def registry(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "distribution", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    return Tree.make(tmp_path / "root", POLICY)


@pytest.fixture
def config(tree: Tree, tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(tree.config_text.replace("{{", "{").replace("}}", "}"))
    return path


def test_retention_says_when_the_lease_cannot_be_taken(tree: Tree, config: Path) -> None:
    """With Redis down, the command says so rather than blame another registry."""
    config.write_text(f"{config.read_text()}redis: {{addr: '127.0.0.1:{free_port()}'}}\n")
    refused = registry("retention", config)
    assert refused.returncode == 1
    assert "registry retention: cannot take the maintenance lease: " in refused.stderr
    assert "another registry" not in refused.stderr


def test_retention_dry_run_then_for_real(tree: Tree, config: Path) -> None:
    build(tree)
    before = tree.snapshot()
    dry = registry("retention", "--dry-run", config)
    assert dry.returncode == 0, dry.stderr
    assert tree.snapshot() == before
    lines = dry.stdout.splitlines()
    assert "ci/app (storage.maintenance.retention.policies[0]):" in lines
    assert any(line.startswith("  would delete tag b2 (sha256:") for line in lines)
    summary = lines[-1]
    assert summary.startswith("retention: 2 repositories under a policy, would delete 6 tags")
    freed = int(summary.split("; ")[1].split(" bytes")[0])

    holder = maintenance.StorageLease(tree.driver, "someone else")
    assert holder.acquire()
    busy = registry("retention", config)
    assert busy.returncode == 1 and "another registry holds the maintenance lease" in busy.stderr
    holder.release()

    stored = sum(stored_blobs(tree.root).values())
    done = registry("retention", "--collect", config)
    assert done.returncode == 0, done.stderr
    assert any(line.startswith("  deleted tag b2 (sha256:") for line in done.stdout.splitlines())
    assert "garbage collection finished" in done.stdout
    assert stored - sum(stored_blobs(tree.root).values()) == freed
    assert tree.tags("ci/app") == {"v1.0", "v2.3", "v3.0", "b1", "b5", "b6", "edge", "release-1"}
    again = registry("retention", "--dry-run", config)
    assert "would delete 0 tags and 0 manifests" in again.stdout


def test_usage_command(tree: Tree, config: Path) -> None:
    build(tree)
    shown = registry("usage", "--json", config)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["total"]["stored_bytes"] == sum(du(tree.root).values())
    assert [row["name"] for row in report["repositories"]] == ["ci/app", "other", "plain/x"]
    assert [row["name"] for row in report["namespaces"]] == ["ci", "other", "plain"]
    table = registry("usage", config)
    assert table.returncode == 0, table.stderr
    assert "\nREPOSITORY\tTAGS\tMANIFESTS\tBYTES\tEXCLUSIVE\tSHARED\tLAST PUSH\tLAST PULL\n" in (
        table.stdout
    )
    assert "\nci/app\t13\t" in table.stdout
    nothing_yet = registry("usage", "--cached", config)
    assert nothing_yet.returncode == 1 and "not computed usage yet" in nothing_yet.stderr
    usage.refresh(tree.driver)
    cached = json.loads(registry("usage", "--cached", "--json", config).stdout)
    assert cached["total"]["bytes"] == report["total"]["bytes"]


def test_delete_repository_command(tree: Tree, config: Path) -> None:
    build(tree)
    dry = registry("delete-repository", "--dry-run", config, "plain/x")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(
        "would delete plain/x: 2 tags, 3 manifests, 6 layer links, 0 uploads"
    )
    freed = int(dry.stdout.splitlines()[-1].split(" bytes would be freed once collected")[0])
    assert tree.tags("plain/x") == {"old", "new"}
    stored = sum(stored_blobs(tree.root).values())
    done = registry("delete-repository", config, "plain/x")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted plain/x: 2 tags")
    assert tree.tags("plain/x") == set()
    gc.collect(tree.driver, gc.Options(), emit=lambda line: None)
    assert stored - sum(stored_blobs(tree.root).values()) == freed
    # the running registry's usage job hears of it
    outcome = usage.refresh(tree.driver, full=False)
    assert "plain/x" not in outcome.report.repositories
    frozen = registry("delete-repository", config, "ci/app")
    assert frozen.returncode == 1 and "release-1 (immutable[0])" in frozen.stderr
    unknown = registry("delete-repository", config, "no/such")
    assert unknown.returncode == 1 and "no repository no/such" in unknown.stderr
    bad = registry("delete-repository", config, "Bad//name")
    assert bad.returncode == 1 and "not a repository name" in bad.stderr


@pytest.mark.parametrize(
    ("section", "key"),
    [
        (
            "    retention: {policies: [{repositories: a, keep: [{mostrecnet: 1}]}]}",
            "storage.maintenance.retention.policies[0].keep[0].mostrecnet",
        ),
        ("    quotas: [{repositories: a, limit: much}]", "storage.maintenance.quotas[0].limit"),
        ("    usage: {interval: often}", "storage.maintenance.usage.interval"),
    ],
)
def test_bad_sections_stop_the_commands_and_serve(tmp_path: Path, section: str, key: str) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "version: 0.1\nstorage:\n  filesystem: {rootdirectory: "
        f"{tmp_path}}}\n  maintenance:\n{section}\nhttp: {{addr: '127.0.0.1:0'}}\n"
    )
    for command in (["usage"], ["retention"], ["serve"]):
        result = registry(*command, config)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert key in result.stderr, (command, result.stderr)


def test_go_reads_the_same_file(tmp_path: Path) -> None:
    """The sections sit where the Go registry ignores them: it serves on this very file."""
    port = free_port()
    config = tmp_path / "config.yml"
    config.write_text(
        f"""version: 0.1
storage:
  filesystem: {{rootdirectory: {tmp_path / "root"}}}
  maintenance:
    usage: {{interval: 5m, fullscan: 24h}}
    quotas: [{{repositories: "team-a/**", limit: 50GiB}}]
{POLICY.split("access:")[0]}access:
  immutable: [{{repositories: "ci/**", tags: "release-*"}}]
http:
  addr: 127.0.0.1:{port}
"""
    )
    assert registry("usage", config).returncode == 0
    go = subprocess.Popen(
        ["/usr/bin/docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                assert go.poll() is None, go.stderr.read() if go.stderr else ""
                assert time.monotonic() < deadline, "the Go registry did not start"
                time.sleep(0.2)
    finally:
        go.terminate()
        go.wait(10)
