"""``storage.cache`` in the config: what each setting builds, and the settings that cannot work."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distribution import cli
from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE
from distribution.cache.factory import from_config
from distribution.cache.guard import GuardedCache
from distribution.cache.memory import InMemoryCache
from distribution.cache.redis import RedisCache
from distribution.config import ConfigError, Configuration, parse


def config(cache: str, redis: str = "", delete: bool = False) -> Configuration:
    return parse(
        f"""
version: 0.1
storage:
  inmemory: {{}}
  delete: {{enabled: {str(delete).lower()}}}
  cache: {{{cache}}}
{redis}
""",
        {},
    )


def test_no_cache_by_default() -> None:
    assert from_config(config("")) is NO_CACHE


def test_redis_caches_manifests_only_while_deletes_are_off() -> None:
    redis = "redis: {addr: 'localhost:6379'}"
    built = from_config(config("blobdescriptor: redis", redis))
    assert isinstance(built, GuardedCache) and isinstance(built.inner, RedisCache)
    assert built.kinds == {LAYERS, MANIFESTS}
    built = from_config(config("blobdescriptor: redis", redis, delete=True))
    assert isinstance(built, GuardedCache) and built.kinds == {LAYERS}


def test_inmemory_has_the_configured_size() -> None:
    built = from_config(config("blobdescriptor: inmemory, blobdescriptorsize: 7"))
    assert isinstance(built, GuardedCache) and isinstance(built.inner, InMemoryCache)
    assert built.inner.size == 7


@pytest.mark.parametrize(("size", "built_size"), [("", 10000), ("0", None), ("-1", None)])
def test_inmemory_size_zero_or_less_is_unlimited_as_in_go(
    size: str, built_size: int | None
) -> None:
    setting = f", blobdescriptorsize: {size}" if size else ""
    built = from_config(config(f"blobdescriptor: inmemory{setting}"))
    assert isinstance(built, GuardedCache) and built.inner.size == built_size


def test_blobdescriptorsize_with_redis_is_warned_about_as_in_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    redis = "redis: {addr: 'localhost:6379'}"
    from_config(config("blobdescriptor: redis, blobdescriptorsize: 5", redis))
    assert "blobdescriptorsize parameter is not supported with redis cache" in caplog.messages


def test_inmemory_is_off_while_deletes_are_on(caplog: pytest.LogCaptureFixture) -> None:
    assert from_config(config("blobdescriptor: inmemory", delete=True)) is NO_CACHE
    assert "use redis" in caplog.text


def test_an_unknown_cache_is_disabled_with_a_warning_as_in_go(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    assert from_config(config("blobdescriptor: memcached")) is NO_CACHE
    assert "unknown cache type 'memcached', caching disabled" in caplog.text


@pytest.mark.parametrize(
    ("cache", "redis", "key"),
    [
        ("blobdescriptor: redis", "", "storage.cache.blobdescriptor"),
        ("blobdescriptor: redis", "redis: {addr: 'no-port'}", "redis.addr"),
    ],
)
def test_settings_that_cannot_work_name_their_key(cache: str, redis: str, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        from_config(config(cache, redis))
    assert key in str(raised.value)


def test_serve_refuses_them_before_any_worker_starts(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(
        f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: '{tmp_path / "data"}'}}
  cache: {{blobdescriptor: redis}}
http: {{secret: s}}
"""
    )
    with pytest.raises(ConfigError) as raised:
        cli.prepare(str(path))
    assert "storage.cache.blobdescriptor" in str(raised.value)


def test_layerinfo_is_gos_old_name_for_blobdescriptor() -> None:
    built = from_config(config("layerinfo: inmemory"))
    assert isinstance(built, GuardedCache) and isinstance(built.inner, InMemoryCache)
