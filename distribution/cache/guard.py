"""The cache as storage sees it: never raises, fails over to storage, and says so once.

Any error from the cache behind (Redis stopped, restarted, unreachable, timing out) turns the
call into a miss; the first one is logged, and for ``backoff`` seconds after it the cache is
not asked at all, so a dead Redis costs one request a timeout, not every request. The first
call that succeeds again logs the recovery. A clear that fails is remembered and replayed
before the cache is trusted again, so a descriptor deleted while Redis was unreachable is
not served stale once it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from distribution import metrics
from distribution.cache.base import LAYERS, BlobDescriptorCache

if TYPE_CHECKING:
    from distribution.digest import Digest
    from distribution.storage.blobs import Descriptor

log = logging.getLogger("distribution.cache")

#: Seconds the cache is left alone after a failure.
BACKOFF = 3.0
#: Failed clears remembered for replay; beyond this, invalidations are lost (and logged).
MAX_PENDING = 10000

_FAILED = object()


class GuardedCache(BlobDescriptorCache):
    """``inner`` behind a circuit breaker, caching the repository scopes of ``kinds`` only.

    ``hits`` and ``misses`` count this process's lookups (a failed one is a miss); each is
    also counted in the Prometheus metrics as ``hit``, ``miss`` or ``error``.
    """

    def __init__(
        self,
        inner: BlobDescriptorCache,
        name: str,
        kinds: frozenset[str],
        backoff: float = BACKOFF,
    ) -> None:
        self.inner = inner
        self.name = name
        self.kinds = kinds
        self.backoff = backoff
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._failing = False
        self._retry_at = 0.0
        self._pending: dict[tuple[Digest, str | None, str], None] = {}
        self._lost = False

    def stat(
        self, digest: Digest, repository: str | None = None, kind: str = LAYERS
    ) -> Descriptor | None:
        if repository is not None and kind not in self.kinds:
            return None
        found = self._call(self.inner.stat, digest, repository, kind)
        hit = found is not _FAILED and found is not None
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        result = "error" if found is _FAILED else "hit" if hit else "miss"
        metrics.cache_lookups.labels(result=result).inc()
        return found if hit else None

    def set(
        self,
        digest: Digest,
        descriptor: Descriptor,
        repository: str | None = None,
        kind: str = LAYERS,
    ) -> None:
        if repository is not None and kind not in self.kinds:
            return
        self._call(self.inner.set, digest, descriptor, repository, kind)

    def clear(self, digest: Digest, repository: str | None = None, kind: str = LAYERS) -> None:
        """Clear every kind, cached or not: a config with other kinds may have set it."""
        if self._call(self.inner.clear, digest, repository, kind) is _FAILED:
            self._remember(digest, repository, kind)

    @property
    def available(self) -> bool:
        """False between a failure and the next success."""
        return not self._failing

    def _call(self, method: Callable[..., Any], *args: Any) -> Any:
        if self._failing and time.monotonic() < self._retry_at:
            return _FAILED
        try:
            if self._pending:
                self._replay()
            result = method(*args)
        except Exception as error:  # the cache must never fail a request
            self._failed(error)
            return _FAILED
        if self._failing:
            self._recovered()
        return result

    def _replay(self) -> None:
        with self._lock:
            pending = list(self._pending)
        for key in pending:
            self.inner.clear(*key)
            with self._lock:
                self._pending.pop(key, None)

    def _remember(self, digest: Digest, repository: str | None, kind: str) -> None:
        with self._lock:
            if len(self._pending) < MAX_PENDING:
                self._pending[(digest, repository, kind)] = None
                return
            lost, self._lost = self._lost, True
        if not lost:
            log.error(
                "blob descriptor cache (%s): more than %d invalidations pending, dropping "
                "the rest; flush the cache once it is back",
                self.name,
                MAX_PENDING,
            )

    def _failed(self, error: Exception) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + self.backoff
            first, self._failing = not self._failing, True
        if first:
            log.warning(
                "blob descriptor cache (%s) unavailable, serving from storage until it is back: %s",
                self.name,
                error,
            )

    def _recovered(self) -> None:
        with self._lock:
            was, self._failing = self._failing, False
            self._lost = False
        if was:
            log.warning("blob descriptor cache (%s) is back", self.name)
