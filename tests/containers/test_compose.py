"""The compose files of contrib/compose, run with podman-compose: up, push, pull, down, up.

Each file runs as shipped, from a copy in the test's directory, with an override file beside it
that only changes what this machine needs: the image (the one this run built), host ports (free
ones on 127.0.0.1) and, for the replicas, the nginx and Redis images, which cannot be pulled
here (stand-ins built from Debian's packages).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.containers.harness import BUILD_TIMEOUT, REPO, Client, podman, unique
from tests.e2e.harness import Skopeo
from tests.tls.pki import Authority

COMPOSE = REPO / "contrib" / "compose"
#: podman-compose from the test environment (setup.cfg's test extra).
PODMAN_COMPOSE = str(Path(sys.executable).parent / "podman-compose")
#: Seconds for one podman-compose command.
COMPOSE_TIMEOUT = 180
#: One stand-in for the replicas' nginx:1.27-alpine and redis:7-alpine, from Debian's packages:
#: nginx by default, redis-server when the command says so (without protected mode, as the
#: official Redis image is built).
STAND_IN = """\
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends nginx redis-server \\
    && rm -rf /var/lib/apt/lists/*
RUN printf '%s\\n' '#!/bin/sh' \\
    '[ "$1" = redis-server ] && shift && set -- redis-server --protected-mode no "$@"' \\
    'exec "$@"' > /usr/local/bin/entry && chmod +x /usr/local/bin/entry
ENTRYPOINT ["/usr/local/bin/entry"]
CMD ["nginx", "-g", "daemon off;"]
"""


class Compose:
    """``podman-compose -p PROJECT -f docker-compose.yml -f override.yml`` in ``directory``."""

    def __init__(self, directory: Path, override: str) -> None:
        self.directory = directory
        self.project = unique("compose")
        (directory / "override.yml").write_text(override)

    def __call__(self, *args: str) -> str:
        command = [
            *(PODMAN_COMPOSE, "-p", self.project),
            *("-f", "docker-compose.yml", "-f", "override.yml", *args),
        ]
        done = subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT
        )
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}{done.stdout}"
        return done.stdout

    def up(self) -> None:
        self("up", "-d", "--no-build")

    def down(self, *args: str) -> None:
        self("down", "-t", "10", *args)

    def logs(self) -> str:
        done = subprocess.run(
            [PODMAN_COMPOSE, "-p", self.project, "-f", "docker-compose.yml", "logs"],
            cwd=self.directory,
            capture_output=True,
            text=True,
            timeout=COMPOSE_TIMEOUT,
        )
        return done.stdout + done.stderr

    def container(self, service: str) -> str:
        names = podman(
            *("ps", "-a", "--format", "{{.Names}}"),
            *("--filter", f"label=com.docker.compose.project={self.project}"),
            *("--filter", f"label=com.docker.compose.service={service}"),
        ).stdout.split()
        assert len(names) == 1, names
        return names[0]


def wait_for(url: str, status: int, verify: str | bool = False, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = requests.get(url, timeout=2, verify=verify)
            if answer.status_code == status:
                return
            last = f"answered {answer.status_code}"
        except requests.RequestException as err:
            last = str(err)
        time.sleep(0.2)
    raise AssertionError(f"{url}: {last}")


@pytest.fixture(scope="session")
def stand_in(image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The nginx and Redis stand-in (podman's layer cache keeps it between runs)."""
    directory = tmp_path_factory.mktemp("stand-in")
    (directory / "Containerfile").write_text(STAND_IN)
    tag = "localhost/distribution-py-test-stand-in:latest"
    podman("build", "--layers", "-q", "-t", tag, str(directory), timeout=BUILD_TIMEOUT)
    return tag


def test_guide_compose_file(image: str, pushable: str, tmp_path: Path) -> None:
    """contrib/compose/docker-compose.yml: TLS (with an intermediate) and htpasswd by variables,
    http.secret from a Docker secret, data/ certs/ auth/ beside it, made as its comment says."""
    directory = tmp_path / "compose"
    shutil.copytree(COMPOSE, directory, ignore=shutil.ignore_patterns("replicas"))
    authority = Authority.root("Compose Root CA")
    authority.intermediate("Compose Intermediate CA").issue("domain", directory / "certs")
    (directory / "data").mkdir()
    (directory / "auth").mkdir()
    made = podman("run", "--rm", "--entrypoint", "htpasswd", image, "-Bbn", "testuser", "pw")
    (directory / "auth" / "htpasswd").write_text(made.stdout)
    (directory / "http-secret.txt").write_text(secrets.token_hex(32) + "\n")
    ca = authority.write_ca(tmp_path / "ca.crt")
    port = free_port()
    compose = Compose(
        directory,
        f"services:\n  registry:\n    image: {image}\n"
        f"    ports: !override ['127.0.0.1:{port}:5000']\n",
    )
    client = Client(tmp_path / "client", ca=ca)
    remote = f"127.0.0.1:{port}/my-ubuntu"
    try:
        compose.up()
        wait_for(f"https://127.0.0.1:{port}/v2/", 401, verify=str(ca))
        client.login(f"127.0.0.1:{port}", "testuser", "pw")
        client.push(pushable, remote)
        first = client.download(remote, tmp_path / "first")
        name = compose.container("registry")
        assert podman("healthcheck", "run", name, check=False).returncode == 0
        # http.secret came from the Docker secret: no made-up one.
        assert "No HTTP secret provided" not in podman("logs", name).stderr

        compose.down()
        compose.up()
        wait_for(f"https://127.0.0.1:{port}/v2/", 401, verify=str(ca))
        assert client.download(remote, tmp_path / "second") == first
    finally:
        print(compose.logs())
        compose.down()
    assert (directory / "data" / "docker" / "registry" / "v2" / "repositories").is_dir()


def test_replicas_compose_files(image: str, stand_in: str, image_set, tmp_path: Path) -> None:
    """contrib/compose/replicas: nginx, two replicas, Redis. Push through nginx, pull from each
    replica, down, up: the named volume still holds the image.

    podman before 4.6 cannot wait for ``condition: service_healthy`` (podman-compose says so
    and starts nginx at once), and nginx then takes the replicas for dead for 10 s: the test
    waits for both replicas and restarts nginx, which Docker's compose does not need."""
    directory = tmp_path / "replicas"
    shutil.copytree(COMPOSE / "replicas", directory)
    (directory / "http-secret.txt").write_text(secrets.token_hex(32) + "\n")
    nginx, first, second = free_port(), free_port(), free_port()
    compose = Compose(
        directory,
        "services:\n"
        f"  registry-1:\n    image: {image}\n    ports: ['127.0.0.1:{first}:5000']\n"
        f"  registry-2:\n    image: {image}\n    ports: ['127.0.0.1:{second}:5000']\n"
        f"  redis:\n    image: {stand_in}\n"
        f"  nginx:\n    image: {stand_in}\n"
        f"    ports: !override ['127.0.0.1:{nginx}:5000']\n",
    )
    skopeo = Skopeo(tmp_path / "skopeo")
    pushed = image_set.oci_image
    try:
        up(compose, first, second, nginx)
        skopeo.copy(image_set.oci("image"), f"docker://127.0.0.1:{nginx}/team/app:1")
        for port in (first, second):
            raw = skopeo.inspect_raw(f"docker://127.0.0.1:{port}/team/app:1")
            assert raw == pushed.manifest
            layout = tmp_path / f"pulled-{port}"
            skopeo.copy(f"docker://127.0.0.1:{port}/team/app:1", f"oci:{layout}")
        # Both replicas use Redis: it holds the pushed blobs' descriptors.
        keys = podman(
            "exec", compose.container("redis"), "redis-cli", "--scan", "--pattern", "blobs::*"
        ).stdout.split()
        assert set(pushed.layer_digests) <= {key.removeprefix("blobs::") for key in keys}

        compose.down()
        up(compose, first, second, nginx)
        tags = json.loads(
            skopeo.run(
                "list-tags", "--tls-verify=false", f"docker://127.0.0.1:{nginx}/team/app"
            ).stdout
        )["Tags"]
        assert tags == ["1"]
        assert skopeo.inspect_raw(f"docker://127.0.0.1:{nginx}/team/app:1") == pushed.manifest
    finally:
        print(compose.logs())
        compose.down("-v")


def up(compose: Compose, first: int, second: int, nginx: int) -> None:
    compose.up()
    for port in (first, second):
        wait_for(f"http://127.0.0.1:{port}/v2/", 200)
    podman("restart", "-t", "2", compose.container("nginx"))
    wait_for(f"http://127.0.0.1:{nginx}/v2/", 200)
