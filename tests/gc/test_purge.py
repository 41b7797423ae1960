"""Upload purging (Go's ``PurgeUploads``) and the maintenance lease, on real storage and Redis."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from distribution import maintenance
from distribution.leases import RedisLease
from distribution.storage import paths, purge
from distribution.storage.driver import create
from tests.conftest import make_app
from tests.gc.content import Api, flask_send
from tests.gc.test_collect import CONFIG
from tests.redis_server import RedisServer


def start_upload(api: Api, repo: str) -> str:
    status, headers, _ = api.send("POST", f"/v2/{repo}/blobs/uploads/", b"", {})
    assert status == 202
    return headers["Docker-Upload-UUID"]


def backdate(root: Path, repo: str, upload: str, days: int) -> None:
    stamp = (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (root / paths.upload_started_at(repo, upload).lstrip("/")).write_text(stamp)


@pytest.mark.parametrize("dry_run", [False, True])
def test_purge_removes_old_uploads_only(tmp_path: Path, dry_run: bool) -> None:
    root = tmp_path / "root"
    api = Api(flask_send(make_app(CONFIG.format(root=root)).test_client()))
    old = start_upload(api, "app")
    nested_old = start_upload(api, "team/app")
    young = start_upload(api, "app")
    undated = start_upload(api, "app")
    backdate(root, "app", old, days=8)
    backdate(root, "team/app", nested_old, days=30)
    (root / paths.upload_started_at("app", undated).lstrip("/")).unlink()
    driver = create("filesystem", {"rootdirectory": str(root)})

    result = purge.purge_uploads(driver, datetime.now(UTC) - timedelta(days=7), not dry_run)

    assert sorted(result.deleted) == [
        paths.upload("app", old),
        paths.upload("team/app", nested_old),
    ]
    assert result.errors == []
    exists = {
        u: (root / paths.upload(r, u).lstrip("/")).exists()
        for r, u in [("app", old), ("team/app", nested_old), ("app", young), ("app", undated)]
    }
    assert exists == {old: dry_run, nested_old: dry_run, young: True, undated: True}
    # The young upload still works after the purge.
    status, _, _ = api.send("GET", f"/v2/app/blobs/uploads/{young}", b"", {})
    assert status == 204


def test_storage_lease_has_one_holder_until_it_expires(tmp_path: Path) -> None:
    driver = create("filesystem", {"rootdirectory": str(tmp_path)})
    first = maintenance.StorageLease(driver, "first", ttl=1.0)
    second = maintenance.StorageLease(driver, "second", ttl=1.0)
    assert first.acquire()
    assert not second.acquire()
    assert first.acquire()  # renewal
    first.release()
    assert second.acquire()
    assert not first.acquire()


def test_redis_lease_has_one_holder_and_moves_when_it_expires(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis").start()
    try:
        first = RedisLease(server.client(), maintenance.REDIS_KEY, "first", ttl=0.5)
        second = RedisLease(server.client(), maintenance.REDIS_KEY, "second", ttl=0.5)
        assert first.acquire() and first.acquire()
        assert not second.acquire()
        second.release()  # not the owner: nothing happens
        assert not second.acquire()
        time.sleep(0.7)
        assert second.acquire()
        assert not first.acquire()
    finally:
        server.stop()
