"""A real redis-server per test, and a client for it built the way the registry builds one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from distribution import redisconn
from distribution.cache.redis import RedisCache
from distribution.config import Redis
from tests.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def redis_cache(redis_server: RedisServer) -> RedisCache:
    """A cache on the server, with short timeouts so a stopped server fails fast."""
    return RedisCache(redisconn.connect(Redis(addr=redis_server.addr, dialtimeout=1.0)))
