"""Retention and usage run by the maintenance scheduler of ``registry serve``: old tags go, the
collection that follows frees their blobs, and the usage figures follow; a dry run only says."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import requests

from distribution.digest import Digest
from distribution.storage import paths
from tests.gc.content import Api, http_send, layer, stored_blobs

TIMEOUT = 60.0
OLD = time.time() - 1000 * 3600

CONFIG = """
version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance:
    uploadpurging: {{enabled: false}}
    gc: {{age: 1s}}
    usage: {{interval: 1s}}
    retention:
      enabled: true
      interval: 2s
      dryrun: {dryrun}
      policies:
        - {{repositories: "ci/**", keep: [{{mostrecent: 2}}]}}
http:
  secret: schedule-secret
"""


@pytest.mark.parametrize("dryrun", [False, True], ids=["real", "dry"])
def test_the_scheduler_applies_retention(tmp_path: Path, start_registry, dryrun: bool) -> None:
    root = tmp_path / "root"
    registry = start_registry(CONFIG.format(root=root, dryrun=str(dryrun).lower()))
    api = Api(http_send(registry.url))
    for i in range(5):
        body, _ = api.image("ci/app", [layer(f"build {i}")], f"b{i}")
        digest = api.push_manifest("ci/app", f"b{i}", body)
        _age(root, paths.tag_current_link("ci/app", f"b{i}"), hours=100 - i)
        _age(root, paths.manifest_revision_link("ci/app", Digest.parse(digest)), hours=100 - i)
    for path in (root / "docker/registry/v2").rglob("*"):
        if path.name == "data" or "_layers" in path.parts:
            os.utime(path, (OLD, OLD))
    before = sum(stored_blobs(root).values())
    deadline = time.monotonic() + TIMEOUT
    while True:
        report = requests.get(f"{registry.url}/v2/_usage?repository=ci/app", timeout=10)
        tags = report.json()["repository"]["tags"] if report.status_code == 200 else None
        if dryrun and "retention: 1 repositories under a policy, would delete" in registry.log:
            break
        if not dryrun and tags == 2 and sum(stored_blobs(root).values()) < before:
            break
        assert time.monotonic() < deadline, registry.log
        time.sleep(0.5)
    listed = requests.get(f"{registry.url}/v2/ci/app/tags/list", timeout=10).json()["tags"]
    if dryrun:
        assert len(listed) == 5
        assert "would delete 3 tags and 3 manifests" in registry.log
        return
    assert listed == ["b3", "b4"]
    assert re.search(r"retention: ci/app: deleted 3 tags and 3 manifests", registry.log)
    assert "garbage collection finished" in registry.log
    assert "Traceback" not in registry.log


def _age(root: Path, path: str, hours: float) -> None:
    when = time.time() - hours * 3600
    os.utime(root / path.lstrip("/"), (when, when))
