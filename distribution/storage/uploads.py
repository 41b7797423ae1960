"""Blob upload sessions, stored as distribution stores them so Go and Python continue each other's.

::

    repositories/<name>/_uploads/<uuid>/startedat               RFC 3339 UTC, whole seconds
    repositories/<name>/_uploads/<uuid>/data                    the bytes received so far
    repositories/<name>/_uploads/<uuid>/sha256states/<offset>   the hash of ``data`` up to there

This process keeps the live sha256 object of an upload it is receiving in :class:`LiveHashes`,
keyed by upload and offset. After each request that does not commit, the hash's state is also
saved beside the data (:mod:`~distribution.storage.hashstate`), so another worker, replica or
a restarted process continues it; one that finds no readable state at the stored size
re-hashes the stored data at commit instead. Each offset gets a new file, as in Go: replacing
one file would make the filesystem write it out at once (ext4 does so for a rename over a
file), behind the upload's own data. Both only ever save work: a hash is used only at the
offset it was taken at, and commit checks it against the client's digest. Nothing is written
under Go's ``hashstates/``: Go re-hashes such an upload at commit, which is correct.

Commit verifies the digest before any blob exists, then moves the data into the blob store
(or drops it if the blob is already there), links it into the repository and removes the
upload, in that order, as distribution does.

Requests on one upload (append, status, commit, cancel) run one at a time under its lock
(:meth:`Uploads.exclusive`, :mod:`distribution.storage.locks`), in every worker and replica.
Without it a PATCH that opened the data file before a commit moved that file into the blob
store would write into the stored blob (Go has this flaw), and two PATCHes at one offset would
both append.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from distribution import errors
from distribution.digest import CANONICAL, Digest
from distribution.storage import hashstate, paths
from distribution.storage.blobs import BlobStore, Descriptor, RepositoryBlobs
from distribution.storage.driver import (
    FileWriter,
    LockTimeoutError,
    PathNotFoundError,
    StorageDriverError,
)
from distribution.storage.locks import DriverLocks, Locks
from distribution.uploadstate import parse_time

#: Bytes read at a time when re-hashing stored upload data.
READ_CHUNK = 1 << 20
#: Uploads whose live hash one process keeps; a sha256 object is a few hundred bytes.
LIVE_HASHES = 1024

if TYPE_CHECKING:
    #: A running sha256: one whose state can be saved, or hashlib's where none can.
    Hasher = hashstate.Sha256 | hashlib._Hash

_UPLOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

#: A request body: called with a sink, it feeds the sink every piece and returns the count. It
#: reuses a piece's memory only once the future the sink returned for it (if any) is done.
Source = Callable[[Callable[[memoryview], "Future[None] | None"]], int]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """An upload session: ``size`` bytes received so far into repository ``name``."""

    name: str
    id: str
    size: int
    started_at: datetime
    #: The data, open for appending at ``size`` (``Uploads.exclusive(writing=True)``), which
    #: :meth:`Uploads.append` writes through; None: append opens it.
    writer: FileWriter | None = field(default=None, repr=False, compare=False)


def _hashing_pool() -> ThreadPoolExecutor:
    """This process's threads for hashing upload bodies, made on first use (after a fork)."""
    global _hashing
    with _hashing_lock:
        if _hashing is None:
            _hashing = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="hash")
        return _hashing


_hashing: ThreadPoolExecutor | None = None
_hashing_lock = threading.Lock()


class LiveHashes:
    """This process's running sha256 of uploads, each valid only at the offset it was left at.

    Bounded (least recently stored entries go first) and thread-safe. ``take`` removes the
    entry, so two requests can never continue the same hash object.
    """

    def __init__(self, capacity: int = LIVE_HASHES) -> None:
        self.capacity = capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int, Hasher]] = OrderedDict()

    def put(self, upload_id: str, offset: int, hasher: Hasher) -> None:
        with self._lock:
            self._entries[upload_id] = (offset, hasher)
            self._entries.move_to_end(upload_id)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def take(self, upload_id: str, offset: int) -> Hasher | None:
        """The hash of the upload's first ``offset`` bytes, if this process has it."""
        with self._lock:
            entry = self._entries.pop(upload_id, None)
        if entry is None or entry[0] != offset:
            return None
        return entry[1]

    def drop(self, upload_id: str) -> None:
        with self._lock:
            self._entries.pop(upload_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Uploads:
    """Start, append to, commit and cancel uploads on the registry's driver."""

    def __init__(self, blobs: BlobStore, hashes: LiveHashes, locks: Locks | None = None) -> None:
        self.blobs = blobs
        self.driver = blobs.driver
        self.hashes = hashes
        self.locks = locks or DriverLocks(blobs.driver)

    def start(self, name: str) -> Upload:
        """A new, empty upload with a uuid4 id, as Go creates them."""
        upload_id = str(uuid.uuid4())
        started_at = datetime.now(UTC)
        self.driver.put_content(
            paths.upload_started_at(name, upload_id),
            started_at.strftime("%Y-%m-%dT%H:%M:%SZ").encode(),
        )
        self.driver.writer(paths.upload_data(name, upload_id)).close()
        return Upload(name, upload_id, 0, started_at)

    def get(self, name: str, upload_id: str) -> Upload:
        """The upload as stored now; ``BLOB_UPLOAD_UNKNOWN`` if there is none."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise errors.BlobUploadUnknown(detail=upload_id)
        started_at = self._started_at(name, upload_id)
        return Upload(name, upload_id, self._stored_size(name, upload_id), started_at)

    @contextlib.contextmanager
    def exclusive(self, name: str, upload_id: str, writing: bool = False) -> Iterator[Upload]:
        """The upload as stored, with no other request on it until the block ends.

        ``BLOB_UPLOAD_UNKNOWN`` if it is gone (committed or cancelled meanwhile included);
        ``TOOMANYREQUESTS`` if another request keeps it past the lock's wait. With
        ``writing``, the data is opened for :meth:`append` here and the upload's size is the
        writer's: one look at the stored data, where a stat and then the writer would each
        look (on S3 a listing of the upload and of its parts each).
        """
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise errors.BlobUploadUnknown(detail=upload_id)
        started = paths.upload_started_at(name, upload_id)
        with contextlib.ExitStack() as held:
            try:
                # The start time file: every upload has one, Go's too, until it is removed.
                # Reading it, first thing under the lock, is the lock's look for it.
                held.enter_context(self.locks.hold(started, check=False))
            except PathNotFoundError:
                raise errors.BlobUploadUnknown(detail=upload_id) from None
            except LockTimeoutError:
                raise errors.TooManyRequests(
                    "another request is using this upload", detail=upload_id
                ) from None
            started_at = self._started_at(name, upload_id)
            if not writing:
                yield Upload(name, upload_id, self._stored_size(name, upload_id), started_at)
                return
            writer = self._reopen(paths.upload_data(name, upload_id))
            if writer is not None:
                held.enter_context(writer)  # closed before the lock is let go
            yield Upload(name, upload_id, writer.size if writer else 0, started_at, writer)

    def append(self, upload: Upload, source: Source, final: bool = False) -> Upload:
        """Write what ``source`` delivers at the end of the upload, hashing it as it passes.

        Unless the request commits next (``final``) or brought nothing, the hash's state is
        saved for whichever process takes the upload's next request. If ``source`` fails (a
        client gone mid-body), what was written stays (the upload can resume at its stored
        size) and the hash is dropped, so commit re-hashes.
        """
        hasher = self._hasher(upload)
        data = paths.upload_data(upload.name, upload.id)
        with upload.writer or self._open_appending(data, upload.size) as writer:
            if hasher is None:

                def write(piece: memoryview) -> None:
                    writer.write(piece)

                source(write)
            else:
                update, hashing = hasher.update, _hashing_pool()
                hashed: Future[None] | None = None

                def write_and_hash(piece: memoryview) -> Future[None]:
                    # Both release the GIL: a piece is hashed on another core while it is
                    # written here and the next one is received. One at a time, in order.
                    nonlocal hashed
                    if hashed is not None:
                        hashed.result()
                    hashed = hashing.submit(update, piece)
                    writer.write(piece)
                    return hashed

                source(write_and_hash)
                if hashed is not None:
                    hashed.result()
            size = writer.size
        # The writer's size, not a stat: under the upload's lock nobody else appends, and each
        # use of a live hash checks its offset against the stored size again (the next
        # request's look at the upload; commit's once the data is made durable).
        if hasher is not None:
            self.hashes.put(upload.id, size, hasher)
            if not final and size != upload.size:
                self._save_hash(upload, hasher)
        return replace(upload, size=size, writer=None)

    def commit(self, upload: Upload, digest: Digest) -> Descriptor:
        """Verify the upload against ``digest`` and make it a blob of ``upload.name``.

        On a mismatch the upload is cancelled and ``DIGEST_INVALID`` raised; no blob and no
        link is written. Content is stored under its sha256 digest, and a ``digest`` of
        another algorithm becomes a link to it, as in distribution.
        """
        data = paths.upload_data(upload.name, upload.id)
        if upload.size:
            # First: a cloud driver's commit finishes the object, which a re-hash then reads.
            self._make_durable(data)
        canonical, size = self._verify(upload, digest)
        if canonical is None or self._stored_size(upload.name, upload.id) != size:
            self.cancel(upload)
            raise errors.DigestInvalid(detail={"Digest": str(digest)})
        if self._blob_size(canonical) != size:
            # Absent, or not whole: a multipart copy that died leaves an S3 upload at the
            # blob's key, which a stat counts as a file being written. The verified data
            # takes its place (S3's move aborts that upload first).
            if size == 0:
                self.driver.put_content(paths.blob_data(canonical), b"")
            else:
                self.driver.move(data, paths.blob_data(canonical))
        repository = RepositoryBlobs(self.blobs, upload.name)
        repository.link(canonical)
        if digest != canonical:
            repository.link(digest, canonical)
        repository.remember(digest, Descriptor(canonical, size))
        self._remove(upload)
        return Descriptor(canonical, size)

    def cancel(self, upload: Upload) -> None:
        """Remove the upload and everything stored for it."""
        self._remove(upload)

    def _verify(self, upload: Upload, digest: Digest) -> tuple[Digest | None, int]:
        """The canonical digest of the upload if it matches ``digest`` (else None), and size."""
        hasher = self._hasher(upload)
        if hasher is not None and digest.algorithm == CANONICAL:
            actual = Digest(CANONICAL, hasher.hexdigest())
            return (actual if actual == digest else None), upload.size
        log.debug("upload %s: no live hash, re-hashing %d stored bytes", upload.id, upload.size)
        hashers = {CANONICAL: hashlib.new(CANONICAL), digest.algorithm: digest.hasher()}
        size = 0
        try:
            with self.driver.reader(paths.upload_data(upload.name, upload.id)) as f:
                while chunk := f.read(READ_CHUNK):
                    size += len(chunk)
                    for h in hashers.values():
                        h.update(chunk)
        except PathNotFoundError:
            pass  # Go's drivers may leave no data file for an empty upload
        if size != upload.size or hashers[digest.algorithm].hexdigest() != digest.hex:
            return None, size
        return Digest(CANONICAL, hashers[CANONICAL].hexdigest()), size

    def _hasher(self, upload: Upload) -> Hasher | None:
        """The hash of the upload's stored bytes: this process's live one, else a state saved
        with the upload at the stored size (ours, else a Go registry's), else None (commit
        re-hashes)."""
        hasher = self.hashes.take(upload.id, upload.size)
        if hasher is not None:
            return hasher
        if upload.size == 0:
            return hashstate.new() or hashlib.new(CANONICAL)
        for path in (
            paths.upload_hash_state(upload.name, upload.id, upload.size),
            paths.upload_go_hash_state(upload.name, upload.id, upload.size),
        ):
            try:
                saved = hashstate.restore(self.driver.get_content(path))
            except PathNotFoundError:
                continue
            except (ValueError, StorageDriverError, OSError) as e:  # only work saved is lost
                log.warning("upload %s: ignoring the hash saved at %s (%s)", upload.id, path, e)
                continue
            if saved is None:
                return None
            if saved.size == upload.size:
                return saved
        return None

    def _save_hash(self, upload: Upload, hasher: Hasher) -> None:
        """Save the hash beside the data, for the process that takes the next request.

        Not made durable (a crash loses at most the state, never tears it), and a failure only
        costs that process a re-hash: the bytes are stored, so the request still succeeds.
        """
        if not isinstance(hasher, hashstate.Sha256):
            return
        path = paths.upload_hash_state(upload.name, upload.id, hasher.size)
        try:
            self.driver.put_content(path, hasher.state(), durable=False)
        except (StorageDriverError, OSError) as e:
            log.warning("upload %s: could not save its hash (%s)", upload.id, e)

    def _make_durable(self, path: str) -> None:
        """Commit the upload's data (fsync, or a cloud driver's finish) before it becomes a blob.

        A blob must never exist with content other than its digest's, even after a crash of
        the machine: Go's drivers commit here too.
        """
        with self.driver.writer(path, append=True) as writer:
            writer.commit()

    def _started_at(self, name: str, upload_id: str) -> datetime:
        try:
            stamp = self.driver.get_content(paths.upload_started_at(name, upload_id))
            return parse_time(stamp.decode())
        except PathNotFoundError:
            raise errors.BlobUploadUnknown(detail=upload_id) from None
        except ValueError:
            raise errors.BlobUploadUnknown("corrupt upload", detail=upload_id) from None

    def _stored_size(self, name: str, upload_id: str) -> int:
        """What the upload holds, by a ``stat``: unlike opening a writer, it changes nothing
        (a GCS writer resumed on committed data rewrites it as a session when closed), so an
        upload's status may ask it without the upload's lock."""
        try:
            return self.driver.stat(paths.upload_data(name, upload_id)).size
        except PathNotFoundError:
            return 0

    def _blob_size(self, digest: Digest) -> int | None:
        """The size stored for blob ``digest``; None when there is none."""
        try:
            return self.blobs.stat(digest).size
        except errors.BlobUnknown:
            return None

    def _reopen(self, path: str) -> FileWriter | None:
        """The data open for appending; None when there is none (an upload nothing was
        written to: Go's drivers may leave no file), so a failed check creates none."""
        try:
            return self.driver.writer(path, append=True)
        except PathNotFoundError:
            return None

    def _open_appending(self, path: str, size: int) -> FileWriter:
        try:
            return self.driver.writer(path, append=True)
        except PathNotFoundError:
            if size:
                raise
            return self.driver.writer(path)

    def _remove(self, upload: Upload) -> None:
        self.hashes.drop(upload.id)
        with contextlib.suppress(PathNotFoundError):
            self.driver.delete(paths.upload(upload.name, upload.id))
