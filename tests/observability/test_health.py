"""The health checkers, their thresholds and polling, the status body and the API's gate."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distribution import health
from distribution.health import checks
from distribution.storage import driver as drivers
from tests.conftest import free_port, make_app


def test_updater_fails_as_soon_as_a_run_fails_and_recovers_with_one_success() -> None:
    updater = health.Updater()
    assert updater.check() is None
    updater.update("down")
    assert updater.check() == "down"
    updater.update(None)
    assert updater.check() is None


def test_threshold_updater_fails_after_threshold_consecutive_failures() -> None:
    updater = health.ThresholdUpdater(3)
    for _ in range(2):
        updater.update("down")
        assert updater.check() is None
    updater.update("still down")
    assert updater.check() == "still down"
    updater.update(None)
    assert updater.check() is None
    updater.update("down")
    assert updater.check() is None  # the count started again


def test_threshold_zero_fails_at_once() -> None:
    updater = health.ThresholdUpdater(0)
    updater.update("down")
    assert updater.check() == "down"


def test_file_check_fails_while_the_file_exists(tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    check = checks.file_check(str(drain))
    assert check() is None
    drain.touch()
    assert check() == "file exists"
    drain.unlink()
    assert check() is None


def test_tcp_check_connects(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        addr = f"127.0.0.1:{server.getsockname()[1]}"
        assert checks.tcp_check(addr, 2.0)() is None
    closed = f"127.0.0.1:{free_port()}"
    assert checks.tcp_check(closed, 2.0)().startswith(f"{closed}: connection failed: ")
    assert "missing port" in checks.tcp_check("nowhere", 1.0)()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:
        status = 200 if self.headers.get("X-Probe") == "yes" else 418
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/probe"
    server.shutdown()
    server.server_close()


def test_http_check_sends_head_with_headers_and_compares_the_status(http_server: str) -> None:
    assert checks.http_check(http_server, 200, 2.0, {"X-Probe": ("yes",)})() is None
    assert checks.http_check(http_server, 418, 2.0, {})() is None
    assert checks.http_check(http_server, 200, 2.0, {})() == (
        f"{http_server}: downstream service returned unexpected status: 418"
    )
    down = f"http://127.0.0.1:{free_port()}/"
    assert checks.http_check(down, 200, 2.0, {})().startswith(f"{down}: error while checking: ")


def test_storage_check_passes_a_readable_or_missing_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    driver = drivers.create("filesystem", {"rootdirectory": str(root)})
    check = checks.storage_driver_check(driver)
    assert check() is None  # not created yet: the back-end answered, as in Go
    root.mkdir()
    assert check() is None


def test_storage_check_fails_on_an_unreadable_root(tmp_path: Path) -> None:
    """Unreadable even for root (chmod would not stop us): the root is a symlink loop."""
    root = tmp_path / "root"
    driver = drivers.create("filesystem", {"rootdirectory": str(root)})
    check = checks.storage_driver_check(driver)
    os.symlink(root, root)
    assert "Too many levels of symbolic links" in check()
    root.unlink()
    root.mkdir()
    assert check() is None


def test_checks_poll_on_their_interval_and_stop(tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    result = health.HealthChecks()
    result.poll("drain", checks.file_check(str(drain)), 0.02, health.Updater())
    try:
        assert result.status() == {}
        drain.touch()
        _wait_for(lambda: result.status() == {"drain": "file exists"})
        drain.unlink()
        _wait_for(lambda: result.status() == {})
    finally:
        result.close()


def test_a_broken_check_reports_its_error_and_keeps_polling() -> None:
    runs = []

    def broken() -> str | None:
        runs.append(1)
        raise RuntimeError("boom")

    result = health.HealthChecks()
    result.poll("broken", broken, 0.01, health.Updater())
    try:
        _wait_for(lambda: len(runs) >= 2)
        assert result.status() == {"broken": "boom"}
    finally:
        result.close()


def test_status_body_is_gos() -> None:
    assert health.status_body({}) == (200, b"{}")
    assert health.status_body({"/drain": "file exists"}) == (503, b'{"/drain":"file exists"}')


def test_configured_checks_are_named_as_in_go(tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    app = make_app(
        f"""
version: 0.1
storage: {{inmemory: {{}}}}
health:
  storagedriver: {{enabled: true, interval: 10ms, threshold: 2}}
  file: [{{file: {drain}, interval: 10ms}}]
  tcp: [{{addr: "127.0.0.1:{free_port()}", interval: 10ms, timeout: 1s}}]
"""
    )
    result = app.extensions[health.EXTENSION]
    try:
        drain.touch()
        _wait_for(lambda: set(result.status()) == {str(drain), _tcp_name(result)})
        assert not any(name.startswith("storagedriver_") for name in result.status())
        assert "storagedriver_inmemory" in result.names()
    finally:
        result.close()


def _tcp_name(result: health.HealthChecks) -> str:
    return next(name for name in result.names() if name.startswith("127.0.0.1:"))


def test_the_api_answers_503_unavailable_while_a_check_fails(tmp_path: Path) -> None:
    drain = tmp_path / "drain"
    app = make_app(
        f"version: 0.1\nstorage: {{inmemory: {{}}}}\n"
        f"health: {{file: [{{file: {drain}, interval: 10ms}}]}}\n"
    )
    client = app.test_client()
    try:
        assert client.get("/v2/").status_code == 200
        drain.touch()
        _wait_for(lambda: client.get("/").status_code == 503)
        response = client.get("/v2/")
        assert response.status_code == 503
        assert json.loads(response.data) == {
            "errors": [
                {
                    "code": "UNAVAILABLE",
                    "message": "service unavailable",
                    "detail": "health check failed: please see /debug/health",
                }
            ]
        }
        drain.unlink()
        _wait_for(lambda: client.get("/v2/").status_code == 200)
    finally:
        app.extensions[health.EXTENSION].close()


def test_without_checks_the_api_is_not_gated() -> None:
    app = make_app()
    assert not app.extensions[health.EXTENSION]
    assert app.test_client().get("/v2/").status_code == 200


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
