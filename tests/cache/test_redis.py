"""The Redis cache against a real redis-server: Go's keys, fields and lookup rules."""

from __future__ import annotations

from distribution.cache.base import MANIFESTS
from distribution.cache.redis import RedisCache
from distribution.digest import Digest
from distribution.storage.blobs import Descriptor
from tests.redis_server import RedisServer

LAYER = Digest.of(b"layer")
OCTET = "application/octet-stream"


def test_keys_and_fields_are_the_go_registry_s(
    redis_cache: RedisCache, redis_server: RedisServer
) -> None:
    redis_cache.set(LAYER, Descriptor(LAYER, 5), "library/alpine")
    raw = redis_server.client()
    assert sorted(raw.keys()) == sorted(
        [
            f"blobs::{LAYER}".encode(),
            b"repository::library/alpine::blobs",
            f"repository::library/alpine::blobs::{LAYER}".encode(),
        ]
    )
    assert raw.hgetall(f"blobs::{LAYER}") == {
        b"digest": str(LAYER).encode(),
        b"size": b"5",
        b"mediatype": OCTET.encode(),
    }
    assert raw.smembers("repository::library/alpine::blobs") == {str(LAYER).encode()}
    assert raw.hgetall(f"repository::library/alpine::blobs::{LAYER}") == {
        b"mediatype": OCTET.encode()
    }


def test_scoped_stat_needs_membership_and_the_global_hash(
    redis_cache: RedisCache, redis_server: RedisServer
) -> None:
    raw = redis_server.client()
    assert redis_cache.stat(LAYER, "r") is None
    raw.hset(f"blobs::{LAYER}", mapping={"digest": str(LAYER), "size": 5})
    assert redis_cache.stat(LAYER) == Descriptor(LAYER, 5)
    assert redis_cache.stat(LAYER, "r") is None  # not a member
    raw.sadd("repository::r::blobs", str(LAYER))
    assert redis_cache.stat(LAYER, "r") == Descriptor(LAYER, 5)
    # Go clears a deleted blob by dropping the global fields; "size" once was "length".
    raw.hdel(f"blobs::{LAYER}", "digest", "length", "mediatype")
    assert raw.hexists(f"blobs::{LAYER}", "size")
    assert redis_cache.stat(LAYER, "r") is None
    assert redis_cache.stat(LAYER) is None


def test_repository_media_type_overrides_the_global_one(
    redis_cache: RedisCache, redis_server: RedisServer
) -> None:
    raw = redis_server.client()
    redis_cache.set(LAYER, Descriptor(LAYER, 5, "application/x-global"))
    redis_cache.set(LAYER, Descriptor(LAYER, 5, "application/x-mine"), "r")
    # HSETNX: the global media type stays the first one set.
    assert raw.hget(f"blobs::{LAYER}", "mediatype") == b"application/x-global"
    assert redis_cache.stat(LAYER, "r") == Descriptor(LAYER, 5, "application/x-mine")
    assert redis_cache.stat(LAYER) == Descriptor(LAYER, 5, "application/x-global")


def test_a_digest_of_another_algorithm_also_sets_the_canonical_one(
    redis_cache: RedisCache, redis_server: RedisServer
) -> None:
    sha512 = Digest.of(b"layer", "sha512")
    redis_cache.set(sha512, Descriptor(LAYER, 5), "r")
    assert redis_cache.stat(sha512, "r") == Descriptor(LAYER, 5)
    assert redis_cache.stat(LAYER, "r") == Descriptor(LAYER, 5)
    assert redis_server.client().smembers("repository::r::blobs") == {
        str(sha512).encode(),
        str(LAYER).encode(),
    }


def test_scoped_clear_forgets_the_membership_only(
    redis_cache: RedisCache, redis_server: RedisServer
) -> None:
    redis_cache.set(LAYER, Descriptor(LAYER, 5), "a")
    redis_cache.set(LAYER, Descriptor(LAYER, 5), "b")
    redis_cache.clear(LAYER, "a")
    assert redis_cache.stat(LAYER, "a") is None
    assert redis_cache.stat(LAYER, "b") == Descriptor(LAYER, 5)
    raw = redis_server.client()
    assert not raw.exists(f"repository::a::blobs::{LAYER}")
    redis_cache.clear(LAYER)  # global, as garbage collection would
    assert redis_cache.stat(LAYER, "b") is None


def test_manifests_have_their_own_keys(redis_cache: RedisCache, redis_server: RedisServer) -> None:
    redis_cache.set(LAYER, Descriptor(LAYER, 5), "r", MANIFESTS)
    assert redis_cache.stat(LAYER, "r", MANIFESTS) == Descriptor(LAYER, 5)
    assert redis_cache.stat(LAYER, "r") is None  # a Go replica's blob lookup misses
    raw = redis_server.client()
    assert raw.smembers("repository::r::manifests") == {str(LAYER).encode()}
    assert not raw.exists("repository::r::blobs")


def test_garbage_in_redis_is_a_miss(redis_cache: RedisCache, redis_server: RedisServer) -> None:
    raw = redis_server.client()
    raw.sadd("repository::r::blobs", str(LAYER))
    raw.hset(f"blobs::{LAYER}", mapping={"digest": "nonsense", "size": 5})
    assert redis_cache.stat(LAYER, "r") is None
    raw.hset(f"blobs::{LAYER}", mapping={"digest": str(LAYER), "size": "big"})
    assert redis_cache.stat(LAYER, "r") is None
