"""Fixtures for replica tests: a real redis-server, Go replicas, nginx in front."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.e2e.checks import ImageSet
from tests.nginx import Nginx
from tests.redis_server import RedisServer
from tests.replicas.cluster import GoReplica, Replica, round_robin


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def start_go(tmp_path: Path) -> Iterator[Callable[[str], GoReplica]]:
    """``start_go(config_text)``: a Go registry replica, stopped (and its log shown) at teardown."""
    started: list[GoReplica] = []

    def start(config_text: str) -> GoReplica:
        replica = GoReplica(tmp_path / f"go-{len(started)}", config_text)
        started.append(replica)
        return replica

    yield start
    for replica in started:
        replica.stop()
        print(f"----- Go replica {replica.url} -----\n{replica.log}")


@pytest.fixture(scope="session")
def image_set(tmp_path_factory: pytest.TempPathFactory) -> ImageSet:
    """The end-to-end tests' images, built once, in layouts skopeo reads."""
    return ImageSet.build(tmp_path_factory.mktemp("images"))


@pytest.fixture
def start_nginx(tmp_path: Path) -> Iterator[Callable[[list[Replica]], str]]:
    """``start_nginx(replicas)``: a real nginx round-robin over them; returns its host:port."""
    started: list[Nginx] = []

    def start(replicas: list[Replica]) -> str:
        port = free_port()
        started.append(Nginx(tmp_path / f"nginx-{len(started)}").start(round_robin(replicas, port)))
        return f"127.0.0.1:{port}"

    yield start
    for nginx in started:
        nginx.stop()
