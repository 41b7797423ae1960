"""podman, as the deployment guide uses docker: build the image, run containers, push and pull.

Everything goes through the ``podman`` command (and ``podman-compose``), as a user's shell
would. Containers publish their ports on 127.0.0.1 only, at free ports.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "tests" / "containers" / "setup.sh"
#: Seconds a podman command may take (a build: longer).
PODMAN_TIMEOUT = 120
BUILD_TIMEOUT = 600
#: Seconds a registry container gets to answer its first request.
START_TIMEOUT = 60
#: Every container, image and volume the tests make starts with this.
PREFIX = "distribution-py-test"


def podman(
    *args: str, check: bool = True, timeout: float = PODMAN_TIMEOUT, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS``; a failure shows the command and what podman said."""
    done = subprocess.run(
        ["podman", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
        )
    return done


def ensure_podman() -> None:
    """Make podman able to run containers here (tests/containers/setup.sh), or fail loudly."""
    assert shutil.which("bash"), "bash is needed to run tests/containers/setup.sh"
    done = subprocess.run(
        ["bash", str(SETUP)], capture_output=True, text=True, timeout=BUILD_TIMEOUT
    )
    assert done.returncode == 0, f"{SETUP} failed:\n{done.stderr}{done.stdout}"


def build_image(tag: str) -> float:
    """``podman build`` the repository's Dockerfile as ``tag``; returns the seconds it took.

    Docker's image format keeps the ``HEALTHCHECK`` (OCI's has none). A rebuild's previous image
    is removed, so runs do not pile up images.
    """
    before = podman("image", "inspect", "--format", "{{.Id}}", tag, check=False).stdout.strip()
    revision = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    started = time.monotonic()
    podman(
        *("build", "--format", "docker", "--layers", "-t", tag),
        *("--build-arg", f"REVISION={revision or 'unknown'}", str(REPO)),
        timeout=BUILD_TIMEOUT,
    )
    seconds = time.monotonic() - started
    after = podman("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    if before and before != after:
        podman("rmi", before, check=False)
    return seconds


def unique(kind: str) -> str:
    return f"{PREFIX}-{kind}-{uuid.uuid4().hex[:8]}"


@dataclass
class Container:
    """A container started with ``podman run -d``; removed (with its volumes) by ``remove``."""

    name: str
    url: str = ""
    removed: bool = field(default=False, repr=False)

    @classmethod
    def run(cls, image: str, *args: str, options: Sequence[str] = (), url: str = "") -> Container:
        """``podman run -d --name NAME OPTIONS IMAGE ARGS``."""
        name = unique("registry")
        podman("run", "-d", "--name", name, *options, image, *args)
        return cls(name, url)

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def logs(self) -> str:
        done = podman("logs", self.name, check=False)
        return done.stdout + done.stderr

    def exec(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *command, check=check)

    def status_of_pid_1(self) -> dict[str, str]:
        """``/proc/1/status`` inside: the uid, gid and capabilities the registry runs with."""
        text = self.exec("cat", "/proc/1/status").stdout
        return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)

    def wait_ready(self, status: int = 200, verify: str | bool = False, path: str = "/v2/") -> None:
        """Wait until ``GET path`` answers ``status``; a container that exits fails at once."""
        deadline = time.monotonic() + START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                answer = requests.get(self.url + path, timeout=2, verify=verify)
                if answer.status_code == status:
                    return
                last = f"answered {answer.status_code}"
            except requests.RequestException as err:
                last = str(err)
            if self.inspect("{{.State.Running}}") != "true":
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready ({last}):\n{self.logs()}")

    def stop(self, timeout: int = 10) -> tuple[int, float]:
        """``podman stop -t TIMEOUT``: the exit code and the seconds the stop took."""
        started = time.monotonic()
        podman("stop", "-t", str(timeout), self.name, timeout=timeout + 60)
        return int(self.inspect("{{.State.ExitCode}}")), time.monotonic() - started

    def start(self) -> None:
        podman("start", self.name)

    def remove(self) -> None:
        if not self.removed:
            podman("rm", "-f", "-v", "-t", "0", self.name, check=False)
            self.removed = True


def tiny_image(directory: Path, name: str) -> str:
    """A one-file image in local storage, made by ``podman import`` (nothing to pull here)."""
    payload = directory / "payload"
    payload.mkdir(parents=True)
    (payload / "hello.txt").write_text(f"hello from {name}\n")
    archive = directory / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(payload / "hello.txt", arcname="hello.txt")
    podman("import", "--change", 'CMD ["/hello.txt"]', str(archive), name)
    return name


class Client:
    """podman as the guide's docker client, with its own auth file; ``ca`` trusts a registry's
    certificate (``--cert-dir``), else plain HTTP (``--tls-verify=false``)."""

    def __init__(self, home: Path, ca: Path | None = None) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.authfile = home / "auth.json"
        self.authfile.write_text("{}")
        self.tls: list[str] = ["--tls-verify=false"]
        if ca is not None:
            certs = home / "certs"
            certs.mkdir()
            shutil.copy(ca, certs / "ca.crt")
            self.tls = [f"--cert-dir={certs}"]

    def login(self, registry: str, user: str, password: str, check: bool = True):
        return podman(
            *("login", f"--authfile={self.authfile}", *self.tls, "--username", user),
            "--password-stdin",
            registry,
            stdin=password.encode(),
            check=check,
        )

    def push(self, local: str, remote: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("push", f"--authfile={self.authfile}", *self.tls, local, remote, check=check)

    def pull(self, remote: str, check: bool = True) -> subprocess.CompletedProcess:
        return podman("pull", f"--authfile={self.authfile}", *self.tls, remote, check=check)

    def download(self, remote: str, layout: Path) -> dict:
        """Every blob of ``remote`` fetched and checked against its digest (podman's pull
        skips blobs it already holds): skopeo copies it to an OCI layout; its manifest."""
        tls = [option.replace("--", "--src-", 1) for option in self.tls]
        done = subprocess.run(
            [
                *("skopeo", "--insecure-policy", "copy", f"--src-authfile={self.authfile}"),
                *tls,
                f"docker://{remote}",
                f"oci:{layout}",
            ],
            capture_output=True,
            text=True,
            timeout=PODMAN_TIMEOUT,
        )
        assert done.returncode == 0, f"skopeo copy {remote} failed:\n{done.stderr}"
        index = json.loads((layout / "index.json").read_text())
        digest = index["manifests"][0]["digest"].split(":", 1)[1]
        return json.loads((layout / "blobs" / "sha256" / digest).read_text())

    def digest(self, local: str) -> str:
        return podman("image", "inspect", "--format", "{{.Digest}}", local).stdout.strip()


def labels(image: str) -> dict[str, str]:
    return json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", image).stdout)
