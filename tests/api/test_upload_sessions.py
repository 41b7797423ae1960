"""``storage.uploads`` without HTTP: the Go layout, the live-hash cache and its fallbacks."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from distribution import errors
from distribution.digest import Digest
from distribution.storage import hashstate, paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import (
    PathNotFoundError,
    StorageDriver,
    StorageDriverError,
    create,
)
from distribution.storage.driver.inmemory import InMemoryDriver
from distribution.storage.uploads import LiveHashes, Source, Uploads

GO_UUID = "a9a01cbf-70ca-4a8b-bb71-782d72cc9633"


@pytest.fixture(params=["inmemory", "filesystem"])
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> StorageDriver:
    if request.param == "inmemory":
        return create("inmemory", {})
    return create("filesystem", {"rootdirectory": str(tmp_path)})


@pytest.fixture
def hashes() -> LiveHashes:
    return LiveHashes()


@pytest.fixture
def uploads(driver: StorageDriver, hashes: LiveHashes) -> Uploads:
    return Uploads(BlobStore(driver), hashes)


def sha256(data: bytes) -> Digest:
    return Digest.of(data)


def feed(chunks: Iterable[bytes]) -> Source:
    """A request body made of ``chunks``, as ``api.body.copy_body`` would deliver it."""

    def source(sink: Callable[[memoryview], object]) -> int:
        total = 0
        for chunk in chunks:
            sink(memoryview(chunk))
            total += len(chunk)
        return total

    return source


def test_live_hashes_are_per_offset_taken_once_and_bounded() -> None:
    live = LiveHashes(capacity=2)
    first = hashlib.sha256(b"a")
    live.put("u1", 1, first)
    assert live.take("u1", 2) is None
    assert live.take("u1", 1) is None  # a mismatched take drops the entry
    live.put("u1", 1, first)
    assert live.take("u1", 1) is first
    assert live.take("u1", 1) is None
    for name in ("u1", "u2", "u3"):
        live.put(name, 0, hashlib.sha256())
    assert live.take("u1", 0) is None
    assert live.take("u2", 0) is not None
    assert live.take("u3", 0) is not None


def test_go_written_upload_is_continued_and_committed(
    driver: StorageDriver, uploads: Uploads, hashes: LiveHashes
) -> None:
    """What Go 2.8 leaves after POST + PATCH: data, startedat, and its own hashstates."""
    driver.put_content(paths.upload_started_at("a/b", GO_UUID), b"2026-11-22T13:33:45Z")
    driver.put_content(paths.upload_data("a/b", GO_UUID), b"from go, ")
    driver.put_content(f"{paths.upload('a/b', GO_UUID)}/hashstates/sha256/9", b"\x00go-state")
    upload = uploads.get("a/b", GO_UUID)
    assert upload.size == 9
    assert upload.started_at.isoformat() == "2026-11-22T13:33:45+00:00"
    upload = uploads.append(upload, feed([b"finished ", b"by python"]))
    assert upload.size == 27
    descriptor = uploads.commit(upload, sha256(b"from go, finished by python"))
    assert descriptor.size == 27
    assert driver.get_content(paths.blob_data(descriptor.digest)) == b"from go, finished by python"
    link = driver.get_content(paths.layer_link("a/b", descriptor.digest))
    assert link == str(descriptor.digest).encode()
    with pytest.raises(PathNotFoundError):
        driver.stat(paths.upload("a/b", GO_UUID))


def test_upload_without_a_data_file_is_empty(driver: StorageDriver, uploads: Uploads) -> None:
    """Go's object-store drivers write ``data`` only when bytes arrive."""
    driver.put_content(paths.upload_started_at("a", GO_UUID), b"2026-11-22T13:33:45Z")
    upload = uploads.get("a", GO_UUID)
    assert upload.size == 0
    assert uploads.commit(upload, sha256(b"")).size == 0
    driver.put_content(paths.upload_started_at("a", GO_UUID), b"2026-11-22T13:33:45Z")
    upload = uploads.append(uploads.get("a", GO_UUID), feed([b"abc"]))
    assert uploads.commit(upload, sha256(b"abc")).size == 3


def _files(driver: StorageDriver, upload_id: str) -> list[str]:
    return sorted(p.rsplit("/", 1)[1] for p in driver.list(paths.upload("a", upload_id)))


def test_saves_the_hash_beside_the_data_never_at_gos_hashstates(
    driver: StorageDriver, uploads: Uploads
) -> None:
    upload = uploads.append(uploads.start("a"), feed([b"x" * 1000]))
    assert _files(driver, upload.id) == ["data", "sha256states", "startedat"]
    saved = hashstate.restore(driver.get_content(paths.upload_hash_state("a", upload.id, 1000)))
    assert saved is not None and saved.size == 1000
    saved.update(b"y")
    assert saved.hexdigest() == hashlib.sha256(b"x" * 1000 + b"y").hexdigest()
    final = uploads.append(uploads.start("a"), feed([b"x" * 1000]), final=True)
    assert _files(driver, final.id) == ["data", "startedat"]


def test_missing_or_corrupt_upload_is_unknown(driver: StorageDriver, uploads: Uploads) -> None:
    with pytest.raises(errors.BlobUploadUnknown):
        uploads.get("a", GO_UUID)
    driver.put_content(paths.upload_started_at("a", GO_UUID), b"yesterday")
    with pytest.raises(errors.BlobUploadUnknown):
        uploads.get("a", GO_UUID)


def test_another_process_continues_the_saved_hash(
    uploads: Uploads, hashes: LiveHashes, caplog: pytest.LogCaptureFixture
) -> None:
    """``hashes.clear()`` is the next request landing in another process."""
    caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    hashes.clear()
    upload = uploads.append(upload, feed([b"part two"]))
    hashes.clear()
    with pytest.raises(errors.DigestInvalid):
        uploads.commit(upload, sha256(b"part two"))
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    hashes.clear()
    upload = uploads.append(upload, feed([b"part two"]))
    hashes.clear()
    assert uploads.commit(upload, sha256(b"part one, part two")).size == 18
    assert "re-hashing" not in caplog.text


@pytest.mark.parametrize("state", ["missing", "corrupt", "another offset's"])
def test_commit_without_a_usable_hash_rehashes(
    driver: StorageDriver,
    uploads: Uploads,
    hashes: LiveHashes,
    caplog: pytest.LogCaptureFixture,
    state: str,
) -> None:
    caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    earlier = driver.get_content(paths.upload_hash_state("a", upload.id, 10))
    upload = uploads.append(upload, feed([b"part two"]))
    hashes.clear()
    saved = paths.upload_hash_state("a", upload.id, 18)
    if state == "missing":
        driver.delete(saved)
    elif state == "corrupt":
        driver.put_content(saved, b"sha\x03 and then not a state")
    else:
        driver.put_content(saved, earlier)
    assert uploads.commit(upload, sha256(b"part one, part two")).size == 18
    assert "no live hash, re-hashing 18 stored bytes" in caplog.text
    assert ("ignoring the hash saved" in caplog.text) == (state == "corrupt")


def test_a_hash_that_cannot_be_saved_costs_only_a_rehash(
    hashes: LiveHashes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
    failing = _FailingStateDriver()
    uploads = Uploads(BlobStore(failing), hashes)
    upload = uploads.append(uploads.start("a"), feed([b"stored anyway"]))
    assert upload.size == 13
    assert "could not save its hash" in caplog.text
    hashes.clear()
    assert uploads.commit(upload, sha256(b"stored anyway")).size == 13
    assert "re-hashing 13 stored bytes" in caplog.text


def test_a_hash_that_cannot_be_read_costs_only_a_rehash(
    hashes: LiveHashes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
    failing = _FailingStateDriver(reads=True)
    uploads = Uploads(BlobStore(failing), hashes)
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    hashes.clear()
    upload = uploads.append(upload, feed([b"part two"]))  # the request is not failed
    assert "ignoring the hash saved" in caplog.text and "I/O error" in caplog.text
    assert uploads.commit(upload, sha256(b"part one, part two")).size == 18
    assert "re-hashing 18 stored bytes" in caplog.text


class _FailingStateDriver(InMemoryDriver):
    """Saving a hash state fails; with ``reads``, reading one fails instead."""

    def __init__(self, reads: bool = False) -> None:
        super().__init__()
        self.reads = reads

    def put_content(self, path: str, data: bytes, *, durable: bool = True) -> None:
        if "/sha256states/" in path and not self.reads:
            raise StorageDriverError("disk full")
        super().put_content(path, data, durable=durable)

    def get_content(self, path: str) -> bytes:
        if "/sha256states/" in path and self.reads:
            raise StorageDriverError("I/O error")
        return super().get_content(path)


def test_without_libcrypto_uploads_hash_with_hashlib(
    driver: StorageDriver,
    uploads: Uploads,
    hashes: LiveHashes,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Where no libcrypto exports ``SHA256_Update``: nothing is saved; another process re-hashes."""
    monkeypatch.setattr(hashstate, "_library", lambda: None)
    caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    upload = uploads.append(upload, feed([b"part two"]))
    assert _files(driver, upload.id) == ["data", "startedat"]
    assert uploads.commit(upload, sha256(b"part one, part two")).size == 18
    assert "re-hashing" not in caplog.text
    upload = uploads.append(uploads.start("a"), feed([b"part one"]))
    hashes.clear()
    assert uploads.commit(upload, sha256(b"part one")).size == 8
    assert "re-hashing 8 stored bytes" in caplog.text


def test_live_hash_is_not_kept_when_someone_else_appended(
    driver: StorageDriver, uploads: Uploads, hashes: LiveHashes
) -> None:
    """A racing writer's bytes are not in our hash: the next request finds the stored size
    past the hash's offset, so commit re-hashes what is stored."""
    upload = uploads.start("a")
    data = paths.upload_data("a", upload.id)

    def chunks():
        yield b"mine "
        with driver.writer(data, append=True) as other:
            other.write(b"theirs ")
        yield b"mine again"

    upload = uploads.append(upload, feed(chunks()))
    assert upload.size == len(b"mine mine again")
    with uploads.exclusive("a", upload.id, writing=True) as stored:
        assert stored.size == len(b"mine theirs mine again")
        with pytest.raises(errors.DigestInvalid):
            uploads.commit(stored, sha256(b"mine mine again"))


def test_commit_refuses_data_that_grew_after_verification(
    driver: StorageDriver, uploads: Uploads
) -> None:
    upload = uploads.append(uploads.start("a"), feed([b"verified"]))
    with driver.writer(paths.upload_data("a", upload.id), append=True) as late:
        late.write(b" and more")
    with pytest.raises(errors.DigestInvalid):
        uploads.commit(upload, sha256(b"verified"))
    with pytest.raises(PathNotFoundError):
        driver.stat(paths.blob_data(sha256(b"verified")))


def test_reading_failure_keeps_what_arrived_and_drops_the_hash(
    driver: StorageDriver, uploads: Uploads, hashes: LiveHashes
) -> None:
    upload = uploads.start("a")

    def broken():
        yield b"arrived"
        raise errors.SizeInvalid()

    with pytest.raises(errors.SizeInvalid):
        uploads.append(upload, feed(broken()))
    resumed = uploads.get("a", upload.id)
    assert resumed.size == 7
    assert hashes.take(upload.id, 7) is None
    resumed = uploads.append(resumed, feed([b" and the rest"]))
    assert uploads.commit(resumed, sha256(b"arrived and the rest")).size == 20


def test_mismatch_cancels_and_stores_nothing(driver: StorageDriver, uploads: Uploads) -> None:
    upload = uploads.append(uploads.start("a"), feed([b"content"]))
    claimed = sha256(b"other")
    with pytest.raises(errors.DigestInvalid):
        uploads.commit(upload, claimed)
    for digest in (claimed, sha256(b"content")):
        for path in (paths.blob_data(digest), paths.layer_link("a", digest)):
            with pytest.raises(PathNotFoundError):
                driver.stat(path)
    assert driver.list(paths.uploads("a")) == []


def test_existing_blob_drops_the_upload_data(driver: StorageDriver, uploads: Uploads) -> None:
    first = uploads.commit(uploads.append(uploads.start("a"), feed([b"same"])), sha256(b"same"))
    second = uploads.append(uploads.start("b"), feed([b"same"]))
    assert uploads.commit(second, sha256(b"same")) == first
    assert driver.list(paths.uploads("b")) == []
    assert driver.get_content(paths.blob_data(first.digest)) == b"same"
