"""A Go registry and ours sharing one Redis read each other's blob descriptors.

Each writes the descriptor when an upload commits; the other, started on an EMPTY storage
root, still answers ``HEAD`` for the blob (200, right length): it can only have learnt it from
Redis. A ``GET`` there fails, since the data is not in its storage. On a shared root, a
delete through either clears the cache for the other.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tests.redis_server import RedisServer
from tests.replicas import blobs
from tests.replicas.cluster import GoReplica, replica_config

OCTET = b"application/octet-stream"


def go_keys(raw: object, name: str, digest: str, size: int) -> None:
    """The keys and fields the Go registry writes for an upload of ``digest`` into ``name``."""
    assert raw.hgetall(f"blobs::{digest}") == {  # type: ignore[attr-defined]
        b"digest": digest.encode(),
        b"size": str(size).encode(),
        b"mediatype": OCTET,
    }
    assert raw.sismember(f"repository::{name}::blobs", digest)  # type: ignore[attr-defined]
    assert raw.hgetall(f"repository::{name}::blobs::{digest}") == {  # type: ignore[attr-defined]
        b"mediatype": OCTET
    }


def test_go_writes_we_read(
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
) -> None:
    go = start_go(replica_config(tmp_path / "go-root", redis_server.addr))
    data = os.urandom(3000)
    digest = blobs.push_blob(go.url, "interop/from-go", data)
    go_keys(redis_server.client(), "interop/from-go", digest, len(data))
    ours = start_registry(replica_config(tmp_path / "empty-root", redis_server.addr))
    response = blobs.head_blob(ours.url, "interop/from-go", digest)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Docker-Content-Digest"] == digest
    assert blobs.head_blob(ours.url, "interop/other-repo", digest).status_code == 404
    assert blobs.get_blob(ours.url, "interop/from-go", digest).status_code == 404


def test_we_write_go_reads(
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
) -> None:
    ours = start_registry(replica_config(tmp_path / "our-root", redis_server.addr))
    data = os.urandom(3000)
    digest = blobs.push_blob(ours.url, "interop/from-us", data)
    go_keys(redis_server.client(), "interop/from-us", digest, len(data))
    go = start_go(replica_config(tmp_path / "empty-root", redis_server.addr))
    response = blobs.head_blob(go.url, "interop/from-us", digest)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(data))
    assert blobs.head_blob(go.url, "interop/other-repo", digest).status_code == 404


def test_deletes_through_either_clear_the_cache_for_the_other(
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
) -> None:
    root = tmp_path / "shared-root"
    ours = start_registry(replica_config(root, redis_server.addr))
    go = start_go(replica_config(root, redis_server.addr))
    for writer, deleter, reader in [(go, go, ours), (ours, ours, go), (go, ours, go)]:
        data = os.urandom(2000)
        name = "interop/deletes"
        digest = blobs.push_blob(writer.url, name, data)
        for replica in (ours, go):
            assert blobs.head_blob(replica.url, name, digest).status_code == 200
        assert blobs.delete_blob(deleter.url, name, digest).status_code == 202
        for replica in (reader, ours, go):
            assert blobs.head_blob(replica.url, name, digest).status_code == 404
