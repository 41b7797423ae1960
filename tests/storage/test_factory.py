"""Building drivers by name from config parameters."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from distribution.storage.driver import (
    DriverUnavailableError,
    InvalidParameterError,
    StorageDriver,
    StorageDriverError,
    UnknownDriverError,
    create,
    factory,
    register,
    register_module,
)
from distribution.storage.driver.checked import CheckedDriver
from distribution.storage.driver.filesystem import FilesystemDriver
from distribution.storage.driver.inmemory import InMemoryDriver


@pytest.fixture(autouse=True)
def _restore_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(factory, "_constructors", dict(factory._constructors))


def test_builtin_drivers_are_registered() -> None:
    assert factory.names() == ["azure", "filesystem", "gcs", "inmemory", "s3", "s3aws"]


def test_create_wraps_the_driver_in_the_checker() -> None:
    driver = create("inmemory")
    assert isinstance(driver, CheckedDriver)
    assert isinstance(driver.driver, InMemoryDriver)
    assert driver.name == "inmemory"


def test_filesystem_defaults_are_gos(tmp_path: Path) -> None:
    driver = create("filesystem").driver
    assert isinstance(driver, FilesystemDriver)
    assert (driver.rootdirectory, driver.maxthreads) == ("/var/lib/registry", 100)
    assert create("filesystem", {"maxthreads": None}).driver.maxthreads == 100


def test_filesystem_parameters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    driver = create("filesystem", {"rootdirectory": str(tmp_path), "maxthreads": "50"}).driver
    assert (driver.rootdirectory, driver.maxthreads) == (str(tmp_path), 50)
    monkeypatch.chdir(tmp_path)
    assert create("filesystem", {"rootdirectory": "data"}).driver.rootdirectory == str(
        tmp_path / "data"
    )


@pytest.mark.parametrize("value", [24, 0, -5, "10"])
def test_maxthreads_below_minimum_is_raised_to_it_like_go(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert create("filesystem", {"maxthreads": value}).driver.maxthreads == 25
    assert "maxthreads" in caplog.text


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"maxthreads": "x"}, "maxthreads: must be an integer, got 'x'"),
        ({"maxthreads": 2.5}, "maxthreads: must be an integer, got 2.5"),
        ({"maxthreads": True}, "maxthreads: must be an integer, got True"),
        ({"rootdirectory": ""}, "rootdirectory: must be a non-empty string, got ''"),
        ({"rootdirectory": None}, "rootdirectory: must be a non-empty string, got None"),
        ({"rootdirectory": 5}, "rootdirectory: must be a non-empty string, got 5"),
    ],
)
def test_bad_filesystem_parameters(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        create("filesystem", parameters)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_unknown_driver_names_the_known_ones() -> None:
    with pytest.raises(UnknownDriverError) as info:
        create("s4")
    assert str(info.value) == (
        "unknown storage driver 's4' (available: azure, filesystem, gcs, inmemory, s3, s3aws)"
    )
    assert isinstance(info.value, ValueError)


def test_register_a_constructor() -> None:
    seen: list[dict[str, Any]] = []

    def construct(parameters: dict[str, Any]) -> StorageDriver:
        seen.append(parameters)
        return InMemoryDriver()

    register("custom", construct)
    driver = create("custom", {"option": 1})
    assert isinstance(driver, CheckedDriver)
    assert seen == [{"option": 1}]


def test_create_verifies_the_storage_unless_told_not_to() -> None:
    class Unreachable(InMemoryDriver):
        def verify(self) -> None:
            raise StorageDriverError("cannot reach bucket 'b'", "custom")

    register("custom", lambda parameters: Unreachable())
    with pytest.raises(StorageDriverError, match="cannot reach bucket 'b'"):
        create("custom")
    driver = create("custom", verify=False)  # a worker's: its master verified the storage
    with pytest.raises(StorageDriverError, match="cannot reach bucket 'b'"):
        driver.verify()


def test_a_missing_optional_dependency_fails_only_when_selected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fake_cloud_driver.py").write_text(
        "import fake_cloud_sdk_not_installed\n\ndef from_parameters(parameters):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    register_module("fakecloud", "fake_cloud_driver", extra="fakecloud")
    assert isinstance(create("inmemory"), CheckedDriver)
    with pytest.raises(DriverUnavailableError) as info:
        create("fakecloud")
    assert str(info.value) == (
        "storage driver 'fakecloud' needs 'fake_cloud_sdk_not_installed', which is not "
        "installed: pip install 'distribution-py[fakecloud]'"
    )


def test_a_missing_driver_module_of_ours_is_a_bug_not_a_config_error() -> None:
    register_module("typo", "distribution.storage.driver.no_such_module", extra="typo")
    with pytest.raises(ModuleNotFoundError):
        create("typo")
