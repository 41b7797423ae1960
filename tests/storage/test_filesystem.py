"""The filesystem driver: the shared suite, plus what only a local directory can show."""

from __future__ import annotations

import ctypes
import errno
import io
import mmap
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from distribution.storage.driver import (
    PathNotFoundError,
    StorageDriver,
    StorageDriverError,
    create,
    filesystem,
)
from tests.storage.driver_suite import DriverSuite

DIGEST = "3f" + "0123456789abcdef" * 3 + "0123456789abcd"


class TestFilesystemDriver(DriverSuite):
    directory_versions = True
    driver_name = "filesystem"

    @pytest.fixture(autouse=True)
    def short_settle(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Directories are dated once their last change is this old (2 s by default)."""
        monkeypatch.setattr(filesystem, "VERSION_SETTLE", 0.05)

    @pytest.fixture
    def driver_parameters(self, tmp_path: Path) -> dict[str, Any]:
        return {"rootdirectory": str(tmp_path / "registry")}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "registry"


@pytest.fixture
def driver(root: Path) -> StorageDriver:
    return create("filesystem", {"rootdirectory": str(root)})


def test_layout_is_the_go_registrys(driver: StorageDriver, root: Path) -> None:
    blob = f"/docker/registry/v2/blobs/sha256/{DIGEST[:2]}/{DIGEST}/data"
    driver.put_content(blob, b"layer")
    assert (root / f"docker/registry/v2/blobs/sha256/{DIGEST[:2]}/{DIGEST}/data").read_bytes() == (
        b"layer"
    )
    link = root / f"docker/registry/v2/repositories/a/b/_layers/sha256/{DIGEST}/link"
    link.parent.mkdir(parents=True)
    link.write_bytes(f"sha256:{DIGEST}".encode())
    assert driver.get_content(f"/docker/registry/v2/repositories/a/b/_layers/sha256/{DIGEST}/link")
    assert driver.list("/docker/registry/v2/repositories/a") == [
        "/docker/registry/v2/repositories/a/b"
    ]


def test_files_get_the_modes_go_gives_them(driver: StorageDriver, root: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    driver.put_content("/a/link", b"x")
    with driver.writer("/b/data") as w:
        w.write(b"x")
    for path in (root / "a/link", root / "b/data"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert (root / "a").stat().st_mode & 0o777 == 0o777 & ~umask


def test_put_content_replaces_instead_of_truncating(driver: StorageDriver, root: Path) -> None:
    driver.put_content("/repo/link", b"old content")
    with driver.reader("/repo/link") as before:
        driver.put_content("/repo/link", b"new")
        assert before.read() == b"old content"
    assert driver.get_content("/repo/link") == b"new"
    assert os.listdir(root / "repo") == ["link"]


def test_put_content_cleans_up_its_temp_file_on_failure(driver: StorageDriver, root: Path) -> None:
    driver.put_content("/repo/dir/file", b"x")
    with pytest.raises(StorageDriverError) as info:
        driver.put_content("/repo/dir", b"cannot replace a directory")
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.driver == "filesystem"
    assert os.listdir(root / "repo") == ["dir"]


def test_a_tree_deleted_while_written_into_costs_neither_side_an_error(
    driver: StorageDriver,
) -> None:
    """A tag pushed while it is deleted (``rmtree`` against ``makedirs`` and a rename): each
    side retries what the other undid, instead of failing the request with a 503."""
    failures: list[BaseException] = []

    def writing(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            driver.put_content(f"/tags/t/index/sha256/{DIGEST}/link", b"x")
            driver.put_content("/tags/t/current/link", b"x")
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)

    def deleting(barrier: threading.Barrier) -> None:
        barrier.wait()
        try:
            driver.delete("/tags/t")
        except PathNotFoundError:
            pass
        except BaseException as exc:  # collected for the assertion
            failures.append(exc)

    for _ in range(300):
        barrier = threading.Barrier(4)
        threads = [
            threading.Thread(target=f, args=(barrier,))
            for f in (writing, writing, deleting, deleting)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []


def test_reader_is_a_real_file(driver: StorageDriver) -> None:
    driver.put_content("/blob", b"0123456789")
    with driver.reader("/blob", 4) as r:
        assert isinstance(r, io.BufferedReader)
        assert os.fstat(r.fileno()).st_size == 10
        assert r.tell() == 4
        assert r.read() == b"456789"


def test_append_continues_a_file_written_by_someone_else(driver: StorageDriver, root: Path) -> None:
    upload = root / "docker/registry/v2/repositories/r/_uploads/u/data"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"written by go")
    with driver.writer("/docker/registry/v2/repositories/r/_uploads/u/data", append=True) as w:
        assert w.size == 13
        w.write(b", resumed")
    assert upload.read_bytes() == b"written by go, resumed"


def test_a_full_disk_is_the_drivers_error(driver: StorageDriver, root: Path) -> None:
    """ENOSPC from a writer is a StorageDriverError, as from every other call (503, not 500)."""
    (root / "repo").mkdir(parents=True)
    (root / "repo/data").symlink_to("/dev/full")
    with (
        driver.writer("/repo/data", append=True) as writer,
        pytest.raises(StorageDriverError) as info,
    ):
        writer.write(bytes(1 << 20))
    assert (info.value.driver, info.value.__cause__.errno) == ("filesystem", errno.ENOSPC)
    writer = driver.writer("/repo/data", append=True)
    writer.write(b"buffered, fails when flushed")
    with pytest.raises(StorageDriverError):
        writer.close()


def test_writeback_starts_for_every_byte_by_close(driver: StorageDriver, monkeypatch) -> None:
    """Each PATCH's tail goes to disk as it closes, so the commit's fsync finds little to do."""
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(filesystem, "_start_writeback", lambda fd, *span: started.append(span))
    piece = bytes(3 << 20)
    with driver.writer("/upload") as writer:
        for _ in range(4):
            writer.write(piece)
    assert started == [(0, 9 << 20), (9 << 20, 3 << 20)]
    started.clear()
    with driver.writer("/upload", append=True) as writer:
        writer.write(b"tail")
        writer.commit()
    assert started == []


def test_a_large_upload_leaves_only_its_tail_in_the_page_cache(
    driver: StorageDriver, root: Path
) -> None:
    """Bytes far behind the end are dropped from memory once on disk; the file keeps them all."""
    piece = os.urandom(1 << 20)
    with driver.writer("/upload") as writer:
        for _ in range(48):
            writer.write(piece)
    path = root / "upload"
    assert not _cached(path, 0)
    assert not _cached(path, (16 << 20) - 4096)
    assert _cached(path, 16 << 20)
    assert _cached(path, 47 << 20)
    with driver.writer("/upload", append=True) as writer:  # the next PATCH goes on dropping
        for _ in range(16):
            writer.write(piece)
    assert not _cached(path, 31 << 20)
    assert _cached(path, 63 << 20)
    assert path.read_bytes() == piece * 64


def test_pieces_off_the_page_marks_leave_no_page_behind(driver: StorageDriver, root: Path) -> None:
    """Received pieces end anywhere, and so would the dropped ranges: each left the page (or
    large folio) its end cut through, one per range, across every ``PATCH``. They end on
    2 MiB marks instead, so nothing before the tail stays."""
    piece = os.urandom((1 << 20) + 17)
    for patch in range(4):
        with driver.writer("/upload", append=bool(patch)) as writer:
            for _ in range(16):
                writer.write(piece)
    path = root / "upload"
    size = path.stat().st_size
    before_tail = size - filesystem.CACHED_TAIL - filesystem.DROP_ALIGN
    resident = _resident(path)
    assert [offset for offset in resident if offset < before_tail] == []
    tail = size - filesystem.CACHED_TAIL
    assert tail - tail % mmap.PAGESIZE in resident


def test_a_failed_write_out_is_the_writers_error(driver: StorageDriver, root: Path) -> None:
    """Waiting for written bytes to reach the disk can fail (EIO); the write fails with it.
    /dev/null takes writes but cannot be waited for (ESPIPE), which stands in for the disk."""
    (root / "repo").mkdir(parents=True)
    (root / "repo/data").symlink_to("/dev/null")
    piece = bytes(1 << 20)
    writer = driver.writer("/repo/data", append=True)
    with pytest.raises(StorageDriverError) as info:
        for _ in range(48):
            writer.write(piece)
    assert (info.value.driver, info.value.__cause__.errno) == ("filesystem", errno.ESPIPE)
    assert writer.size < 48 << 20
    with pytest.raises(StorageDriverError):
        writer.close()  # it drops behind too; the file is closed all the same


def _resident(path: Path) -> list[int]:
    """The offsets of the file's pages in the page cache, asked without reading any
    (``mincore`` on a mapping of it; a read, even one that must not wait, starts readahead)."""
    page = mmap.PAGESIZE
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:
        pages = (len(mapped) + page - 1) // page
        found = (ctypes.c_ubyte * pages)()
        address = ctypes.addressof(ctypes.c_char.from_buffer(mapped))
        mincore = ctypes.CDLL(None, use_errno=True).mincore
        mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        assert mincore(address, len(mapped), found) == 0, os.strerror(ctypes.get_errno())
    return [index * page for index, flags in enumerate(found) if flags & 1]


def _cached(path: Path, offset: int) -> bool:
    """Whether the page at ``offset`` is in the page cache."""
    return offset - offset % mmap.PAGESIZE in _resident(path)


def test_missing_root_directory_is_empty_and_not_created(driver: StorageDriver, root: Path) -> None:
    assert driver.list("/") == []
    with pytest.raises(StorageDriverError):
        driver.stat("/docker")
    assert not root.exists()


def test_no_redirects(driver: StorageDriver) -> None:
    driver.put_content("/blob", b"x")
    assert driver.redirect_url("/blob", "GET") is None


def test_a_file_with_hard_links_has_no_children(driver: StorageDriver, root: Path) -> None:
    """A file's link count says nothing of children: only a folder's is read that way."""
    driver.put_content("/f", b"x")
    for name in ("g", "h"):
        os.link(root / "f", root / name)
    assert not driver.has_children("/f")
