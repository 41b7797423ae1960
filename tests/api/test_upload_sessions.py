"""``storage.uploads`` without HTTP: the Go layout, the live-hash cache and its fallbacks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from distribution import errors
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import PathNotFoundError, StorageDriver, create
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


def test_never_writes_hashstates(driver: StorageDriver, uploads: Uploads) -> None:
    upload = uploads.append(uploads.start("a"), feed([b"x" * 1000]))
    assert sorted(p.rsplit("/", 1)[1] for p in driver.list(paths.upload("a", upload.id))) == [
        "data",
        "startedat",
    ]


def test_missing_or_corrupt_upload_is_unknown(driver: StorageDriver, uploads: Uploads) -> None:
    with pytest.raises(errors.BlobUploadUnknown):
        uploads.get("a", GO_UUID)
    driver.put_content(paths.upload_started_at("a", GO_UUID), b"yesterday")
    with pytest.raises(errors.BlobUploadUnknown):
        uploads.get("a", GO_UUID)


def test_commit_without_the_live_hash_rehashes(uploads: Uploads, hashes: LiveHashes) -> None:
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    hashes.clear()
    upload = uploads.append(upload, feed([b"part two"]))
    with pytest.raises(errors.DigestInvalid):
        uploads.commit(upload, sha256(b"part two"))
    upload = uploads.append(uploads.start("a"), feed([b"part one, "]))
    hashes.clear()
    upload = uploads.append(upload, feed([b"part two"]))
    assert uploads.commit(upload, sha256(b"part one, part two")).size == 18


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
