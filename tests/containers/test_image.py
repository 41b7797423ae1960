"""What the image is: the Go image's layout and entry point, labels, health check, and nothing
the runtime does not need."""

from __future__ import annotations

import json

from distribution import __version__
from tests.containers.harness import labels, podman


def inspect(image: str) -> dict:
    return json.loads(podman("image", "inspect", image).stdout)[0]


def test_layout_and_entry_point_are_the_go_images(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["Entrypoint"] == ["/entrypoint.sh"]
    assert config["Cmd"] == ["/etc/docker/registry/config.yml"]
    assert "/var/lib/registry" in config["Volumes"]
    assert "5000/tcp" in config["ExposedPorts"]
    assert config.get("User", "") in ("", "root")  # the entry point chooses whom to run as


def test_labels_and_health_check(image: str) -> None:
    found = labels(image)
    assert found["org.opencontainers.image.title"] == "distribution-py"
    assert found["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert found["org.opencontainers.image.version"] == __version__
    assert len(found["org.opencontainers.image.revision"]) == 40
    assert found["org.opencontainers.image.description"]
    check = inspect(image)["Healthcheck"]
    assert check["Test"] == ["CMD", "python", "-m", "distribution.container.healthcheck"]


def test_runtime_only(image: str) -> None:
    """The package's own version, and no compiler, pip cache, build tree or tests."""
    assert podman("run", "--rm", image, "--version").stdout.strip() == f"registry {__version__}"
    script = (
        "for tool in gcc cc g++ make; do command -v $tool; done; "
        "ls -d /root/.cache /src /wheels /install /registry 2>/dev/null; "
        "find /usr/local/lib/python3.11/site-packages/distribution* -name 'test*'; "
        "command -v dumb-init setpriv htpasswd registry >/dev/null || echo missing"
    )
    done = podman("run", "--rm", "--entrypoint", "sh", image, "-c", script)
    assert done.stdout == ""


def test_the_registrys_code_is_in_the_last_layers(image: str) -> None:
    """An image built for a change to the code differs from the one before in its last two
    layers only, the code and its bytecode: a few MB a host pulls, not the dependencies."""
    history = podman("history", "--format", "{{.Size}}|{{.CreatedBy}}", image).stdout
    steps = [line.split("|", 1) for line in history.splitlines()]
    # metadata steps (ARG, LABEL, CMD...) are "#(nop)" lines with no files
    layers = [(_bytes(size), step) for size, step in steps if "(nop)" not in step or "COPY" in step]
    (compiled, compiling), (code, copying), *below = layers
    assert "compileall" in compiling and "COPY dir" in copying
    assert compiled + code < 10_000_000 < max(size for size, _ in below)


def _bytes(size: str) -> float:
    """podman's sizes: "1.82 MB", "3.58 kB", "0 B" (powers of 1000)."""
    number, unit = size.split()
    return float(number) * 1000 ** ["B", "kB", "MB", "GB"].index(unit)
