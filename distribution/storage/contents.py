"""Small files this process has read, served again while storage says they are unchanged.

A manifest pull reads three small files (the tag's link, the revision link, the manifest) and
a blob ``HEAD`` one (the layer link). Their content is kept here with the file's version
(:meth:`StorageDriver.version`: on the filesystem, its inode, modification time and size), and
a later read asks only for the version: one ``stat`` instead of ``open``, two ``read`` and
``close``. Each of those calls lets another thread take the GIL, which is most of what a hot
read costs when many run at once. The version is asked on every read, so a file changed or
removed by anything (another worker or replica, the Go registry, the garbage collector) is
read again or reported missing at once; drivers without versions always read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from distribution.storage.driver import StorageDriver

#: Bytes of content one process keeps, all files together.
CONTENT_BUDGET = 4 << 20
#: Larger files are read every time: they are rare on hot paths, and would crowd out links.
LARGEST = 64 << 10
#: Bytes an entry costs besides its content and path (the tuple, the dict's node, the objects'
#: headers), counted so that the budget bounds memory, not only content.
ENTRY_OVERHEAD = 200


class ContentCache:
    """The content of small files read through :meth:`get_content`, each with its version."""

    def __init__(self, budget: int = CONTENT_BUDGET, largest: int = LARGEST) -> None:
        self.budget = budget
        self.largest = min(largest, budget)
        self._files: OrderedDict[str, tuple[Hashable, bytes]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()

    def get_content(self, driver: StorageDriver, path: str) -> bytes:
        """The file's content, as ``driver.get_content`` gives it (and raises)."""
        if not self.budget or not driver.directory_versions:
            return driver.get_content(path)  # no look that only says "no version" (and counts)
        version = driver.version(path)
        if version is None:
            return driver.get_content(path)
        with self._lock:
            entry = self._files.get(path)
            if entry is not None and entry[0] == version:
                self._files.move_to_end(path)
                return entry[1]
        # Read after the version was taken: if the file changes in between, the pair holds the
        # newer content with the older version, which the next read finds out of date.
        content = driver.get_content(path)
        if len(content) <= self.largest:
            self._put(path, version, content)
        return content

    def _put(self, path: str, version: Hashable, content: bytes) -> None:
        with self._lock:
            old = self._files.pop(path, None)
            self._held -= _cost(path, old[1]) if old else 0
            self._files[path] = (version, content)
            self._held += _cost(path, content)
            while self._held > self.budget:
                dropped, (_, content) = self._files.popitem(last=False)
                self._held -= _cost(dropped, content)


def _cost(path: str, content: bytes) -> int:
    return len(path) + len(content) + ENTRY_OVERHEAD


#: No caching: every read goes to the driver.
NO_CONTENTS = ContentCache(budget=0)
