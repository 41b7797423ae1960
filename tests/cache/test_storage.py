"""The cache wired through storage: which reads it spares, and what it never decides.

The app runs on a real inmemory driver that records the reads it serves, with a real Redis.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import BinaryIO

import pytest
from flask.testing import FlaskClient

from distribution import manifest
from distribution.app import create_app
from distribution.cache.factory import from_config
from distribution.config import parse
from distribution.digest import Digest
from distribution.storage.driver.base import FileInfo
from distribution.storage.driver.inmemory import InMemoryDriver
from distribution.storage.registry import Registry
from tests.redis_server import RedisServer

NAME = "team/app"


class RecordingDriver(InMemoryDriver):
    """The inmemory driver, noting every read."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[str, str]] = []

    def get_content(self, path: str) -> bytes:
        self.reads.append(("get_content", path))
        return super().get_content(path)

    def stat(self, path: str) -> FileInfo:
        self.reads.append(("stat", path))
        return super().stat(path)

    def reader(self, path: str, offset: int = 0) -> BinaryIO:
        self.reads.append(("reader", path))
        return super().reader(path, offset)


class App:
    def __init__(self, config_text: str) -> None:
        config = parse(config_text, {})
        self.driver = RecordingDriver()
        self.registry = Registry(config, self.driver, from_config(config))
        self.client: FlaskClient = create_app(config, self.registry).test_client()

    def push_blob(self, data: bytes, name: str = NAME) -> str:
        digest = str(Digest.of(data))
        response = self.client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
        assert response.status_code == 201, response.get_data(as_text=True)
        return digest

    def push_image(self, tag: str = "v1") -> tuple[str, bytes]:
        config = self.push_blob(json.dumps({"os": "linux", "tag": tag}).encode())
        layer = self.push_blob(f"layer of {tag}".encode())
        doc = {
            "schemaVersion": 2,
            "mediaType": manifest.OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config,
                "size": len(json.dumps({"os": "linux", "tag": tag})),
            },
            "layers": [
                {
                    "mediaType": manifest.OCI_LAYER_GZIP,
                    "digest": layer,
                    "size": len(f"layer of {tag}"),
                }
            ],
        }
        body = json.dumps(doc).encode()
        response = self.client.put(
            f"/v2/{NAME}/manifests/{tag}",
            data=body,
            headers={"Content-Type": manifest.OCI_MANIFEST},
        )
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.headers["Docker-Content-Digest"], body

    def reads_of(self, request: Callable[[], object]) -> list[tuple[str, str]]:
        self.driver.reads.clear()
        request()
        return list(self.driver.reads)


def config_text(cache: str, redis: RedisServer | None = None, delete: bool = True) -> str:
    redis_section = f"redis: {{addr: '{redis.addr}', dialtimeout: 1s}}" if redis else ""
    return f"""
version: 0.1
storage:
  inmemory: {{}}
  delete: {{enabled: {str(delete).lower()}}}
  cache: {{blobdescriptor: {cache}}}
http: {{secret: s}}
{redis_section}
"""


@pytest.fixture
def redis_app(redis_server: RedisServer) -> App:
    return App(config_text("redis", redis_server))


def test_blob_head_on_a_hit_reads_no_storage(redis_app: App) -> None:
    digest = redis_app.push_blob(b"some layer")  # the commit fills the cache, as in Go
    url = f"/v2/{NAME}/blobs/{digest}"
    response = None

    def head() -> None:
        nonlocal response
        response = redis_app.client.head(url)

    assert redis_app.reads_of(head) == []
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "10"
    reads = redis_app.reads_of(lambda: redis_app.client.get(url).get_data())
    assert [op for op, _ in reads] == ["reader"]


def test_a_miss_fills_the_cache(redis_app: App, redis_server: RedisServer) -> None:
    digest = redis_app.push_blob(b"layer")
    redis_server.client().flushall()
    url = f"/v2/{NAME}/blobs/{digest}"
    assert redis_app.reads_of(lambda: redis_app.client.head(url)) != []
    assert redis_app.reads_of(lambda: redis_app.client.head(url)) == []


def test_a_mount_fills_the_cache(redis_app: App, redis_server: RedisServer) -> None:
    digest = redis_app.push_blob(b"shared layer", name="base")
    response = redis_app.client.post(f"/v2/{NAME}/blobs/uploads/?mount={digest}&from=base")
    assert response.status_code == 201
    assert redis_server.client().sismember(f"repository::{NAME}::blobs", digest)


def test_blob_delete_invalidates(redis_app: App, redis_server: RedisServer) -> None:
    digest = redis_app.push_blob(b"doomed")
    url = f"/v2/{NAME}/blobs/{digest}"
    assert redis_app.client.head(url).status_code == 200
    assert redis_server.client().sismember(f"repository::{NAME}::blobs", digest)
    assert redis_app.client.delete(url).status_code == 202
    assert not redis_server.client().sismember(f"repository::{NAME}::blobs", digest)
    assert redis_app.client.head(url).status_code == 404
    assert redis_app.client.get(url).status_code == 404


def test_manifest_get_by_digest_hits_while_deletes_are_off(redis_server: RedisServer) -> None:
    app = App(config_text("redis", redis_server, delete=False))
    digest, body = app.push_image()
    url = f"/v2/{NAME}/manifests/{digest}"
    accept = {"Accept": manifest.OCI_MANIFEST}
    assert app.client.get(url, headers=accept).get_data() == body
    reads = app.reads_of(lambda: app.client.get(url, headers=accept))
    assert [op for op, _ in reads] == ["get_content"]  # the manifest's bytes only
    assert redis_server.client().sismember(f"repository::{NAME}::manifests", digest)


def test_manifests_are_not_cached_while_deletes_are_on_but_deletes_clear_them(
    redis_app: App, redis_server: RedisServer
) -> None:
    digest, body = redis_app.push_image()
    url = f"/v2/{NAME}/manifests/{digest}"
    raw = redis_server.client()
    # Left by an earlier run with deletes off:
    raw.sadd(f"repository::{NAME}::manifests", digest)
    raw.hset(f"blobs::{digest}", mapping={"digest": digest, "size": len(body)})
    reads = redis_app.reads_of(lambda: redis_app.client.get(url))
    assert (
        "get_content",
        f"/docker/registry/v2/repositories/{NAME}/_manifests/revisions/sha256/{digest[7:]}/link",
    ) in reads
    assert redis_app.client.delete(url).status_code == 202
    assert not raw.sismember(f"repository::{NAME}::manifests", digest)
    assert redis_app.client.get(url).status_code == 404


def test_a_stale_cache_never_decides_a_write(redis_app: App, redis_server: RedisServer) -> None:
    """As after a garbage collection that left Redis alone: the cache claims absent blobs."""
    data = b"collected by gc"
    digest = str(Digest.of(data))
    raw = redis_server.client()
    raw.sadd(f"repository::{NAME}::blobs", digest)
    raw.hset(f"blobs::{digest}", mapping={"digest": digest, "size": len(data)})
    # A manifest naming it is refused: verification reads storage.
    doc = {
        "schemaVersion": 2,
        "mediaType": manifest.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest,
            "size": len(data),
        },
        "layers": [],
    }
    response = redis_app.client.put(
        f"/v2/{NAME}/manifests/t",
        data=json.dumps(doc).encode(),
        headers={"Content-Type": manifest.OCI_MANIFEST},
    )
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
    # An upload of it stores the data: the commit checks storage, not the cache.
    redis_app.push_blob(data)
    assert redis_app.client.get(f"/v2/{NAME}/blobs/{digest}").get_data() == data
    # A mount from a repository the cache wrongly lists is refused, then becomes an upload.
    other = str(Digest.of(b"nowhere"))
    raw.sadd(f"repository::{NAME}::blobs", other)
    raw.hset(f"blobs::{other}", mapping={"digest": other, "size": 7})
    response = redis_app.client.post(f"/v2/elsewhere/blobs/uploads/?mount={other}&from={NAME}")
    assert response.status_code == 202


def test_redis_stopped_mid_run_never_fails_a_request(
    redis_app: App, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "distribution.cache")
    digest = redis_app.push_blob(b"before")
    redis_server.stop()
    statuses = [redis_app.client.head(f"/v2/{NAME}/blobs/{digest}").status_code for _ in range(5)]
    after = redis_app.push_blob(b"after")
    statuses += [redis_app.client.get(f"/v2/{NAME}/blobs/{after}").status_code]
    statuses += [redis_app.client.delete(f"/v2/{NAME}/blobs/{digest}").status_code]
    statuses += [redis_app.client.head(f"/v2/{NAME}/blobs/{digest}").status_code]
    assert statuses == [200] * 6 + [202, 404]
    warnings = [r for r in caplog.records if r.name == "distribution.cache"]
    assert len(warnings) == 1


def test_inmemory_cache_hits_without_redis() -> None:
    app = App(config_text("inmemory", delete=False))
    digest = app.push_blob(b"layer")
    url = f"/v2/{NAME}/blobs/{digest}"
    app.client.head(url)
    assert app.reads_of(lambda: app.client.head(url)) == []


def test_reading_a_collected_blob_clears_it(redis_app: App, redis_server: RedisServer) -> None:
    """Garbage collection removed the data behind the cache's back: a GET heals the cache."""
    digest = redis_app.push_blob(b"collected")
    url = f"/v2/{NAME}/blobs/{digest}"
    redis_app.driver.delete(f"/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}")
    assert redis_app.client.head(url).status_code == 200  # stale, from the cache
    assert redis_app.client.get(url).status_code == 404
    assert redis_server.client().hget(f"blobs::{digest}", "digest") is None
    assert redis_app.client.head(url).status_code == 404
