"""An in-process LRU of blob descriptors (``storage.cache.blobdescriptor: inmemory``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from distribution.cache.base import LAYERS, BlobDescriptorCache

if TYPE_CHECKING:
    from distribution.digest import Digest
    from distribution.storage.blobs import Descriptor

#: distribution v3's default ``blobdescriptorsize``.
DEFAULT_SIZE = 10000

_Key = tuple[str | None, str | None, "Digest"]


class InMemoryCache(BlobDescriptorCache):
    """At most ``size`` descriptors (None: no limit), least recently used evicted first;
    thread-safe.

    Each gunicorn worker has its own: a delete on one worker cannot reach the others, so the
    caller only asks it for repository scopes whose links cannot vanish while serving.
    """

    def __init__(self, size: int | None = DEFAULT_SIZE) -> None:
        if size is not None and size <= 0:
            raise ValueError("size must be positive")
        self.size = size
        self._entries: OrderedDict[_Key, Descriptor] = OrderedDict()
        self._lock = threading.Lock()

    def stat(
        self, digest: Digest, repository: str | None = None, kind: str = LAYERS
    ) -> Descriptor | None:
        key = _key(digest, repository, kind)
        with self._lock:
            descriptor = self._entries.get(key)
            if descriptor is not None:
                self._entries.move_to_end(key)
            return descriptor

    def set(
        self,
        digest: Digest,
        descriptor: Descriptor,
        repository: str | None = None,
        kind: str = LAYERS,
    ) -> None:
        with self._lock:
            self._put(_key(digest, repository, kind), descriptor)
            if repository is not None:
                self._put(_key(descriptor.digest, None, kind), descriptor)

    def clear(self, digest: Digest, repository: str | None = None, kind: str = LAYERS) -> None:
        with self._lock:
            self._entries.pop(_key(digest, repository, kind), None)

    def __len__(self) -> int:
        return len(self._entries)

    def _put(self, key: _Key, descriptor: Descriptor) -> None:
        self._entries[key] = descriptor
        self._entries.move_to_end(key)
        while self.size is not None and len(self._entries) > self.size:
            self._entries.popitem(last=False)


def _key(digest: Digest, repository: str | None, kind: str) -> _Key:
    return (repository, None if repository is None else kind, digest)
