"""Runs ``azurite`` (the Azure Storage emulator from npm) for the tests.

It serves only the blob service, on a free port of 127.0.0.1, with its data in a temp dir and
telemetry off (otherwise it tries to send usage data out). It logs to a file, not a pipe, so
it never blocks on a full pipe.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port

ACCOUNT = "devstoreaccount1"
#: The well-known key of azurite's development account, published by Microsoft.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "registry"


class Azurite:
    """One azurite on a fixed port and data dir; stop and start it again at will, as a
    fault-injection test does (the blobs stay on disk across restarts)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        #: The account's service URL, what the driver's ``serviceurl`` takes.
        self.url = f"http://127.0.0.1:{self.port}/{ACCOUNT}"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start serving; the service URL once the port accepts connections."""
        executable = shutil.which("azurite-blob") or shutil.which("azurite")
        if executable is None:
            pytest.fail("azurite is not on PATH (npm install -g azurite)")
        log = self.root / "azurite.log"
        with open(log, "ab") as out:
            self._server = subprocess.Popen(
                [
                    executable,
                    *("--blobHost", "127.0.0.1", "--blobPort", str(self.port)),
                    *("--location", str(self.root / "data")),
                    *("--debug", str(self.root / "debug.log")),
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_until_up(self.port, self._server, log)
        return self.url

    def stop(self) -> None:
        """SIGTERM and wait; connections to the port are refused until :meth:`start`."""
        if self._server is not None:
            self._server.terminate()
            self._server.wait(10)
            self._server = None


@contextlib.contextmanager
def running(root: Path) -> Iterator[str]:
    """Serve blobs stored under ``root``; yield the account's service URL."""
    server = Azurite(root)
    try:
        yield server.start()
    finally:
        server.stop()


def _wait_until_up(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    server.kill()
    pytest.fail(f"azurite did not start on port {port}:\n{log.read_text()}")


@pytest.fixture(scope="session")
def azure_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The service URL of a running azurite whose test container exists."""
    from azure.storage.blob import BlobServiceClient

    with running(tmp_path_factory.mktemp("azurite")) as url:
        service = BlobServiceClient(url, credential={"account_name": ACCOUNT, "account_key": KEY})
        service.create_container(CONTAINER)
        yield url
