"""The Redis topologies of distribution v3's ``redis`` section, each a real ``redis-server``.

``mastername`` with ``addrs`` reaches the master through Sentinel; several ``addrs`` without it
are a cluster. As in ``test_go_interop``, a registry on an EMPTY storage root answering
``HEAD`` for a blob another replica pushed proves the descriptor travelled through Redis.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_server import RedisServer, start_cluster, start_sentinel
from tests.replicas import blobs
from tests.replicas.cluster import replica_config

MASTER = "registry-master"


@pytest.fixture
def sentinel(redis_server: RedisServer, tmp_path: Path) -> Iterator[RedisServer]:
    server = start_sentinel(tmp_path / "sentinel", redis_server, MASTER)
    yield server
    server.stop()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[RedisServer]]:
    nodes = start_cluster(tmp_path / "cluster")
    yield nodes
    for node in nodes:
        node.stop()


def shared_through_redis(
    tmp_path: Path, start_registry: Callable, config: Callable[[Path], str]
) -> list[str]:
    """Push blobs through one replica; the other, on an empty root, knows them from Redis.

    Returns the digests still cached: the reader's failed GET of the first one made it forget
    that one (data gone from storage, so garbage collected as far as it can tell).
    """
    writer = start_registry(config(tmp_path / "root"))
    reader = start_registry(config(tmp_path / "empty-root"))
    digests = []
    for i in range(8):  # eight digests spread over the cluster's slots
        data = os.urandom(1000 + i)
        digest = blobs.push_blob(writer.url, "topology/app", data)
        response = blobs.head_blob(reader.url, "topology/app", digest)
        assert response.status_code == 200, digest
        assert response.headers["Content-Length"] == str(len(data))
        assert response.headers["Docker-Content-Digest"] == digest
        digests.append(digest)
    assert blobs.head_blob(reader.url, "topology/other", digests[0]).status_code == 404
    assert blobs.get_blob(reader.url, "topology/app", digests[0]).status_code == 404
    assert blobs.head_blob(reader.url, "topology/app", digests[0]).status_code == 404
    return digests[1:]


def test_sentinel_leads_to_the_master(
    tmp_path: Path,
    redis_server: RedisServer,
    sentinel: RedisServer,
    start_registry: Callable,
) -> None:
    digests = shared_through_redis(
        tmp_path,
        start_registry,
        lambda root: replica_config(root, [sentinel.addr], mastername=MASTER),
    )
    master = redis_server.client()
    for digest in digests:
        assert master.hget(f"blobs::{digest}", "digest") == digest.encode()
    assert master.sismember("repository::topology/app::blobs", digests[0])


def test_a_master_unknown_to_sentinel_fails_lookups_not_requests(
    tmp_path: Path, sentinel: RedisServer, start_registry: Callable
) -> None:
    registry = start_registry(replica_config(tmp_path / "root", [sentinel.addr], mastername="no"))
    data = os.urandom(500)
    digest = blobs.push_blob(registry.url, "topology/app", data)
    assert blobs.get_blob(registry.url, "topology/app", digest).content == data
    assert "No master found for 'no'" in registry.log


def test_cluster_spreads_the_keys_over_its_nodes(
    tmp_path: Path, cluster: list[RedisServer], start_registry: Callable
) -> None:
    addrs = [node.addr for node in cluster]
    digests = shared_through_redis(
        tmp_path, start_registry, lambda root: replica_config(root, addrs)
    )
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", n.port) for n in cluster])
    for digest in digests:
        assert client.hget(f"blobs::{digest}", "digest") == digest.encode()
    holding = [node for node in cluster if node.client().dbsize() > 0]
    assert len(holding) > 1, "every key landed on one node"
