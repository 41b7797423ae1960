"""The test suite every storage driver must pass, like distribution's ``testsuites``.

A driver's test file subclasses :class:`DriverSuite`, names the driver and, if it needs
parameters, overrides the ``driver_parameters`` fixture. The suite only uses the public
contract through :func:`distribution.storage.driver.create` (checking wrapper included), so
a remote driver passes it unchanged; checks that peek at the backend belong in the driver's
own test file.

Each test works under its own ``/suite-<uuid>`` prefix, and teardown fails the test if that
prefix cannot be deleted completely.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest

from distribution import errors
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.blobs import BlobStore
from distribution.storage.driver import (
    FileInfo,
    InvalidOffsetError,
    InvalidPathError,
    LockTimeoutError,
    PathNotFoundError,
    SkipDir,
    StorageDriver,
    StorageDriverError,
    create,
)
from distribution.storage.uploads import LiveHashes, Source, Uploads

MiB = 1 << 20
LARGE_SIZE = 256 * MiB

_BLOCK = random.Random(1).randbytes(8 * MiB)
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


_CALLS: dict[str, Callable[[StorageDriver, str, str], object]] = {
    "get_content": lambda d, path, ok: d.get_content(path),
    "put_content": lambda d, path, ok: d.put_content(path, b"x"),
    "reader": lambda d, path, ok: d.reader(path),
    "writer": lambda d, path, ok: d.writer(path),
    "writer-append": lambda d, path, ok: d.writer(path, append=True),
    "stat": lambda d, path, ok: d.stat(path),
    "list": lambda d, path, ok: d.list(path),
    "walk": lambda d, path, ok: d.walk(path, lambda info: None),
    "move-from": lambda d, path, ok: d.move(path, ok),
    "move-to": lambda d, path, ok: d.move(ok, path),
    "delete": lambda d, path, ok: d.delete(path),
    "redirect_url": lambda d, path, ok: d.redirect_url(path, "GET"),
}
"""Every method taking a path, called with ``path`` (``ok`` is an existing file)."""


def requires(capability: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Collect the test only for drivers whose class sets ``capability`` true."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.requires = capability  # type: ignore[attr-defined]
        return test

    return mark


class DriverSuite:
    """Tests for one driver; subclasses set ``driver_name`` and their capabilities."""

    driver_name: str
    #: Another process building the driver from the same parameters sees the same files.
    shared_across_processes = True
    #: Written data goes to storage, not process memory, so memory use must stay flat.
    streams_to_storage = True
    #: ``version`` tells when a directory's entries change (else it is always None).
    directory_versions = False
    #: Parameters over ``driver_parameters`` for the 256 MiB writes.
    large_write_parameters: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for attr in dir(cls):
            capability = getattr(getattr(cls, attr), "requires", None)
            if capability is not None and not getattr(cls, capability):
                setattr(cls, attr, None)

    @pytest.fixture
    def driver_parameters(self) -> dict[str, Any]:
        return {}

    @pytest.fixture
    def driver(self, driver_parameters: dict[str, Any]) -> StorageDriver:
        return create(self.driver_name, driver_parameters)

    @pytest.fixture
    def large_driver(self, driver_parameters: dict[str, Any]) -> StorageDriver:
        return create(self.driver_name, {**driver_parameters, **self.large_write_parameters})

    @pytest.fixture
    def root(self, driver: StorageDriver) -> Iterator[str]:
        root = f"/suite-{uuid.uuid4().hex}"
        yield root
        with contextlib.suppress(PathNotFoundError):
            driver.delete(root)
        assert root not in driver.list("/"), "driver left files behind"
        with pytest.raises(PathNotFoundError):
            driver.stat(root)

    # Content

    @pytest.mark.parametrize(
        "data",
        [b"", b"a", bytes(range(256)) * 4, random.Random(2).randbytes(MiB + 7)],
        ids=["empty", "one-byte", "binary", "1MiB"],
    )
    def test_put_get_round_trip(self, driver: StorageDriver, root: str, data: bytes) -> None:
        driver.put_content(f"{root}/file", data)
        assert driver.get_content(f"{root}/file") == data
        assert driver.stat(f"{root}/file").size == len(data)

    def test_put_content_overwrites_with_shorter_content(
        self, driver: StorageDriver, root: str
    ) -> None:
        driver.put_content(f"{root}/file", b"long original content")
        driver.put_content(f"{root}/file", b"short")
        assert driver.get_content(f"{root}/file") == b"short"
        assert _files(driver, root) == {"/file": b"short"}

    def test_put_content_creates_parents_and_nothing_else(
        self, driver: StorageDriver, root: str
    ) -> None:
        driver.put_content(f"{root}/a/b/c/link", b"sha256:abc")
        driver.put_content(f"{root}/a/other", b"x")
        assert _files(driver, root) == {"/a/b/c/link": b"sha256:abc", "/a/other": b"x"}

    def test_put_content_without_durability_stores_the_same(
        self, driver: StorageDriver, root: str
    ) -> None:
        """``durable=False`` may lose the write in a crash; it is still whole and atomic."""
        driver.put_content(f"{root}/state", b"first state, longer", durable=False)
        driver.put_content(f"{root}/state", b"second", durable=False)
        assert driver.get_content(f"{root}/state") == b"second"
        assert _files(driver, root) == {"/state": b"second"}

    def test_get_content_missing(self, driver: StorageDriver, root: str) -> None:
        with pytest.raises(PathNotFoundError) as info:
            driver.get_content(f"{root}/missing")
        assert info.value.path == f"{root}/missing"
        assert info.value.driver == driver.name
        assert str(info.value).startswith(f"{driver.name}: ")

    def test_get_content_of_directory_is_not_found(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"x")
        with pytest.raises(PathNotFoundError):
            driver.get_content(f"{root}/dir")

    def test_concurrent_put_content_is_atomic(self, driver: StorageDriver, root: str) -> None:
        path = f"{root}/link"
        size = 256 * 1024
        driver.put_content(path, b"\0" * size)
        stop = threading.Event()
        torn: list[bytes] = []

        def read() -> None:
            while not stop.is_set():
                data = driver.get_content(path)
                if len(data) != size or data.count(data[:1]) != size:
                    torn.append(data)

        def put(i: int) -> None:
            for _ in range(10):
                driver.put_content(path, bytes([i]) * size)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(put, range(1, 9)))
        finally:
            stop.set()
            reader.join()
        assert not torn, "a reader saw a partially written file"
        assert list(_files(driver, root)) == ["/link"]

    # Readers

    @pytest.mark.parametrize("offset", [0, 1, 500, 999, 1000])
    def test_reader_at_offset(self, driver: StorageDriver, root: str, offset: int) -> None:
        data = random.Random(3).randbytes(1000)
        driver.put_content(f"{root}/file", data)
        with driver.reader(f"{root}/file", offset) as r:
            assert r.read() == data[offset:]

    @pytest.mark.parametrize("offset", [-1, 1001, 10**12])
    def test_reader_offset_out_of_range(
        self, driver: StorageDriver, root: str, offset: int
    ) -> None:
        driver.put_content(f"{root}/file", b"x" * 1000)
        with pytest.raises(InvalidOffsetError) as info:
            driver.reader(f"{root}/file", offset)
        assert (info.value.path, info.value.offset) == (f"{root}/file", offset)

    def test_reader_in_chunks(self, driver: StorageDriver, root: str) -> None:
        data = random.Random(4).randbytes(100_000)
        driver.put_content(f"{root}/file", data)
        chunks = []
        with driver.reader(f"{root}/file", 10) as r:
            while chunk := r.read(4093):
                assert len(chunk) <= 4093
                chunks.append(chunk)
        assert b"".join(chunks) == data[10:]

    def test_reader_missing(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"x")
        for path in (f"{root}/missing", f"{root}/dir", f"{root}/dir/file/below"):
            with pytest.raises(PathNotFoundError):
                driver.reader(path)

    # Writers

    def test_writer_round_trip(self, driver: StorageDriver, root: str) -> None:
        w = driver.writer(f"{root}/file")
        assert w.size == 0
        assert w.write(b"hello ") == 6
        assert w.write(memoryview(b"world")) == 5
        assert w.size == 11
        w.commit()
        w.close()
        assert driver.get_content(f"{root}/file") == b"hello world"
        assert _files(driver, root) == {"/file": b"hello world"}

    def test_writer_closed_then_appended_by_a_fresh_writer(
        self, driver: StorageDriver, root: str
    ) -> None:
        with driver.writer(f"{root}/file") as w:
            w.write(b"abc")
        assert driver.stat(f"{root}/file").size == 3  # a file still being written, too
        with driver.writer(f"{root}/file", append=True) as w:
            assert w.size == 3
            w.write(b"def")
            assert w.size == 6
        with driver.writer(f"{root}/file", append=True) as w:
            assert w.size == 6
            w.write(b"ghi")
            w.commit()
        assert driver.get_content(f"{root}/file") == b"abcdefghi"
        assert driver.stat(f"{root}/file").size == 9

    def test_writer_append_to_missing_path(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"x")
        for path in (f"{root}/missing", f"{root}/dir"):
            with pytest.raises(PathNotFoundError):
                driver.writer(path, append=True)

    def test_writer_without_append_truncates(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/file", b"previous content")
        with driver.writer(f"{root}/file") as w:
            assert w.size == 0
            w.write(b"new")
            w.commit()
        assert driver.get_content(f"{root}/file") == b"new"

    def test_writer_empty_commit_creates_empty_file(self, driver: StorageDriver, root: str) -> None:
        with driver.writer(f"{root}/file") as w:
            w.commit()
        assert driver.get_content(f"{root}/file") == b""
        with driver.writer(f"{root}/file", append=True) as w:
            w.write(b"later")
            w.commit()
        assert driver.get_content(f"{root}/file") == b"later"

    def test_writer_cancel_removes_content(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/sibling", b"kept")
        w = driver.writer(f"{root}/file")
        w.write(b"discarded")
        w.cancel()
        with pytest.raises(PathNotFoundError):
            driver.stat(f"{root}/file")
        assert _files(driver, root) == {"/sibling": b"kept"}

    def test_writer_cancel_after_resume_removes_file(
        self, driver: StorageDriver, root: str
    ) -> None:
        with driver.writer(f"{root}/file") as w:
            w.write(b"first part")
        w = driver.writer(f"{root}/file", append=True)
        w.write(b"second part")
        w.cancel()
        with pytest.raises(PathNotFoundError):
            driver.get_content(f"{root}/file")

    def test_writer_refuses_use_after_commit_close_or_cancel(
        self, driver: StorageDriver, root: str
    ) -> None:
        w = driver.writer(f"{root}/committed")
        w.write(b"x")
        w.commit()
        for action in (lambda: w.write(b"y"), w.commit):
            with pytest.raises(StorageDriverError):
                action()
        w.close()
        w.close()
        for action in (lambda: w.write(b"y"), w.commit, w.cancel):
            with pytest.raises(StorageDriverError):
                action()
        w = driver.writer(f"{root}/cancelled")
        w.cancel()
        for action in (lambda: w.write(b"y"), w.commit, w.cancel):
            with pytest.raises(StorageDriverError):
                action()
        assert driver.get_content(f"{root}/committed") == b"x"

    def test_concurrent_writers(self, driver: StorageDriver, root: str) -> None:
        def write(i: int) -> bytes:
            data = random.Random(i).randbytes(300_000)
            with driver.writer(f"{root}/w{i}/data") as w:
                for start in range(0, len(data), 64 * 1024):
                    w.write(data[start : start + 64 * 1024])
                w.commit()
            driver.put_content(f"{root}/w{i}/link", str(i).encode())
            return data

        with ThreadPoolExecutor(16) as pool:
            written = list(pool.map(write, range(16)))
        for i, data in enumerate(written):
            assert driver.get_content(f"{root}/w{i}/data") == data
            assert driver.get_content(f"{root}/w{i}/link") == str(i).encode()
        assert len(driver.list(root)) == 16

    @pytest.mark.slow
    def test_large_write_resumed_by_fresh_writers(
        self, large_driver: StorageDriver, root: str
    ) -> None:
        driver = large_driver
        path = f"{root}/upload/data"
        chunk = 4 * MiB
        count = LARGE_SIZE // chunk
        expected = hashlib.sha256()
        for start, stop in ((0, count // 3), (count // 3, 2 * count // 3), (2 * count // 3, count)):
            with driver.writer(path, append=start > 0) as w:
                assert w.size == start * chunk
                for i in range(start, stop):
                    data = _chunk(i, chunk)
                    expected.update(data)
                    w.write(data)
                assert w.size == stop * chunk
                if stop == count:
                    w.commit()
        assert driver.stat(path).size == LARGE_SIZE
        assert _sha256(driver, path) == (expected.hexdigest(), LARGE_SIZE)
        tail = hashlib.sha256(b"".join(_chunk(i, chunk) for i in range(count - 2, count)))
        assert _sha256(driver, path, LARGE_SIZE - 2 * chunk) == (tail.hexdigest(), 2 * chunk)

    @pytest.mark.slow
    @requires("streams_to_storage")
    def test_large_write_and_read_keep_memory_flat(
        self, large_driver: StorageDriver, root: str
    ) -> None:
        driver = large_driver
        path = f"{root}/blob"
        chunk = 8 * MiB
        baseline = peak = _rss()
        expected = hashlib.sha256()
        with driver.writer(path) as w:
            for i in range(LARGE_SIZE // chunk):
                data = _chunk(i, chunk)
                expected.update(data)
                w.write(data)
                del data
                peak = max(peak, _rss())
            w.commit()
        actual = hashlib.sha256()
        with driver.reader(path) as r:
            while data := r.read(chunk):
                actual.update(data)
                peak = max(peak, _rss())
        assert actual.hexdigest() == expected.hexdigest()
        assert peak - baseline < LARGE_SIZE // 4, f"memory grew by {(peak - baseline) // MiB} MiB"

    @requires("shared_across_processes")
    def test_writer_resumed_by_another_process(
        self, driver: StorageDriver, driver_parameters: dict[str, Any], root: str
    ) -> None:
        path = f"{root}/upload/data"
        chunk = 4 * MiB
        expected = hashlib.sha256()
        with driver.writer(path) as w:
            for i in range(4):
                expected.update(_chunk(i, chunk))
                w.write(_chunk(i, chunk))
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            job = pool.submit(
                _append_chunks, self.driver_name, driver_parameters, path, range(4, 8), chunk
            )
            assert job.result(timeout=120) == 8 * chunk
        for i in range(4, 8):
            expected.update(_chunk(i, chunk))
        with driver.writer(path, append=True) as w:
            assert w.size == 8 * chunk
            for i in range(8, 10):
                expected.update(_chunk(i, chunk))
                w.write(_chunk(i, chunk))
            w.commit()
        assert _sha256(driver, path) == (expected.hexdigest(), 10 * chunk)

    # Stat

    def test_stat_file(self, driver: StorageDriver, root: str) -> None:
        before = datetime.now(UTC)
        driver.put_content(f"{root}/dir/file", b"12345")
        after = datetime.now(UTC)
        info = driver.stat(f"{root}/dir/file")
        assert (info.path, info.size, info.is_dir) == (f"{root}/dir/file", 5, False)
        _assert_mtime_between(info, before, after)

    def test_stat_directory(self, driver: StorageDriver, root: str) -> None:
        before = datetime.now(UTC)
        driver.put_content(f"{root}/dir/sub/file", b"12345")
        after = datetime.now(UTC)
        for path in (f"{root}/dir", f"{root}/dir/sub"):
            info = driver.stat(path)
            assert (info.path, info.size, info.is_dir) == (path, 0, True)
            _assert_mtime_between(info, before, after)

    def test_stat_missing(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/file", b"x")
        for path in (f"{root}/missing", f"{root}/fil", f"{root}/file/below"):
            with pytest.raises(PathNotFoundError):
                driver.stat(path)

    # List

    def test_list_direct_children_sorted(self, driver: StorageDriver, root: str) -> None:
        for path in ("a/1", "a/2/x", "b", "B", "a-b/c", "a.b", "_layers/z"):
            driver.put_content(f"{root}/{path}", b"x")
        assert driver.list(root) == [
            f"{root}/{name}" for name in ("B", "_layers", "a", "a-b", "a.b", "b")
        ]
        assert driver.list(f"{root}/a") == [f"{root}/a/1", f"{root}/a/2"]
        assert driver.list(f"{root}/a/2") == [f"{root}/a/2/x"]

    def test_names_are_the_listing_without_the_folder(
        self, driver: StorageDriver, root: str
    ) -> None:
        for path in ("a/1", "a/2/x", "b", "B", "a-b/c", "a.b", "_layers/z"):
            driver.put_content(f"{root}/{path}", b"x")
        assert driver.names(root) == ["B", "_layers", "a", "a-b", "a.b", "b"]
        assert driver.names(f"{root}/a") == ["1", "2"]
        assert root.lstrip("/") in driver.names("/")
        for path in (f"{root}/missing", f"{root}/b", f"{root}/a-"):
            with pytest.raises(PathNotFoundError):
                driver.names(path)

    def test_list_root_shows_top_level_directories(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/file", b"x")
        listing = driver.list("/")
        assert root in listing
        assert listing == sorted(listing)
        assert all(path.startswith("/") and path.count("/") == 1 for path in listing)

    def test_list_missing_or_file(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"x")
        for path in (f"{root}/missing", f"{root}/dir/file", f"{root}/di"):
            with pytest.raises(PathNotFoundError):
                driver.list(path)

    # Walk

    def test_walk_depth_first_in_lexical_order(self, driver: StorageDriver, root: str) -> None:
        for path in ("b/2", "a/y/1", "a/x", "a-b", "B/c"):
            driver.put_content(f"{root}/{path}", b"xy")
        seen: list[FileInfo] = []
        driver.walk(root, seen.append)
        assert [(info.path[len(root) :], info.is_dir) for info in seen] == [
            ("/B", True),
            ("/B/c", False),
            ("/a", True),
            ("/a/x", False),
            ("/a/y", True),
            ("/a/y/1", False),
            ("/a-b", False),
            ("/b", True),
            ("/b/2", False),
        ]
        assert {info.size for info in seen if not info.is_dir} == {2}

    def test_walk_skip_dir(self, driver: StorageDriver, root: str) -> None:
        for path in ("a/1", "a/sub/2", "b/3", "c/4"):
            driver.put_content(f"{root}/{path}", b"x")
        seen: list[str] = []

        def visit(info: FileInfo) -> None:
            seen.append(info.path[len(root) :])
            if info.path.endswith(("/a", "/b/3")):
                raise SkipDir

        driver.walk(root, visit)
        assert seen == ["/a", "/b", "/b/3"]

    def test_files_below_a_folder_with_sizes_and_times(
        self, driver: StorageDriver, root: str
    ) -> None:
        before = datetime.now(UTC) - timedelta(minutes=5)
        sizes = {f"{root}/a/x": 1, f"{root}/a/b/y": 2, f"{root}/a/skip/z": 3, f"{root}/c": 4}
        for path, size in sizes.items():
            driver.put_content(path, b"#" * size)
        found = list(driver.files(root))
        assert {info.path: info.size for info in found} == sizes
        assert all(not info.is_dir and info.mtime > before for info in found)
        assert {info.path for info in driver.files(f"{root}/a")} == set(sizes) - {f"{root}/c"}
        kept = {info.path for info in driver.files(root, skip=lambda f: f.endswith("/skip"))}
        assert kept == set(sizes) - {f"{root}/a/skip/z"}
        assert list(driver.files(f"{root}/missing")) == []

    def test_has_children(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/a/b/c", b"x")
        assert driver.has_children(f"{root}/a")
        assert driver.has_children(f"{root}/a/b")
        assert not driver.has_children(f"{root}/a/b/c")  # a file
        assert not driver.has_children(f"{root}/missing")
        driver.delete(f"{root}/a/b/c")
        assert not driver.has_children(f"{root}/a/b")  # emptied (a folder left on disk)
        driver.put_content(f"{root}/d/e/f", b"x")
        driver.put_content(f"{root}/d/g/h", b"x")
        assert driver.has_children(f"{root}/d")  # subfolders only (the filesystem: by stat)

    def test_walk_missing(self, driver: StorageDriver, root: str) -> None:
        with pytest.raises(PathNotFoundError):
            driver.walk(f"{root}/missing", lambda info: None)

    def test_walk_callback_errors_propagate(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/a", b"x")

        def fail(info: FileInfo) -> None:
            raise _CallbackError(info.path)

        with pytest.raises(_CallbackError):
            driver.walk(root, fail)

    # Move

    def test_move_to_new_path_creates_parents(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/_uploads/u1/data", b"blob")
        driver.move(f"{root}/_uploads/u1/data", f"{root}/blobs/sha256/ab/abcd/data")
        assert driver.get_content(f"{root}/blobs/sha256/ab/abcd/data") == b"blob"
        with pytest.raises(PathNotFoundError):
            driver.stat(f"{root}/_uploads/u1/data")
        assert _files(driver, root) == {"/blobs/sha256/ab/abcd/data": b"blob"}

    def test_move_overwrites_existing_file(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/src", b"new")
        driver.put_content(f"{root}/dst", b"old and longer")
        driver.move(f"{root}/src", f"{root}/dst")
        assert _files(driver, root) == {"/dst": b"new"}

    def test_move_missing_source(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dst", b"untouched")
        with pytest.raises(PathNotFoundError) as info:
            driver.move(f"{root}/missing", f"{root}/dst")
        assert info.value.path == f"{root}/missing"
        assert _files(driver, root) == {"/dst": b"untouched"}

    # Delete

    def test_delete_file(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"x")
        driver.put_content(f"{root}/dir/other", b"y")
        driver.delete(f"{root}/dir/file")
        assert _files(driver, root) == {"/dir/other": b"y"}

    def test_delete_tree_recursively(self, driver: StorageDriver, root: str) -> None:
        for path in ("repo/a/1", "repo/a/b/2", "repo/c", "repo-x/1", "repox/2", "rep/3"):
            driver.put_content(f"{root}/{path}", b"x")
        driver.delete(f"{root}/repo")
        for path in (f"{root}/repo", f"{root}/repo/a", f"{root}/repo/a/b/2"):
            with pytest.raises(PathNotFoundError):
                driver.stat(path)
        with pytest.raises(PathNotFoundError):
            driver.list(f"{root}/repo")
        assert set(_files(driver, root)) == {"/repo-x/1", "/repox/2", "/rep/3"}

    def test_delete_missing(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/file", b"x")
        for path in (f"{root}/missing", f"{root}/fil", f"{root}/file/below"):
            with pytest.raises(PathNotFoundError):
                driver.delete(path)

    # Directory versions

    def test_a_directory_version_changes_with_its_entries_or_is_none(
        self, driver: StorageDriver, root: str
    ) -> None:
        driver.put_content(f"{root}/tags/a/current/link", b"x")
        if not self.directory_versions:
            assert driver.version(f"{root}/tags") is None  # callers list every time
            return
        first = _settled_version(driver, f"{root}/tags")
        assert driver.version(f"{root}/tags") == first
        driver.put_content(f"{root}/tags/b/current/link", b"x")
        second = _settled_version(driver, f"{root}/tags")
        assert second != first
        driver.delete(f"{root}/tags/a")
        assert _settled_version(driver, f"{root}/tags") not in (first, second)
        with pytest.raises(PathNotFoundError):
            driver.version(f"{root}/missing")

    def test_a_file_version_changes_with_its_content_or_is_none(
        self, driver: StorageDriver, root: str
    ) -> None:
        driver.put_content(f"{root}/link", b"sha256:1")
        if not self.directory_versions:
            assert driver.version(f"{root}/link") is None  # callers read every time
            return
        first = _settled_version(driver, f"{root}/link")
        assert driver.version(f"{root}/link") == first
        driver.put_content(f"{root}/link", b"sha256:2")
        assert _settled_version(driver, f"{root}/link") != first
        driver.delete(f"{root}/link")
        with pytest.raises(PathNotFoundError):
            driver.version(f"{root}/link")

    # Locks

    def test_lock_excludes_other_threads(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/upload", b"")
        inside, overlaps = [], []

        def hold(i: int) -> None:
            with driver.lock(f"{root}/upload", timeout=30):
                inside.append(i)
                if len(inside) > 1:
                    overlaps.append(list(inside))
                time.sleep(0.01)
                inside.remove(i)

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(hold, range(12)))
        assert overlaps == []

    @requires("shared_across_processes")
    def test_lock_excludes_other_processes(
        self, driver: StorageDriver, driver_parameters: dict[str, Any], root: str
    ) -> None:
        path = f"{root}/upload"
        driver.put_content(path, b"")
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            with driver.lock(path, timeout=30):
                other = pool.submit(_lock_and_time, self.driver_name, driver_parameters, path)
                time.sleep(1.0)
                released = time.time()
            assert other.result(timeout=120) >= released

    def test_lock_times_out_and_is_free_after_release(
        self, driver: StorageDriver, root: str
    ) -> None:
        driver.put_content(f"{root}/upload", b"")
        with driver.lock(f"{root}/upload", timeout=1):
            failed = ThreadPoolExecutor(1).submit(
                lambda: driver.lock(f"{root}/upload", timeout=0.2).__enter__()
            )
            with pytest.raises(LockTimeoutError) as info:
                failed.result(timeout=30)
            assert info.value.driver == driver.name
        with driver.lock(f"{root}/upload", timeout=1):
            pass

    def test_lock_of_a_missing_file(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/dir/file", b"")
        for path in (f"{root}/missing", f"{root}/dir"):
            with pytest.raises(PathNotFoundError), driver.lock(path, timeout=1):
                pass

    def test_a_waiter_finds_the_file_gone(self, driver: StorageDriver, root: str) -> None:
        """The file moved away (an upload committed) by the holder: the waiter holds nothing."""
        driver.put_content(f"{root}/upload", b"")
        waiting = threading.Event()

        def wait_for_it() -> None:
            waiting.set()
            with driver.lock(f"{root}/upload", timeout=30):
                pass

        with ThreadPoolExecutor(1) as pool:
            with driver.lock(f"{root}/upload", timeout=1):
                waiter = pool.submit(wait_for_it)
                waiting.wait(10)
                time.sleep(0.2)
                driver.move(f"{root}/upload", f"{root}/blob")
                time.sleep(0.2)
                assert not waiter.done()  # still waiting for the holder
            with pytest.raises(PathNotFoundError):
                waiter.result(timeout=30)

    # Uploads on this driver: requests on one upload run one at a time (storage.uploads)

    def test_a_patch_held_before_writing_cannot_reach_the_committed_blob(
        self, upload_repo: tuple[Uploads, str]
    ) -> None:
        uploads, name = upload_repo
        stored, evil = f"{name} stored".encode(), b"EVIL"
        upload = uploads.append(uploads.start(name), _body([stored]))
        opened, release = threading.Event(), threading.Event()

        def late_patch() -> str:
            with uploads.exclusive(name, upload.id) as current:
                uploads.append(current, _held_body(opened, release, evil))
            return "written"

        def commit() -> str:
            with uploads.exclusive(name, upload.id) as current:
                if current.size != upload.size:  # the API's _state check: 416
                    return "range invalid"
                uploads.commit(current, Digest.of(stored))
            return "committed"

        with ThreadPoolExecutor(2) as pool:
            patched = pool.submit(late_patch)
            assert opened.wait(30)
            committed = pool.submit(commit)
            time.sleep(0.3)
            release.set()
            outcome = (patched.result(timeout=60), committed.result(timeout=60))
        assert outcome == ("written", "range invalid")
        assert not uploads.blobs.exists(Digest.of(stored))

        with uploads.exclusive(name, upload.id) as current:  # the other order: commit first
            blob = uploads.commit(current, Digest.of(stored + evil))
        with pytest.raises(errors.BlobUploadUnknown), uploads.exclusive(name, upload.id):
            pass
        assert uploads.driver.get_content(paths.blob_data(blob.digest)) == stored + evil

    def test_another_process_continues_an_uploads_saved_hash(
        self, upload_repo: tuple[Uploads, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        """A second ``Uploads`` with its own live hashes is another worker or replica."""
        caplog.set_level(logging.DEBUG, "distribution.storage.uploads")
        uploads, name = upload_repo
        elsewhere = Uploads(uploads.blobs, LiveHashes())
        first, rest = f"{name} first ".encode(), random.Random(9).randbytes(MiB + 3)
        upload = uploads.append(uploads.start(name), _body([first]))
        with elsewhere.exclusive(name, upload.id, writing=True) as current:
            upload = elsewhere.append(current, _body([rest[:MiB], rest[MiB:]]))
        with uploads.exclusive(name, upload.id, writing=True) as current:
            blob = uploads.commit(
                uploads.append(current, _body([]), final=True), Digest.of(first + rest)
            )
        assert uploads.driver.get_content(paths.blob_data(blob.digest)) == first + rest
        assert "re-hashing" not in caplog.text

    def test_two_patches_at_one_offset_append_once(self, upload_repo: tuple[Uploads, str]) -> None:
        uploads, name = upload_repo
        head = f"{name} head-".encode()
        start = uploads.append(uploads.start(name), _body([head]))
        opened, release = threading.Event(), threading.Event()

        def patch(data: bytes, held: bool) -> str:
            with uploads.exclusive(name, start.id) as current:
                if current.size != start.size:  # both carry the same _state
                    return "range invalid"
                body = _held_body(opened, release, data) if held else _body([data])
                uploads.append(current, body)
            return "appended"

        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(patch, b"first", True)
            assert opened.wait(30)
            second = pool.submit(patch, b"second", False)
            time.sleep(0.3)
            release.set()
            outcomes = sorted([first.result(timeout=60), second.result(timeout=60)])
        assert outcomes == ["appended", "range invalid"]
        with uploads.exclusive(name, start.id) as current:
            blob = uploads.commit(current, Digest.of(head + b"first"))
        assert uploads.driver.get_content(paths.blob_data(blob.digest)) == head + b"first"

    @pytest.fixture
    def upload_repo(self, driver: StorageDriver) -> Iterator[tuple[Uploads, str]]:
        """Uploads on this driver into a repository of this test's own (blobs named by their
        content, which starts with the name); all of it is removed afterwards."""
        uploads = Uploads(BlobStore(driver), LiveHashes())
        name = f"suite-{uuid.uuid4().hex}/repo"
        yield uploads, name
        for path in driver.list(paths.repository(name) + "/_layers/sha256"):
            driver.delete(paths.blob_dir(Digest.parse("sha256:" + path.rsplit("/", 1)[1])))
        driver.delete(paths.repository(name).rsplit("/", 1)[0])

    # Paths

    @pytest.mark.parametrize("call", list(_CALLS))
    @pytest.mark.parametrize(
        "template",
        [
            "",
            "relative",
            "//",
            "{root}/",
            "{root}//b",
            "{root}/../b",
            "{root}/..",
            "{root}/./b",
            "{root}/.",
            "{root}/a b",
            "{root}/\u00e9",
            "{root}/a\x00",
            "{root}/a\n",
            "{root}/a\\b",
            "{root}/a:b",
        ],
    )
    def test_invalid_paths_are_rejected(
        self, driver: StorageDriver, root: str, call: str, template: str
    ) -> None:
        driver.put_content(f"{root}/ok", b"kept")
        path = template.format(root=root)
        with pytest.raises(InvalidPathError) as info:
            _CALLS[call](driver, path, f"{root}/ok")
        assert info.value.path == path
        assert info.value.driver == driver.name
        assert _files(driver, root) == {"/ok": b"kept"}

    @pytest.mark.parametrize(
        "call", ["get_content", "put_content", "reader", "writer", "move-from", "move-to", "delete"]
    )
    def test_root_is_not_a_file(self, driver: StorageDriver, root: str, call: str) -> None:
        driver.put_content(f"{root}/ok", b"kept")
        with pytest.raises(InvalidPathError):
            _CALLS[call](driver, "/", f"{root}/ok")
        assert _files(driver, root) == {"/ok": b"kept"}

    def test_long_paths(self, driver: StorageDriver, root: str) -> None:
        # 18 levels: with a root directory the key stays within S3's 1024 bytes.
        deep = root + "".join(f"/{i:02d}" + "x" * 48 for i in range(18))
        driver.put_content(f"{deep}/link", b"sha256:abc")
        assert driver.get_content(f"{deep}/link") == b"sha256:abc"
        assert driver.list(deep) == [f"{deep}/link"]
        with driver.writer(f"{deep}/link", append=True) as w:
            w.write(b"def")
        assert driver.stat(f"{deep}/link").size == 13
        with driver.writer(f"{deep}/link", append=True) as w:
            assert w.size == 13
            w.commit()  # closed uncommitted, GCS holds a session object, as Go's driver does
        assert driver.stat(f"{deep}/link").size == 13
        driver.move(f"{deep}/link", f"{deep}/moved")
        assert _files(driver, root) == {f"{deep[len(root) :]}/moved": b"sha256:abcdef"}
        driver.delete(f"{root}/00" + "x" * 48)
        assert _children(driver, root) == []

    def test_redirect_url_is_none_or_http(self, driver: StorageDriver, root: str) -> None:
        driver.put_content(f"{root}/blob", b"x")
        url = driver.redirect_url(f"{root}/blob", "GET")
        assert url is None or url.startswith(("http://", "https://"))


class _CallbackError(Exception):
    pass


def _settled_version(driver: StorageDriver, path: str) -> object:
    """The directory's or file's version once the driver dates it (a few seconds at most)."""
    deadline = time.monotonic() + 10
    while (version := driver.version(path)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert version is not None
    return version


def _lock_and_time(name: str, parameters: dict[str, Any], path: str) -> float:
    """In another process: when this process got the lock on ``path``."""
    with create(name, parameters).lock(path, timeout=60):
        return time.time()


def _body(pieces: list[bytes]) -> Source:
    def source(sink: Callable[[memoryview], object]) -> int:
        for piece in pieces:
            sink(memoryview(piece))
        return sum(map(len, pieces))

    return source


def _held_body(opened: threading.Event, release: threading.Event, data: bytes) -> Source:
    """A request body whose bytes arrive only once ``release`` is set (its writer is open)."""

    def source(sink: Callable[[memoryview], object]) -> int:
        opened.set()
        assert release.wait(30)
        sink(memoryview(data))
        return len(data)

    return source


def _children(driver: StorageDriver, path: str) -> list[str]:
    """``list(path)``; a directory emptied by ``delete`` may vanish, as on object stores."""
    try:
        return driver.list(path)
    except PathNotFoundError:
        return []


def _files(driver: StorageDriver, root: str) -> dict[str, bytes]:
    """Every file below ``root`` with its content, keyed by path relative to ``root``."""
    files: dict[str, bytes] = {}

    def collect(info: FileInfo) -> None:
        if not info.is_dir:
            files[info.path[len(root) :]] = driver.get_content(info.path)

    driver.walk(root, collect)
    return files


def _chunk(index: int, size: int) -> bytes:
    """``size`` bytes (at most 8 MiB) unique to ``index``, the same in every process."""
    return index.to_bytes(8, "big") + _BLOCK[8:size]


def _append_chunks(
    name: str, parameters: dict[str, Any], path: str, indexes: range, size: int
) -> int:
    """Runs in another process: resume the file at ``path`` and return its new size."""
    driver = create(name, parameters)
    with driver.writer(path, append=True) as w:
        for i in indexes:
            w.write(_chunk(i, size))
        return w.size


def _sha256(driver: StorageDriver, path: str, offset: int = 0) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with driver.reader(path, offset) as r:
        while data := r.read(MiB):
            digest.update(data)
            size += len(data)
    return digest.hexdigest(), size


def _rss() -> int:
    """Resident memory of this process now (the peak counter never comes down)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_SIZE


def _assert_mtime_between(info: FileInfo, before: datetime, after: datetime) -> None:
    """Allow for coarse timestamps and a remote backend's clock skew."""
    skew = timedelta(minutes=2)
    assert info.mtime.tzinfo is not None
    assert before - skew <= info.mtime <= after + skew
