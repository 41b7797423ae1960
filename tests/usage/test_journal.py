"""Pull times and changes in batches: no storage call per request, merged across replicas,
with and without Redis (and storage when Redis is down)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from distribution import usage
from distribution.storage import paths
from distribution.storage.driver import create
from distribution.usage import journal
from distribution.usage.journal import Batch, Journal, RedisSink, StorageSink
from tests.gc.content import Api, http_send, layer
from tests.redis_server import RedisServer


@pytest.fixture
def driver(tmp_path: Path):
    return create("filesystem", {"rootdirectory": str(tmp_path / "root")})


@pytest.fixture
def redis_server(tmp_path: Path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_a_pull_costs_no_storage_call_until_the_flush(driver) -> None:
    calls = []
    real = driver.put_content
    driver.put_content = lambda path, data: (calls.append(path), real(path, data))  # type: ignore[method-assign]
    noted = Journal(StorageSink(driver))
    for i in range(1000):
        noted.pulled("app", "latest", f"sha256:{i:064x}")
    noted.changed("app")
    assert calls == []
    noted.flush()
    assert len(calls) == 1 and calls[0].startswith(paths.JOURNAL)
    noted.flush()
    assert len(calls) == 1, "nothing new, nothing written"


def test_batches_of_two_replicas_merge(driver) -> None:
    a, b = Journal(StorageSink(driver)), Journal(StorageSink(driver))
    a.pulled("app", "v1", "sha256:" + "1" * 64)
    time.sleep(0.01)
    between = time.time()
    b.pulled("app", "v1", "sha256:" + "1" * 64)
    b.pulled("lib", None, "sha256:" + "2" * 64)
    a.changed("app")
    assert not journal.waiting(driver)
    a.flush()
    b.flush()
    assert journal.waiting(driver)
    entries = journal.read(driver)
    assert len(entries) == 2
    merged = journal.merged(entries)
    assert set(merged.pulls) == {"app", "lib"}
    assert merged.pulls["app"]["v1"] >= between, "the latest pull wins"
    assert set(merged.changed) == {"app"}
    journal.remove(driver, entries)
    assert journal.read(driver) == []
    assert not journal.waiting(driver)


def test_redis_carries_the_batches_and_storage_takes_over_when_it_is_down(
    driver, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    noted = Journal(RedisSink(client, StorageSink(driver)))
    noted.pulled("app", "v1", "sha256:" + "1" * 64)
    noted.flush()
    assert client.llen(journal.REDIS_KEY) == 1
    assert not _stored_batches(driver)
    assert journal.waiting(driver, client)
    entries = journal.read(driver, client)
    assert journal.merged(entries).pulls["app"].keys() == {"v1", "sha256:" + "1" * 64}
    # a batch arriving between reading and removing stays
    client.rpush(journal.REDIS_KEY, Batch(changed={"late": 1.0}).encode())
    journal.remove(driver, entries, client)
    assert [Batch.decode(d).changed for d in client.lrange(journal.REDIS_KEY, 0, -1)] == [
        {"late": 1.0}
    ]
    client.delete(journal.REDIS_KEY)
    assert not journal.waiting(driver, client)
    redis_server.stop()
    assert journal.waiting(driver, client), "a Redis that cannot answer may hold batches"
    noted.pulled("app", "v2", "sha256:" + "2" * 64)
    noted.flush()
    assert len(_stored_batches(driver)) == 1


def test_a_failed_write_keeps_the_batch(driver) -> None:
    class Broken:
        def write(self, data: bytes) -> None:
            raise OSError("disk full")

    noted = Journal(Broken())  # type: ignore[arg-type]
    noted.pulled("app", "v1", "sha256:" + "1" * 64)
    noted.flush()
    noted.sink = StorageSink(driver)
    noted.flush()
    assert journal.merged(journal.read(driver)).pulls["app"]["v1"] > 0


_EXITING = """
import sys, threading, time
from distribution.storage.driver import create
from distribution.usage import journal

class Sink:
    def __init__(self, hang):
        self.hang = hang
        self.driver = create("filesystem", {"rootdirectory": sys.argv[1]})
    def write(self, data):
        if self.hang:
            threading.Event().wait()  # storage that never answers
        journal.StorageSink(self.driver).write(data)

journal.EXIT_FLUSH_TIMEOUT = 1.0
noted = journal.Journal(Sink(sys.argv[2] == "hang"), every=3600)
noted.pulled("app", "latest", "sha256:" + "0" * 64)
"""


@pytest.mark.parametrize("hang", [False, True])
def test_the_last_batch_is_written_at_exit_within_a_bound(tmp_path: Path, hang: bool) -> None:
    root = tmp_path / "root"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _EXITING, str(root), "hang" if hang else "write"],
        capture_output=True,
        timeout=30,
        check=True,
    )
    took = time.monotonic() - started
    written = list((root / paths.JOURNAL.lstrip("/")).glob("*")) if root.exists() else []
    if hang:
        assert written == []
        assert b"the last journal batch was not written within 1 s" in done.stderr
        assert took < 20, took
    else:
        assert len(written) == 1
        assert Batch.decode(written[0].read_bytes()).pulls["app"].keys() == {
            "latest",
            "sha256:" + "0" * 64,
        }


@pytest.mark.parametrize("with_redis", [False, True], ids=["storage", "redis"])
def test_pulls_through_two_replicas_count(
    tmp_path: Path, start_registry, with_redis: bool, request: pytest.FixtureRequest
) -> None:
    root = tmp_path / "root"
    redis = ""
    client = None
    if with_redis:
        server = request.getfixturevalue("redis_server")
        redis = f"redis: {{addr: '{server.addr}'}}"
        client = server.client()
    text = (
        f"version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {root}}}\n"
        f"  maintenance: {{uploadpurging: {{enabled: false}}}}\nhttp: {{secret: s}}\n{redis}\n"
    )
    first, second = start_registry(text), start_registry(text)
    api = Api(http_send(first.url))
    body, _ = api.image("app", [layer("app")], "app")
    digest = api.push_manifest("app", "v1", body)
    before = time.time()
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    assert requests.get(f"{first.url}/v2/app/manifests/v1", headers=accept).status_code == 200
    assert requests.head(f"{second.url}/v2/app/manifests/{digest}", headers=accept).ok
    first.stop()  # workers flush their batch as they exit
    second.stop()
    driver = create("filesystem", {"rootdirectory": str(root)})
    pulls = usage.refresh(driver, client=client).state.pulls["app"]
    assert pulls["v1"] >= before and pulls[digest] >= pulls["v1"]
    assert journal.read(driver, client) == []


def _stored_batches(driver) -> list[str]:
    try:
        return driver.list(paths.JOURNAL)
    except Exception:
        return []
