"""The container image next to the Go registry's: size, time to the first 200, idle memory.

    flock /work/notes/bench.lock .venv/bin/python benchmarks/image.py [RUNS]

Builds (from podman's layer cache when nothing changed) this repository's image, the same
image without the cloud drivers (``EXTRAS=``), and a Go image: Debian's ``docker-registry``
binary with the C library it links and the Go image's config.yml, on ``scratch`` (registry:2
itself is Alpine with a static binary, about 25 MB; it cannot be pulled here). Then, RUNS times
and interleaved, ``podman run -d`` each and times the first ``200`` on ``/v2/``, and, 3 s later,
the idle memory of the container's processes (PSS summed, so pages a fork shares count once;
RSS summed beside it). Sizes: uncompressed as podman stores them; compressed as a registry
holds them (``skopeo copy`` to an OCI layout, gzip layers). Prints a Markdown table.
Needs root and tests/containers/setup.sh done.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
OURS = "localhost/distribution-py-bench:latest"
OURS_SLIM = "localhost/distribution-py-bench:no-cloud"
GO = "localhost/go-registry-bench:2.8.2"
BASE = "docker.io/library/python:3.11-slim"
GO_BINARY = "/usr/bin/docker-registry"
GO_CONTAINERFILE = """\
FROM scratch
COPY lib64/ /lib64/
COPY lib/ /lib/
COPY docker-registry /bin/registry
COPY config.yml /etc/docker/registry/config.yml
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["/bin/registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
"""
START_TIMEOUT = 60.0


def podman(*args: str, timeout: float = 600) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"podman {' '.join(args)}: {done.stderr}")
    return done.stdout


def build() -> None:
    podman("build", "--format", "docker", "-q", "-t", OURS, str(REPO))
    podman(
        "build", "--format", "docker", "-q", "--build-arg", "EXTRAS=", "-t", OURS_SLIM, str(REPO)
    )
    with tempfile.TemporaryDirectory() as context:
        root = Path(context)
        (root / "Containerfile").write_text(GO_CONTAINERFILE)
        (root / "docker-registry").write_bytes(Path(GO_BINARY).read_bytes())
        (root / "docker-registry").chmod(0o755)
        (root / "config.yml").write_text((REPO / "etc" / "config.yml").read_text())
        for library in _linked_libraries(GO_BINARY):
            target = root / library.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(Path(library).resolve().read_bytes())
            target.chmod(0o755)
        podman("build", "--format", "docker", "-q", "-t", GO, str(root))


def sizes(image: str) -> tuple[int, int]:
    """(uncompressed bytes as stored, compressed bytes as a registry holds the layers)."""
    stored = int(podman("image", "inspect", "--format", "{{.Size}}", image).strip())
    with tempfile.TemporaryDirectory() as layout:
        subprocess.run(
            ["skopeo", "copy", "--quiet", f"containers-storage:{image}", f"oci:{layout}"],
            check=True,
            capture_output=True,
            timeout=600,
        )
        index = json.loads(Path(layout, "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"].split(":")[1]
        manifest = json.loads(Path(layout, "blobs", "sha256", manifest_digest).read_text())
        compressed = sum(layer["size"] for layer in manifest["layers"])
        compressed += manifest["config"]["size"]
    return stored, compressed


def start_and_idle(image: str) -> tuple[float, float, float]:
    """Seconds from ``podman run`` to the first 200 on /v2/; idle PSS and RSS (MiB)."""
    port = _free_port()
    started = time.monotonic()
    name = podman("run", "-d", "-p", f"127.0.0.1:{port}:5000", image).strip()
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() - started > START_TIMEOUT:
                raise SystemExit(f"{image}: no 200 on /v2/ in {START_TIMEOUT} s")
            time.sleep(0.01)
        seconds = time.monotonic() - started
        for _ in range(5):
            requests.get(f"http://127.0.0.1:{port}/v2/", timeout=5)
        time.sleep(3)
        pss = rss = 0
        for pid in podman("top", name, "hpid").split()[1:]:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:]}
            pss += fields["Pss"]
            rss += fields["Rss"]
        return seconds, pss / 1024, rss / 1024
    finally:
        podman("rm", "-f", "-v", "-t", "0", name)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    build()
    images = {"ours": OURS, "ours, no cloud drivers": OURS_SLIM, "Go 2.8.2": GO}
    measured: dict[str, list[tuple[float, float, float]]] = {name: [] for name in images}
    for _ in range(runs):
        for name, image in images.items():
            measured[name].append(start_and_idle(image))
    base = sizes(BASE)
    print(f"base {BASE}: {base[0] / 1e6:.1f} MB stored, {base[1] / 1e6:.1f} MB compressed\n")
    print(
        "| image | stored MB (over base) | compressed MB | run to first 200, s (median, range) "
        "| idle PSS MiB (RSS) |"
    )
    print("| --- | ---: | ---: | --- | --- |")
    for name, image in images.items():
        stored, compressed = sizes(image)
        over = f" (+{(stored - base[0]) / 1e6:.1f})" if image != GO else ""
        times = [m[0] for m in measured[name]]
        pss = statistics.median(m[1] for m in measured[name])
        rss = statistics.median(m[2] for m in measured[name])
        print(
            f"| {name} | {stored / 1e6:.1f}{over} | {compressed / 1e6:.1f} | "
            f"{statistics.median(times):.2f} ({min(times):.2f}-{max(times):.2f}) | "
            f"{pss:.0f} ({rss:.0f}) |"
        )


def _linked_libraries(binary: str) -> list[str]:
    """The loader and libraries ``binary`` links, as ldd names them."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if path.startswith("/"):
            found.append(path)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    os.environ.pop("REGISTRY_AUTH_FILE", None)
    main()
