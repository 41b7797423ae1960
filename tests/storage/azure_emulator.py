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

ACCOUNT = "devstoreaccount1"
#: The well-known key of azurite's development account, published by Microsoft.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONTAINER = "registry"


@contextlib.contextmanager
def running(root: Path) -> Iterator[str]:
    """Serve blobs stored under ``root``; yield the account's service URL."""
    executable = shutil.which("azurite-blob") or shutil.which("azurite")
    if executable is None:
        pytest.fail("azurite is not on PATH (npm install -g azurite)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(root / "azurite.log", "wb")  # noqa: SIM115 - closed below, after the server
    server = subprocess.Popen(
        [
            executable,
            *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
            *("--location", str(root / "data"), "--debug", str(root / "debug.log")),
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(port, server, root / "azurite.log")
        yield f"http://127.0.0.1:{port}/{ACCOUNT}"
    finally:
        server.terminate()
        server.wait(10)
        log.close()


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
