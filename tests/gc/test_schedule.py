"""Maintenance runs in one worker of one replica: two replicas of two workers each, sharing a
storage root and a real Redis, with upload purging and GC due every second."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from distribution.leases import LEASE_TTL
from tests.e2e.harness import children
from tests.gc.content import Api, http_send
from tests.redis_server import RedisServer

TIMEOUT = 30.0
#: The line of the worker that took its replica's lock.
LEADING = r"worker (\d+) runs this replica's maintenance"


def config(root: Path, redis_addr: str | None) -> str:
    redis = f"redis:\n  addr: {redis_addr}\n" if redis_addr else ""
    return f"""\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  maintenance:
    uploadpurging:
      enabled: true
      age: 1s
      interval: 1s
    gc:
      enabled: true
      interval: 1s
      age: 1h
http:
  secret: schedule-secret
{redis}"""


def test_one_worker_of_one_replica_runs_maintenance(tmp_path: Path, start_registry) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        root = tmp_path / "root"
        replicas = [start_registry(config(root, redis.addr)) for _ in range(2)]
        api = Api(http_send(replicas[0].url))
        status, headers, _ = api.send("POST", "/v2/app/blobs/uploads/", b"", {})
        assert status == 202
        upload = f"/v2/app/blobs/uploads/{headers['Docker-Upload-UUID']}"
        deadline = time.monotonic() + TIMEOUT
        while api.send("GET", upload, b"", {})[0] != 404:
            assert time.monotonic() < deadline, "the old upload was never purged"
            time.sleep(0.2)
        time.sleep(3)  # a few more intervals, in which a second runner would show up
        assert redis.client().get("maintenance::lease")
        # Up to the first stop: the stopped leader gives the lease back, for the other to run.
        logs = [replica.stderr for replica in replicas]
        for replica in replicas:
            replica.stop()
    finally:
        redis.stop()
    for replica in replicas:
        assert "Traceback" not in replica.stderr
    for log in logs:
        # One worker per replica took the replica's lock.
        assert len(re.findall(LEADING, log)) == 1, log
    everything = "\n".join(logs)
    for job in ("uploadpurging", "gc"):
        runners = set(re.findall(rf"running {job} in worker (\d+)", everything))
        assert len(runners) == 1, (job, runners)
    runs = [len(re.findall(r"PurgeUploads starting", log)) for log in logs]
    assert sorted(runs)[0] == 0 and sorted(runs)[1] >= 2, runs
    assert "Upload files in" in everything and "Removing upload directory" in everything


def test_a_worker_stopping_during_a_collection_leaves_no_traceback(
    tmp_path: Path, start_registry
) -> None:
    """The collection reads repositories with a thread pool, which the interpreter refuses
    once it shuts down: a worker stopped mid-collection ends the job, it does not crash it."""
    for attempt in range(3):
        root = tmp_path / f"root-{attempt}"  # each its own, whatever the last run left
        repositories = root / "docker/registry/v2/repositories"
        for i in range(4000):  # enough for a collection to be running at any moment
            (repositories / f"r{i:04}/_manifests/revisions/sha256").mkdir(parents=True)
        registry = start_registry(config(root, None).replace("age: 1s", "age: 1h"))
        deadline = time.monotonic() + TIMEOUT
        while "maintenance: running gc" not in registry.stderr:
            assert time.monotonic() < deadline, registry.stderr[-2000:]
            time.sleep(0.1)
        time.sleep(0.2 * attempt)
        assert registry.stop() == 0
        assert "Traceback" not in registry.stderr, registry.stderr[-3000:]


@pytest.mark.parametrize("with_redis", [False, True], ids=["storage-lease", "redis-lease"])
def test_a_stopped_leader_gives_the_lease_back(
    tmp_path: Path, start_registry, with_redis: bool
) -> None:
    """A registry stopped while it holds the maintenance lease gives it back, so another on
    the same storage runs the jobs at once rather than once the lease expires (30 s)."""
    redis = RedisServer(tmp_path / "redis").start() if with_redis else None
    try:
        root = tmp_path / "root"
        settings = config(root, redis.addr if redis else None)
        first = start_registry(settings)
        deadline = time.monotonic() + TIMEOUT
        while "maintenance: running gc" not in first.stderr:
            assert time.monotonic() < deadline, first.stderr[-2000:]
            time.sleep(0.1)
        assert first.stop() == 0
        assert "gave the maintenance lease back" in first.stderr, first.stderr[-2000:]
        if redis:
            assert redis.client().get("maintenance::lease") is None
        else:
            assert not (root / "docker/registry/v2/_maintenance/leases/all").exists()
        second = start_registry(settings)
        deadline = time.monotonic() + LEASE_TTL / 3
        while "maintenance: running gc" not in second.stderr:
            assert time.monotonic() < deadline, second.stderr[-2000:]
            time.sleep(0.1)
        assert second.stop() == 0
        assert "Traceback" not in first.stderr + second.stderr
    finally:
        if redis:
            redis.stop()


def test_a_killed_leader_hands_over_and_a_killed_master_leaves_no_file(
    tmp_path: Path, start_registry
) -> None:
    """The workers' lock passes on when its holder is killed, and it is a file without a
    name: a master killed outright (no exit hook runs) leaves nothing in the temp folder."""
    temp = tmp_path / "temp"
    temp.mkdir()
    registry = start_registry(config(tmp_path / "root", None), env={"TMPDIR": str(temp)})
    leaders: list[int] = []
    deadline = time.monotonic() + TIMEOUT
    while len(leaders) < 2:
        assert time.monotonic() < deadline, registry.stderr[-3000:]
        leaders = [int(pid) for pid in re.findall(LEADING, registry.stderr)]
        if len(leaders) == 1 and leaders[0] in children(registry.proc.pid):
            os.kill(leaders[0], signal.SIGKILL)
        time.sleep(0.1)
    assert leaders[0] != leaders[1]

    registry.proc.kill()
    registry.proc.wait()
    deadline = time.monotonic() + TIMEOUT
    while Path(f"/proc/{leaders[1]}").exists():  # an orphaned worker ends on its own
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert not [name for name in os.listdir(temp) if name.startswith("registry-maintenance")]
