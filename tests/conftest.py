"""Fixtures that start real components: the registry under gunicorn, as a user would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from distribution import config as config_module
from distribution import metrics
from distribution.app import create_app
from tests.ports import free_port
from tests.process import ServerProcess
from tests.storage.s3_emulator import ceph_s3, moto_s3

#: The S3 servers, defined once for the whole session: a Ceph cluster takes 20 s to start.
__all__ = ["ceph_s3", "free_port", "moto_s3"]

#: The configuration API tests run with unless they say otherwise.
TEST_CONFIG = """
version: 0.1
storage:
  inmemory: {}
  delete: {enabled: true}
http:
  secret: test-secret
"""


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def recorded_metrics() -> Iterator[None]:
    """Metrics recorded, as when a debug server exposes them (they are no-ops otherwise)."""
    metrics.record(True)
    yield
    metrics.record(False)


def make_app(config_text: str = TEST_CONFIG) -> Flask:
    """The registry's Flask app for ``config_text`` (no ``REGISTRY_*`` from the test's env)."""
    app = create_app(config_module.parse(config_text, {}))
    app.testing = True
    return app


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class RegistryProcess(ServerProcess):
    """``python -m distribution serve`` in a child process, logs captured to files."""

    def __init__(self, workdir: Path, args: list[str], env: dict[str, str], url: str) -> None:
        super().__init__([sys.executable, "-m", "distribution", *args], workdir, env, url)

    def quit(self) -> int:
        """Stop without the graceful stop's wait for idle kept-alive connections (2 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
        return self.wait_stopped()


@pytest.fixture
def start_registry(tmp_path: Path) -> Iterator:
    """Start registries: ``start_registry(config_text=None, env={}, scheme="http")``.

    The address is moved by environment variables to a free port; without ``config_text`` the
    registry runs on its embedded default with the storage root in the test's temp dir.
    """
    started: list[RegistryProcess] = []

    def start(
        config_text: str | None = None,
        env: dict[str, str] | None = None,
        scheme: str = "http",
        verify: str | bool = True,
        url: str | None = None,
    ) -> RegistryProcess:
        """``url``: where the registry answers when ``env`` moves ``http.addr`` itself."""
        port = free_port()
        workdir = tmp_path / f"registry-{len(started)}"
        workdir.mkdir()
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        full_env.update(
            REGISTRY_HTTP_ADDR=f"127.0.0.1:{port}",
            REGISTRY_HTTP_WORKERS="2",
            REGISTRY_HTTP_THREADS="4",
        )
        args = ["serve"]
        if config_text is None:
            full_env["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = str(workdir / "data")
        else:
            (workdir / "config.yml").write_text(config_text)
            args.append(str(workdir / "config.yml"))
        full_env.update(env or {})
        url = url or f"{scheme}://127.0.0.1:{port}"
        registry = RegistryProcess(workdir, args, full_env, url)
        started.append(registry)
        registry.wait_ready(verify)
        return registry

    yield start
    for registry in started:  # a test that cares how its registry stops stops it itself
        registry.quit()
