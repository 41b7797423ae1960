"""The pull-through cache: local storage first, the upstream on a miss, then stored.

What Go's ``registry/proxy`` does, through our stores:

* a manifest by tag asks the upstream which digest the tag points at now, serves that manifest
  from storage when it is there and fetches and stores it (manifest and tag) when not; when
  the upstream cannot be asked, the local tag answers. By digest: storage, else the upstream.
* a blob missing from storage streams from the upstream to the client while it is written to
  an upload of the repository; once the whole blob has arrived and matches its digest, the
  upload is committed, as a push would be. A short or wrong body stores nothing.
* one download into storage per blob per process: a request for a blob this process is
  already storing streams it from the upstream without storing it, as Go's proxy does, so a
  slow client of the first download holds up no one else. A ``Range`` request on a miss waits
  for the blob to be stored and is then served from storage.

Everything stored is scheduled for expiry (:mod:`distribution.proxy.schedule`).
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import NoReturn

import requests

from distribution import errors, manifest
from distribution.digest import CANONICAL, Digest
from distribution.proxy import schedule
from distribution.proxy.upstream import NotFound, Upstream, UpstreamError, iter_body
from distribution.storage import paths
from distribution.storage.blobs import Descriptor, RepositoryBlobs
from distribution.storage.driver import FileWriter, StorageDriverError
from distribution.storage.manifests import ManifestStore
from distribution.storage.registry import Registry
from distribution.storage.tags import TagStore
from distribution.storage.uploads import LiveHashes, Upload, Uploads

#: Bytes read from the upstream, stored and sent at a time.
CHUNK = 1 << 20
#: Seconds a request waits for another request's download of the same blob.
FOLLOW_TIMEOUT = 600.0
#: Times a request waits for or runs a download before it gives up.
FILL_ATTEMPTS = 3

log = logging.getLogger(__name__)


class PullThrough:
    """The cache of one process: its upstream client and the downloads in flight."""

    def __init__(self, registry: Registry, upstream: Upstream, ttl: float) -> None:
        self.registry = registry
        self.upstream = upstream
        self.ttl = ttl
        self.hashes = LiveHashes()
        self._lock = threading.Lock()
        self._inflight: dict[Digest, threading.Event] = {}

    # Manifests and tags.

    def ensure_tag(self, name: str, tag: str) -> int | None:
        """Make the manifest ``tag`` points at upstream now available in storage, and the
        local tag point at it; when the upstream cannot tell, the local tag stays as it is.

        Returns what :meth:`ensure_manifest` returns (None when it was already stored)."""
        try:
            digest = self.upstream.manifest_digest(name, tag)
        except UpstreamError as exc:
            log.info("proxy: serving local tag %s:%s, upstream: %s", name, tag, exc)
            return None
        fetched = self.ensure_manifest(name, digest)
        tags = TagStore(self.registry.driver, name)
        try:
            current = tags.resolve(tag)
        except errors.ManifestUnknown:
            current = None
        if current != digest:
            tags.tag(tag, digest)
        return fetched

    def ensure_manifest(self, name: str, digest: Digest) -> int | None:
        """Make manifest ``digest`` available in storage, fetching it on a miss; the bytes
        fetched, or None when it was stored already (a hit)."""
        store = ManifestStore(self.registry.blobs, name)
        if store.exists(digest):
            return None
        return self._fetch_manifest(store, digest)

    def ensure_list_fallback(self, name: str, tag: str, accepted: frozenset[str]) -> None:
        """When the manifests handler will answer this client with the linux/amd64 image of
        the Docker manifest list ``tag`` points at (a client that does not accept lists),
        make that image available too, as Go's proxy fetches it when the handler asks."""
        if manifest.DOCKER_MANIFEST_LIST in accepted:
            return
        try:
            digest = TagStore(self.registry.driver, name).resolve(tag)
            body = ManifestStore(self.registry.blobs, name).get(digest)
        except errors.ManifestUnknown:
            return
        if manifest.needs_list_fallback(manifest.classify(body), accepted, by_tag=True):
            child = manifest.default_platform_child(manifest.parse_stored(body))
            self.ensure_manifest(name, child)

    def tags(self, name: str) -> list[str] | None:
        """The upstream's tags of ``name``; None when it cannot tell (serve the local ones)."""
        try:
            return self.upstream.tags(name)
        except UpstreamError as exc:
            log.info("proxy: listing local tags of %s, upstream: %s", name, exc)
            return None

    def _fetch_manifest(self, store: ManifestStore, digest: Digest) -> int:
        try:
            body = self.upstream.manifest(store.name, str(digest))
        except UpstreamError as exc:
            raise _error(
                exc, errors.ManifestUnknown, {"Name": store.name, "Revision": str(digest)}
            ) from None
        hasher = digest.hasher()
        hasher.update(body)
        if hasher.hexdigest() != digest.hex:
            log.warning("proxy: upstream manifest %s@%s has another digest", store.name, digest)
            raise errors.Unavailable("upstream sent a manifest that does not match its digest")
        try:
            manifest.classify(body)  # as Go's client refuses what it cannot unmarshal
        except errors.Unknown as exc:
            log.warning(
                "proxy: upstream sent no manifest for %s@%s (%s)", store.name, digest, exc.detail
            )
            raise errors.Unavailable("upstream sent no manifest", detail=str(digest)) from None
        canonical = store.put(body)
        if canonical != digest:
            store.revisions.link(digest, canonical)
        self._schedule(store.name, digest, schedule.MANIFEST)
        return len(body)

    # Blobs.

    def has_blob(self, name: str, digest: Digest) -> bool:
        """Whether storage can serve the blob through ``name`` now; a blob another repository
        fetched is linked in once the upstream confirms this repository has it."""
        repository = RepositoryBlobs(self.registry.blobs, name)
        if repository.exists(digest):
            return True
        if not self.registry.blobs.exists(digest):
            return False
        try:
            self.upstream.blob_size(name, digest)
        except UpstreamError:
            return False
        repository.link(digest)
        self._schedule(name, digest, schedule.BLOB)
        return True

    def blob_size(self, name: str, digest: Digest) -> int:
        """The blob's size upstream, for a ``HEAD`` that missed (nothing is stored)."""
        try:
            return self.upstream.blob_size(name, digest)
        except UpstreamError as exc:
            raise _error(exc, errors.BlobUnknown, str(digest)) from None

    def claim(self, digest: Digest) -> threading.Event | None:
        """None: the caller fetches ``digest`` and must :meth:`release` it. Otherwise the
        event set when the process's fetch in flight ends."""
        with self._lock:
            running = self._inflight.get(digest)
            if running is None:
                self._inflight[digest] = threading.Event()
            return running

    def release(self, digest: Digest) -> None:
        with self._lock:
            running = self._inflight.pop(digest, None)
        if running is not None:
            running.set()

    def fetch(self, name: str, digest: Digest) -> BlobFetch:
        """Start downloading a claimed blob: iterate the result to stream and store it."""
        try:
            response = self.upstream.open_blob(name, digest)
        except UpstreamError as exc:
            self.release(digest)
            raise _error(exc, errors.BlobUnknown, str(digest)) from None
        try:
            uploads = Uploads(self.registry.blobs, self.hashes)
            upload = uploads.start(name)
        except BaseException:
            response.close()
            self.release(digest)
            raise
        try:
            return BlobFetch(self, digest, response, (uploads, upload))
        except BaseException:
            response.close()
            self.release(digest)
            _cancel(uploads, upload, digest)
            raise

    def stream(self, name: str, digest: Digest) -> BlobFetch:
        """Stream a blob another request is storing from the upstream, storing nothing."""
        try:
            response = self.upstream.open_blob(name, digest)
        except UpstreamError as exc:
            raise _error(exc, errors.BlobUnknown, str(digest)) from None
        return BlobFetch(self, digest, response, None)

    def fill(self, name: str, digest: Digest) -> int:
        """Make the blob available in storage, waiting for a fetch already running; the bytes
        this request fetched from the upstream (0 when another request stored the blob)."""
        for _ in range(FILL_ATTEMPTS):
            if self.has_blob(name, digest):
                return 0
            running = self.claim(digest)
            if running is not None:
                running.wait(FOLLOW_TIMEOUT)
                continue
            fetch = self.fetch(name, digest)
            try:
                for _ in fetch:
                    pass
            except ConnectionResetError:
                pass  # broken off or wrong: logged; the next attempt downloads it again
            finally:
                fetch.close()
            if fetch.stored:
                return fetch.descriptor.size
        raise errors.Unavailable("could not fetch the blob from the upstream", detail=str(digest))

    def _schedule(self, name: str, digest: Digest, kind: int) -> None:
        """Schedule stored content for expiry; content stored but not scheduled is served
        all the same (and kept), so a failure here is logged, not raised."""
        if self.ttl <= 0:
            return
        entry = schedule.Entry.make(name, digest, kind, self.ttl, datetime.now(UTC))
        try:
            schedule.record(self.registry.driver, [entry])
        except StorageDriverError as exc:
            log.warning("proxy: cannot schedule %s@%s for expiry: %s", name, digest, exc)


class BlobFetch:
    """A blob streaming from the upstream, as an iterable of chunks, into an upload when
    ``store`` names one (the fetch that claimed the blob).

    A WSGI server iterates it to send the blob; before the last chunk is handed over, the
    content is verified and the upload committed. ``close`` (the server always calls it)
    cancels an unfinished upload and ends the claim, so nothing half-stored remains.
    """

    def __init__(
        self,
        cache: PullThrough,
        digest: Digest,
        response: requests.Response,
        store: tuple[Uploads, Upload] | None,
    ) -> None:
        self.cache = cache
        self.store = store
        self.digest = digest
        self.response = response
        length = response.headers.get("Content-Length", "")
        self.size = int(length) if length.isdigit() and len(length) <= 19 else None
        self.stored = False
        self._body = iter_body(response, CHUNK)
        self._hasher = digest.hasher()
        self._received = 0
        self._writer: FileWriter | None = None
        if store is not None:
            uploads, upload = store
            self._writer = uploads.driver.writer(
                paths.upload_data(upload.name, upload.id), append=True
            )
        self._done = False
        #: Called once the whole blob is verified and about to reach the client.
        self.on_served: Callable[[], None] = _nothing

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.digest, self.size or 0)

    def __iter__(self) -> BlobFetch:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        try:
            chunk = next(self._body, b"")
        except Exception as exc:  # the upstream broke off
            self._abort(f"download broke off: {exc}")
        if not chunk:
            # A known size was completed by the last chunk, except an empty blob's (0 bytes).
            if self.size is not None and self._received < self.size:
                self._abort(f"upstream sent {self._received} of {self.size} bytes")
            self._finish()
            raise StopIteration
        self._received += len(chunk)
        self._hasher.update(chunk)
        self._store(chunk)
        if self.size is not None and self._received >= self.size:
            # Verified and committed before the client has the last byte: a wrong blob never
            # reaches it whole, and a stored one is there when its next request comes.
            self._finish()
        return chunk

    def close(self) -> None:
        """End the download; an upload not committed by now is removed."""
        if self._done:
            return
        self._done = True
        self.response.close()
        if self.store is None:
            return
        try:
            if not self.stored:
                self._discard()
        finally:
            self.cache.release(self.digest)

    def _finish(self) -> None:
        """The whole blob arrived: end the download once it is verified (and stored), then
        call ``on_served``; a wrong blob drops the client's connection instead."""
        if not self._complete():
            self._abort("content does not match its digest")
        self.close()
        self.on_served()

    def _abort(self, reason: str) -> NoReturn:
        """Give up: nothing is stored, and the client's connection is dropped mid-body, the
        one way left to tell it once the headers went out (gunicorn closes it quietly)."""
        log.warning("proxy: %s: %s; nothing stored", self.digest, reason)
        self.close()
        raise ConnectionResetError(errno.ECONNRESET, f"{self.digest}: {reason}")

    def _store(self, chunk: bytes) -> None:
        """Write to the upload; a storage failure stops storing, never the client's download."""
        if self._writer is None:
            return
        try:
            self._writer.write(chunk)
        except Exception as exc:
            log.warning("proxy: cannot store %s while serving it: %s", self.digest, exc)
            self._discard()

    def _complete(self) -> bool:
        """Whether the content is right; if so, commit the upload (when it is still stored)."""
        if self.size is not None and self._received != self.size:
            return False
        if self._hasher.hexdigest() != self.digest.hex:
            return False
        if self._writer is None or self.store is None:
            return True
        uploads, upload = self.store
        try:
            self._writer.close()
            self._writer = None
            upload = replace(upload, size=self._received)
            if self.digest.algorithm == CANONICAL:
                self.cache.hashes.put(upload.id, upload.size, self._hasher)
            uploads.commit(upload, self.digest)
        except Exception as exc:
            log.warning("proxy: cannot store %s: %s", self.digest, exc)
            return True
        self.stored = True
        self.cache._schedule(upload.name, self.digest, schedule.BLOB)
        return True

    def _discard(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.cancel()
            except Exception as exc:
                log.debug("proxy: cancelling the writer of %s: %s", self.digest, exc)
        if self.store is not None:
            _cancel(*self.store, self.digest)


def _nothing() -> None:
    return None


def _cancel(uploads: Uploads, upload: Upload, digest: Digest) -> None:
    """Remove an upload that will not be committed; a failure is logged, not raised."""
    try:
        uploads.cancel(upload)
    except Exception as exc:
        log.warning("proxy: cannot remove the upload of %s: %s", digest, exc)


def _error(exc: UpstreamError, unknown: type[errors.RegistryError], detail: object) -> Exception:
    """The client's error for an upstream failure: not there upstream is ``unknown``; too
    many requests stays 429; anything else is ``UNAVAILABLE`` (the upstream is down)."""
    if isinstance(exc, NotFound):
        return unknown(detail=detail)
    log.warning("proxy: upstream failure: %s", exc)
    if exc.status == 429:
        return errors.TooManyRequests(detail=str(exc))
    return errors.Unavailable("upstream registry unavailable", detail=str(exc))
