"""The inmemory driver: the shared suite, minus what needs storage outside the process."""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

import pytest

from distribution.storage.driver import StorageDriverError, create
from tests.storage.driver_suite import DriverSuite


class TestInMemoryDriver(DriverSuite):
    driver_name = "inmemory"
    shared_across_processes = False
    streams_to_storage = False


def test_drivers_do_not_share_state() -> None:
    first, second = create("inmemory"), create("inmemory")
    first.put_content("/a", b"x")
    assert second.list("/") == []


def test_no_redirects() -> None:
    driver = create("inmemory")
    driver.put_content("/blob", b"x")
    assert driver.redirect_url("/blob", "GET") is None


@pytest.mark.parametrize("planted", ["open folder", "link"])
def test_the_lock_folder_must_be_this_users_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, planted: str
) -> None:
    """The default lock (a file per path in the temp dir, as cloud drivers lock) refuses a
    folder that another user of a shared temp dir could have made first."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    driver = create("inmemory")
    driver.put_content("/a", b"x")
    with driver.lock("/a", timeout=1):
        pass
    folder = tmp_path / f"registry-locks-{os.getuid()}"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    folder.rmdir()
    if planted == "link":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        folder.symlink_to(tmp_path / "elsewhere")
    else:
        folder.mkdir()
        folder.chmod(0o777)
    refused = pytest.raises(StorageDriverError, match=re.escape(f"{folder} must be a folder of"))
    with refused, driver.lock("/a", timeout=1):
        pass
