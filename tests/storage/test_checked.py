"""The checking wrapper: paths are refused before a driver sees them, errors name it."""

from __future__ import annotations

from unittest import mock

import pytest

from distribution.storage.driver import (
    InvalidOffsetError,
    InvalidPathError,
    PathNotFoundError,
    StorageDriver,
    StorageDriverError,
)
from distribution.storage.driver.checked import CheckedDriver, is_valid_path


@pytest.fixture
def inner() -> mock.Mock:
    inner = mock.Mock(spec=StorageDriver)
    inner.configure_mock(name="fake")
    return inner


@pytest.mark.parametrize(
    "path",
    ["/a", "/a/b", "/docker/registry/v2/blobs/sha256/ab/ab12/data", "/a.b/-_/...", "/A9"],
)
def test_valid_paths(path: str) -> None:
    assert is_valid_path(path)


@pytest.mark.parametrize(
    "path", ["", "/", "a", "/a/", "//a", "/a/./b", "/a/../b", "/..", "/a\n", "/a\x00", "/é"]
)
def test_invalid_paths(path: str) -> None:
    assert not is_valid_path(path)


def test_invalid_paths_never_reach_the_driver(inner: mock.Mock) -> None:
    driver = CheckedDriver(inner)
    calls = [
        lambda: driver.get_content("/a/../b"),
        lambda: driver.put_content("/a/", b"x"),
        lambda: driver.reader("a"),
        lambda: driver.writer("/a//b"),
        lambda: driver.stat(""),
        lambda: driver.list("/a b"),
        lambda: driver.move("/ok", "/../x"),
        lambda: driver.move("/.", "/ok"),
        lambda: driver.delete("/"),
        lambda: driver.redirect_url("/", "GET"),
        lambda: driver.walk("/.", print),
    ]
    for call in calls:
        with pytest.raises(InvalidPathError) as info:
            call()
        assert info.value.driver == "fake"
    with pytest.raises(InvalidOffsetError):
        driver.reader("/ok", -1)
    assert inner.method_calls == []


def test_root_is_allowed_for_stat_list_and_walk(inner: mock.Mock) -> None:
    driver = CheckedDriver(inner)
    driver.stat("/")
    driver.list("/")
    driver.walk("/", print)
    assert [call[0] for call in inner.method_calls] == ["stat", "list", "walk"]


def test_driver_errors_are_tagged(inner: mock.Mock) -> None:
    inner.get_content.side_effect = PathNotFoundError("/a")
    with pytest.raises(PathNotFoundError) as info:
        CheckedDriver(inner).get_content("/a")
    assert str(info.value) == "fake: path not found: /a"


def test_os_errors_become_storage_errors(inner: mock.Mock) -> None:
    inner.put_content.side_effect = PermissionError(13, "Permission denied")
    with pytest.raises(StorageDriverError) as info:
        CheckedDriver(inner).put_content("/a", b"x")
    assert str(info.value) == "fake: [Errno 13] Permission denied"
    assert isinstance(info.value.__cause__, PermissionError)


def test_writer_os_errors_become_storage_errors(inner: mock.Mock) -> None:
    inner.writer.return_value.size = 0
    inner.writer.return_value.write.side_effect = OSError(28, "No space left on device")
    with CheckedDriver(inner).writer("/a") as writer, pytest.raises(StorageDriverError) as info:
        writer.write(b"x")
    assert str(info.value) == "fake: [Errno 28] No space left on device"
    assert inner.writer.return_value.close.called


def test_other_exceptions_pass_unchanged(inner: mock.Mock) -> None:
    inner.walk.side_effect = KeyError("from a walk callback")
    with pytest.raises(KeyError):
        CheckedDriver(inner).walk("/", print)
