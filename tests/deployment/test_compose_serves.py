"""The compose file's registry, run as a process with its environment: TLS and htpasswd.

The container's paths (/certs, /auth, /var/lib/registry) are moved into the test's directory and
the port to a free one; everything else is the compose file's, over the image's config.yml.
"""

from __future__ import annotations

import os
from pathlib import Path

import bcrypt
import requests
import yaml

from tests.conftest import RegistryProcess, free_port
from tests.deployment.test_contrib_files import CONTRIB, IMAGE_CONFIG
from tests.tls.pki import Authority

TIMEOUT = 30


def test_compose_environment_serves_tls_with_htpasswd(tmp_path: Path) -> None:
    compose = yaml.safe_load((CONTRIB / "compose" / "docker-compose.yml").read_text())
    environment = compose["services"]["registry"]["environment"]
    root = Authority.root("Compose Root CA")
    cert, key = root.intermediate("Compose Intermediate").issue("domain", tmp_path / "certs")
    assert (cert.name, key.name) == ("domain.crt", "domain.key")
    (tmp_path / "auth").mkdir()
    hashed = bcrypt.hashpw(b"testpassword", bcrypt.gensalt(5)).decode()
    (tmp_path / "auth" / "htpasswd").write_text(f"testuser:{hashed}\n")

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    for name, value in environment.items():
        value = str(value)
        for container_dir in ("/certs", "/auth"):
            value = value.replace(container_dir + "/", f"{tmp_path}{container_dir}/")
        env[name] = value
    env.update(
        REGISTRY_HTTP_ADDR=env["REGISTRY_HTTP_ADDR"].replace(":5000", f":{port}"),
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=str(tmp_path / "data"),
        REGISTRY_HTTP_SECRET="compose-test",
        REGISTRY_HTTP_WORKERS="2",
        REGISTRY_HTTP_THREADS="4",
    )
    ca = root.write_ca(tmp_path / "ca.crt")
    registry = RegistryProcess(
        tmp_path / "registry", ["serve", str(IMAGE_CONFIG)], env, f"https://127.0.0.1:{port}"
    )
    try:
        registry.wait_ready(str(ca))
        url = f"{registry.url}/v2/"
        challenged = requests.get(url, verify=str(ca), timeout=TIMEOUT)
        assert challenged.status_code == 401
        assert challenged.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
        answered = requests.get(
            url, verify=str(ca), auth=("testuser", "testpassword"), timeout=TIMEOUT
        )
        assert answered.status_code == 200
    finally:
        registry.stop()
    assert "Traceback" not in registry.log
