"""``storage.tag.concurrencylimit``: a delete by digest reads at most so many tags at once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from distribution.digest import Digest
from distribution.storage.driver.inmemory import InMemoryDriver
from distribution.storage.tags import TagStore

ONE = Digest.parse("sha256:" + "1" * 64)
TWO = Digest.parse("sha256:" + "2" * 64)


class SlowReads(InMemoryDriver):
    """Counts how many tag reads run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = self.most = 0
        self._lock = threading.Lock()

    def get_content(self, path: str) -> bytes:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            return super().get_content(path)
        finally:
            with self._lock:
                self.running -= 1


@pytest.mark.parametrize(("limit", "most"), [(1, 1), (3, 3), (None, None)])
def test_lookup_reads_at_most_limit_tags_at_once(limit: int | None, most: int | None) -> None:
    driver = SlowReads()
    tags = TagStore(driver, "app")
    for n in range(8):
        tags.tag(f"t{n}", ONE if n % 2 else TWO)
    assert tags.lookup(ONE, limit) == ["t1", "t3", "t5", "t7"]
    if most is not None:
        assert driver.most == most
    else:  # Go's default: one per CPU
        assert 1 <= driver.most <= min(8, os.cpu_count() or 1)
