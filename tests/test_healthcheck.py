"""The image's HEALTHCHECK (distribution.container.healthcheck) against a real ``registry
serve``, for each way the configuration makes it listen; the image itself is tested in
tests/containers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from distribution import config as config_module
from distribution.container import healthcheck
from tests.conftest import RegistryProcess, free_port, make_certificate
from tests.process import START_TIMEOUT


@pytest.mark.parametrize(("net", "tls"), [("tcp", True), ("unix", False), ("unix", True)])
def test_the_health_check_reaches_the_registry(tmp_path: Path, net: str, tls: bool) -> None:
    """Over a unix socket it spoke plain HTTP even to a TLS registry, got the 400 of plain
    HTTP on an HTTPS server, and the container stayed unhealthy."""
    addr = str(tmp_path / "registry.sock") if net == "unix" else f"127.0.0.1:{free_port()}"
    settings = [f"net: {net}", f"addr: '{addr}'", "secret: s"]
    if tls:
        cert, key = make_certificate(tmp_path)
        settings.append(f"tls: {{certificate: {cert}, key: {key}}}")
    config_path = tmp_path / "config.yml"
    config_path.write_text(
        f"version: 0.1\nstorage: {{inmemory: {{}}}}\nhttp: {{{', '.join(settings)}}}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    registry = RegistryProcess(tmp_path / "run", ["serve", str(config_path)], env, addr)
    config = config_module.load(str(config_path), environ={})
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert registry.proc.poll() is None, registry.log
            try:
                assert healthcheck.probe(config) == 200
                break
            except OSError:  # not listening yet
                assert time.monotonic() < deadline, registry.log
                time.sleep(0.05)
    finally:
        registry.stop()
