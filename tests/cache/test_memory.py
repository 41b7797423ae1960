"""The in-process LRU: scopes, eviction order, and many threads at once."""

from __future__ import annotations

import threading

import pytest

from distribution.cache.base import LAYERS, MANIFESTS
from distribution.cache.memory import InMemoryCache
from distribution.digest import Digest
from distribution.storage.blobs import Descriptor


def digest(n: int) -> Digest:
    return Digest.of(str(n).encode())


def descriptor(n: int) -> Descriptor:
    return Descriptor(digest(n), n)


def test_scopes_are_separate() -> None:
    cache = InMemoryCache(10)
    cache.set(digest(1), descriptor(1), "a/b")
    assert cache.stat(digest(1), "a/b") == descriptor(1)
    assert cache.stat(digest(1), "other") is None
    assert cache.stat(digest(1), "a/b", MANIFESTS) is None
    # A repository-scoped set also remembers the global descriptor, as the Redis cache does.
    assert cache.stat(digest(1)) == descriptor(1)


def test_clear_forgets_one_scope() -> None:
    cache = InMemoryCache(10)
    cache.set(digest(1), descriptor(1), "a", LAYERS)
    cache.set(digest(1), descriptor(1), "b", LAYERS)
    cache.clear(digest(1), "a")
    assert cache.stat(digest(1), "a") is None
    assert cache.stat(digest(1), "b") == descriptor(1)
    cache.clear(digest(1))
    assert cache.stat(digest(1)) is None


def test_least_recently_used_goes_first() -> None:
    cache = InMemoryCache(3)
    for n in (1, 2, 3):
        cache.set(digest(n), descriptor(n))
    assert cache.stat(digest(1)) is not None  # 1 is now the most recent
    cache.set(digest(4), descriptor(4))
    assert len(cache) == 3
    assert cache.stat(digest(2)) is None
    assert [cache.stat(digest(n)) is not None for n in (1, 3, 4)] == [True, True, True]


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        InMemoryCache(0)


def test_no_size_is_no_limit() -> None:
    cache = InMemoryCache(None)
    for n in range(20):
        cache.set(digest(n), descriptor(n))
    assert len(cache) == 20


def test_many_threads_keep_it_bounded_and_consistent() -> None:
    cache = InMemoryCache(64)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for n in range(offset, offset + 500):
                cache.set(digest(n % 100), descriptor(n % 100), f"repo{n % 3}")
                found = cache.stat(digest(n % 100), f"repo{n % 3}")
                assert found is None or found == descriptor(n % 100)
                cache.clear(digest((n + 7) % 100), f"repo{n % 3}")
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k * 37,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) <= 64
