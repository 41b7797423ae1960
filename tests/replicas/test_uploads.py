"""Uploads across replicas sharing root, secret and Redis: requests aimed at each in turn."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from distribution.storage import hashstate
from tests.redis_server import RedisServer
from tests.replicas import blobs
from tests.replicas.cluster import GoReplica, Replica, replica_config

NAME = "replicas/chunked"
CHUNK = 200 * 1024
#: The log level that shows whether a commit re-hashed.
_DEBUG = "level: debug"


def start(
    kind: str,
    config_text: str,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
) -> Replica:
    return start_go(config_text) if kind == "go" else start_registry(config_text)


@pytest.mark.parametrize(
    "kinds", [("python", "python"), ("python", "go"), ("go", "python")], ids="-".join
)
def test_chunks_and_put_alternate_between_replicas(
    kinds: tuple[str, str],
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
) -> None:
    config = replica_config(tmp_path / "root", redis_server.addr).replace("level: info", _DEBUG)
    replicas = [start(kind, config, start_registry, start_go) for kind in kinds]
    chunks = [os.urandom(CHUNK) for _ in range(5)]
    data = b"".join(chunks)
    location = blobs.start_upload(replicas[0].url, NAME)
    offset = 0
    for i, chunk in enumerate(chunks):
        response = blobs.patch(replicas[(i + 1) % 2].url, location, chunk, offset)
        assert response.status_code == 202, (i, response.text)
        offset += len(chunk)
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]
    digest = blobs.digest_of(data)
    response = blobs.finish(replicas[(len(chunks) + 1) % 2].url, location, digest)
    assert response.status_code == 201, response.text
    for replica in replicas:
        assert blobs.get_blob(replica.url, NAME, digest).content == data
        head = blobs.head_blob(replica.url, NAME, digest)
        assert head.headers["Content-Length"] == str(len(data))
    assert redis_server.client().sismember(f"repository::{NAME}::blobs", digest)
    if kinds == ("python", "python"):
        # Each request continued the hash the other replica saved.
        assert not any("re-hashing" in replica.stderr for replica in replicas)


def test_a_go_replicas_saved_hash_is_continued(
    tmp_path: Path, redis_server: RedisServer, start_registry: Callable, start_go: Callable
) -> None:
    """Go saves its sha256 state after each request; we read its format, never write it."""
    config = replica_config(tmp_path / "root", redis_server.addr).replace("level: info", _DEBUG)
    go, python = start_go(config), start_registry(config)
    data = os.urandom(3 * CHUNK + 17)
    location = blobs.start_upload(go.url, NAME)
    response = blobs.patch(go.url, location, data[: 2 * CHUNK + 5], 0)
    assert response.status_code == 202, response.text
    (upload,) = (tmp_path / "root/docker/registry/v2/repositories" / NAME / "_uploads").iterdir()
    state = (upload / f"hashstates/sha256/{2 * CHUNK + 5}").read_bytes()
    hasher = hashstate.restore(state)
    assert hasher is not None and hasher.size == 2 * CHUNK + 5
    assert hasher.state() == state
    hasher.update(data[2 * CHUNK + 5 :])
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    location = response.headers["Location"]
    response = blobs.patch(python.url, location, data[2 * CHUNK + 5 :], 2 * CHUNK + 5)
    assert response.status_code == 202, response.text
    response = blobs.finish(python.url, response.headers["Location"], blobs.digest_of(data))
    assert response.status_code == 201, response.text
    assert "re-hashing" not in python.stderr
    assert blobs.get_blob(go.url, NAME, blobs.digest_of(data)).content == data


def test_different_secrets_break_uploads_across_replicas(
    tmp_path: Path, redis_server: RedisServer, start_registry: Callable
) -> None:
    root = tmp_path / "root"
    one = start_registry(replica_config(root, redis_server.addr, secret="one"))
    two = start_registry(replica_config(root, redis_server.addr, secret="two"))
    location = blobs.start_upload(one.url, NAME)
    response = blobs.patch(two.url, location, b"data", 0)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    response = blobs.finish(two.url, location, blobs.digest_of(b""))
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert blobs.patch(one.url, location, b"data", 0).status_code == 202


def test_a_replica_without_a_secret_warns_and_breaks_uploads(
    tmp_path: Path, redis_server: RedisServer, start_registry: Callable
) -> None:
    root = tmp_path / "root"
    shared = start_registry(replica_config(root, redis_server.addr))
    alone = start_registry(replica_config(root, redis_server.addr, secret=None))
    assert "No HTTP secret provided" in alone.stderr
    assert "load-balancer" in alone.stderr
    assert "No HTTP secret provided" not in shared.stderr
    location = blobs.start_upload(alone.url, NAME)
    response = blobs.patch(shared.url, location, b"data", 0)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
