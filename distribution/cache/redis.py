"""Blob descriptors in Redis (``storage.cache.blobdescriptor: redis``), under the Go keys.

Go and Python replicas share one Redis, so keys, fields and the order of checks are the Go
registry's (registry/storage/cache/redis/redis.go):

- hash ``blobs::<digest>``: ``digest`` (the canonical digest), ``size``, ``mediatype``;
  ``mediatype`` is only set if absent (HSETNX).
- set ``repository::<repo>::blobs``: the digests linked into the repository.
- hash ``repository::<repo>::blobs::<digest>``: ``mediatype``, the repository's override.

A repository-scoped lookup is a hit only if the digest is a member of the repository's set
AND the global hash has ``digest`` and ``size`` (Go clears a deleted blob by removing those
fields and leaves the set alone); a non-empty per-repository ``mediatype`` overrides the
global one. Manifest revisions use the same shapes under ``repository::<repo>::manifests``:
our extension, which Go neither reads nor clears.
"""

from __future__ import annotations

from typing import Any

from distribution import errors
from distribution.cache.base import LAYERS, BlobDescriptorCache
from distribution.digest import Digest
from distribution.storage.blobs import Descriptor

_FIELDS = ("digest", "size", "mediatype")


class RedisCache(BlobDescriptorCache):
    """One Redis round trip per call (a non-transactional pipeline); errors propagate."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def stat(
        self, digest: Digest, repository: str | None = None, kind: str = LAYERS
    ) -> Descriptor | None:
        pipe = self.client.pipeline(transaction=False)
        if repository is not None:
            pipe.sismember(members_key(repository, kind), str(digest))
        pipe.hmget(descriptor_key(digest), *_FIELDS)
        if repository is not None:
            pipe.hget(scoped_key(repository, kind, digest), "mediatype")
        replies = pipe.execute()
        if repository is None:
            return _descriptor(replies[0])
        member, fields, override = replies
        if not member:
            return None
        descriptor = _descriptor(fields)
        if descriptor is not None and override:
            descriptor = Descriptor(descriptor.digest, descriptor.size, override.decode())
        return descriptor

    def set(
        self,
        digest: Digest,
        descriptor: Descriptor,
        repository: str | None = None,
        kind: str = LAYERS,
    ) -> None:
        if digest != descriptor.digest and digest.algorithm == descriptor.digest.algorithm:
            return  # Go refuses this: two digests of one algorithm for the same content
        pipe = self.client.pipeline(transaction=False)
        self._set(pipe, digest, descriptor, repository, kind)
        if repository is not None and digest.algorithm != descriptor.digest.algorithm:
            # Go also records the content under its canonical digest.
            self._set(pipe, descriptor.digest, descriptor, repository, kind)
        pipe.execute()

    def clear(self, digest: Digest, repository: str | None = None, kind: str = LAYERS) -> None:
        """Global: drop the hash's fields as Go does. Scoped: drop the membership and override.

        Go clears a repository's blob by removing the *global* fields, which makes every
        repository miss once; removing the membership is exact, and Go readers check it first.
        """
        if repository is None:
            self.client.hdel(descriptor_key(digest), *_FIELDS)
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.srem(members_key(repository, kind), str(digest))
        pipe.delete(scoped_key(repository, kind, digest))
        pipe.execute()

    @staticmethod
    def _set(
        pipe: Any, digest: Digest, descriptor: Descriptor, repository: str | None, kind: str
    ) -> None:
        if repository is not None:
            pipe.sadd(members_key(repository, kind), str(digest))
        key = descriptor_key(digest)
        pipe.hset(key, mapping={"digest": str(descriptor.digest), "size": descriptor.size})
        pipe.hsetnx(key, "mediatype", descriptor.media_type)
        if repository is not None:
            pipe.hset(scoped_key(repository, kind, digest), "mediatype", descriptor.media_type)


def descriptor_key(digest: Digest) -> str:
    return f"blobs::{digest}"


def members_key(repository: str, kind: str = LAYERS) -> str:
    return f"repository::{repository}::{kind}"


def scoped_key(repository: str, kind: str, digest: Digest) -> str:
    return f"repository::{repository}::{kind}::{digest}"


def _descriptor(fields: list[bytes | None]) -> Descriptor | None:
    """The descriptor in an HMGET reply; a missing digest or size is a miss, as in Go."""
    raw_digest, raw_size, raw_type = fields
    if raw_digest is None or raw_size is None:
        return None
    try:
        digest = Digest.parse(raw_digest.decode())
        size = int(raw_size)
    except (errors.DigestInvalid, UnicodeDecodeError, ValueError):
        return None
    if size < 0:
        return None
    media_type = raw_type.decode(errors="replace") if raw_type else None
    return Descriptor(digest, size, media_type) if media_type else Descriptor(digest, size)
