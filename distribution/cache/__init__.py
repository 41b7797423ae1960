"""Blob descriptor caches (``storage.cache.blobdescriptor``): in-process LRU or Redis.

The cache spares storage reads on blob ``HEAD``/``GET`` and manifest ``GET`` by digest. It is
never the truth: writes and manifest verification read storage, every error falls back to
storage (:mod:`distribution.cache.guard`), and deletes invalidate.

Which repository scopes are cached follows from who can invalidate them:

- Redis, layer links: always; Go replicas sharing the Redis read and clear the same keys.
- Redis, manifest revisions: only while ``storage.delete.enabled`` is off, since a Go replica
  deleting a manifest does not clear our extension keys.
- In-process: only while deletes are off and no maintenance job deletes (online collection,
  retention, the pull-through cache's expiry), since a delete on one worker, or in a job,
  cannot reach another worker's memory.
"""

from distribution.cache.base import LAYERS, MANIFESTS, NO_CACHE, BlobDescriptorCache

__all__ = ["LAYERS", "MANIFESTS", "NO_CACHE", "BlobDescriptorCache"]
