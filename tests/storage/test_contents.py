"""The content cache on the filesystem driver: a file is read again whenever anything changed
it, however it was changed, and not read at all while it is unchanged."""

from __future__ import annotations

import os
import time
from collections.abc import Hashable
from pathlib import Path

import pytest

from distribution.storage.contents import ContentCache
from distribution.storage.driver import PathNotFoundError
from distribution.storage.driver.filesystem import VERSION_SETTLE, FilesystemDriver
from distribution.storage.driver.inmemory import InMemoryDriver


class CountingDriver(FilesystemDriver):
    """The filesystem driver, counting the reads that reach it."""

    reads = 0

    def get_content(self, path: str) -> bytes:
        self.reads += 1
        return super().get_content(path)


@pytest.fixture
def driver(tmp_path: Path) -> CountingDriver:
    return CountingDriver(str(tmp_path))


def settle(driver: FilesystemDriver, path: str, age: float = VERSION_SETTLE + 1) -> None:
    """Date the file back, as if it had been written ``age`` seconds ago."""
    then = time.time() - age
    os.utime(driver._full(path), (then, then))


def test_an_unchanged_file_is_read_once(driver: CountingDriver) -> None:
    cache = ContentCache()
    driver.put_content("/link", b"sha256:1")
    settle(driver, "/link")
    assert [cache.get_content(driver, "/link") for _ in range(3)] == [b"sha256:1"] * 3
    assert driver.reads == 1


def test_a_file_written_in_place_is_read_again(driver: CountingDriver) -> None:
    """Go's driver rewrites a file in place: same inode and size, a new modification time."""
    cache = ContentCache()
    driver.put_content("/link", b"sha256:1")
    settle(driver, "/link", age=10)
    assert cache.get_content(driver, "/link") == b"sha256:1"
    with open(driver._full("/link"), "r+b") as file:
        file.write(b"sha256:2")
    settle(driver, "/link", age=5)
    assert cache.get_content(driver, "/link") == b"sha256:2"


def test_a_replaced_or_removed_file_is_seen_at_once(driver: CountingDriver) -> None:
    cache = ContentCache()
    driver.put_content("/link", b"sha256:1")
    settle(driver, "/link")
    assert cache.get_content(driver, "/link") == b"sha256:1"
    driver.put_content("/link", b"sha256:2")  # a new file renamed over it
    assert cache.get_content(driver, "/link") == b"sha256:2"
    driver.delete("/link")
    with pytest.raises(PathNotFoundError):
        cache.get_content(driver, "/link")


def test_a_file_changed_within_the_clock_tick_is_read_every_time(
    driver: CountingDriver,
) -> None:
    """A second change in the same tick of the kernel's clock would keep the version."""
    cache = ContentCache()
    driver.put_content("/link", b"sha256:1")
    for _ in range(3):
        assert cache.get_content(driver, "/link") == b"sha256:1"
    assert driver.reads == 3


def test_the_budget_bounds_what_is_kept(driver: CountingDriver) -> None:
    cache = ContentCache(budget=2000, largest=1000)
    for name in ("a", "b", "c", "d", "big"):
        driver.put_content(f"/{name}", b"x" * (1001 if name == "big" else 500))
        settle(driver, f"/{name}")
        cache.get_content(driver, f"/{name}")
    driver.reads = 0
    for name in ("d", "c", "big", "a"):
        cache.get_content(driver, f"/{name}")
    # d and c were kept; "big" is over the largest size; a was dropped for the budget.
    assert driver.reads == 2


def test_no_budget_reads_every_time(driver: CountingDriver) -> None:
    cache = ContentCache(budget=0)
    driver.put_content("/link", b"sha256:1")
    settle(driver, "/link")
    for _ in range(2):
        assert cache.get_content(driver, "/link") == b"sha256:1"
    assert driver.reads == 2


class CountingMemory(InMemoryDriver):
    """The in-memory driver, which has no versions, counting what the cache asks of it."""

    reads = versions = 0

    def get_content(self, path: str) -> bytes:
        self.reads += 1
        return super().get_content(path)

    def version(self, path: str) -> Hashable | None:
        self.versions += 1
        return super().version(path)


def test_a_driver_without_versions_is_read_every_time_and_never_asked_for_one() -> None:
    """No look that only answers "no version" (and would count as a storage call)."""
    cache, driver = ContentCache(), CountingMemory()
    driver.put_content("/link", b"sha256:1")
    for _ in range(2):
        assert cache.get_content(driver, "/link") == b"sha256:1"
    assert (driver.reads, driver.versions) == (2, 0)
