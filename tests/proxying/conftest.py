"""A real nginx running contrib/nginx/registry.conf, terminating TLS in front of the registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RegistryProcess, free_port
from tests.nginx import Nginx
from tests.tls.pki import self_signed

CONTRIB_CONF = Path(__file__).resolve().parents[2] / "contrib" / "nginx" / "registry.conf"


@dataclass
class Proxy:
    nginx: Nginx
    port: int
    cert: Path  # self-signed: the client's CA file too
    registry: RegistryProcess

    def url(self, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}"

    def netloc(self, host: str = "127.0.0.1") -> str:
        return f"{host}:{self.port}"


def http_block(upstream_port: int, port: int, cert: Path, key: Path) -> str:
    """contrib/nginx/registry.conf with the test's ports and certificate, nothing else changed."""
    text = CONTRIB_CONF.read_text()
    for old, new in [
        ("server 127.0.0.1:5000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 443 ssl;", f"listen {port} ssl;"),
        ("/etc/nginx/certs/domain.crt", str(cert)),
        ("/etc/nginx/certs/domain.key", str(key)),
    ]:
        assert text.count(old) == 1, f"{CONTRIB_CONF} no longer has {old!r} exactly once"
        text = text.replace(old, new)
    return text


@pytest.fixture
def start_proxy(tmp_path: Path, start_registry) -> Iterator:
    """``start_proxy(config_text=None, env=None)``: ``registry serve`` behind nginx over TLS,
    with a self-signed certificate for 127.0.0.1, 127.0.0.2 and localhost."""
    started: list[Nginx] = []

    def start(config_text: str | None = None, env: dict[str, str] | None = None) -> Proxy:
        registry = start_registry(config_text, env)
        upstream_port = int(registry.url.rsplit(":", 1)[1])
        directory = tmp_path / f"nginx-{len(started)}"
        cert = self_signed("nginx", directory / "certs", ("127.0.0.1", "127.0.0.2", "localhost"))
        port = free_port()
        nginx = Nginx(directory)
        started.append(nginx)
        nginx.start(http_block(upstream_port, port, cert, cert.with_suffix(".key")))
        return Proxy(nginx, port, cert, registry)

    yield start
    for nginx in started:
        nginx.stop()
