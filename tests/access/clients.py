"""Clients for the end-to-end tests of the access rules: podman, and a plain HTTP pusher."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests

from tests.e2e.harness import credentials_file
from tests.e2e.images import Image

PODMAN = "/usr/bin/podman"
TIMEOUT = 90


class Podman:
    """podman with its own image store (vfs, no privileges needed), HOME, TMPDIR and
    credentials file (see :class:`tests.e2e.harness.Skopeo`)."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        # podman refuses a run root path longer than 50 characters.
        self.runroot = tempfile.mkdtemp(prefix="podman-run-")
        self.flags = [
            f"--root={home / 'storage'}",
            f"--runroot={self.runroot}",
            "--storage-driver=vfs",
        ]
        self.env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
        for name in ("XDG_RUNTIME_DIR", "CONTAINERS_CONF"):
            self.env.pop(name, None)
        self.env["REGISTRY_AUTH_FILE"] = credentials_file(home)

    def close(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [PODMAN, *self.flags, *args]
        result = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=TIMEOUT
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    def load(self, layout: str) -> str:
        """Pull ``oci:DIR:TAG`` into the local store; the image's ID."""
        return self.run("pull", "-q", layout).stdout.strip().splitlines()[-1]

    def push(self, image: str, ref: str, creds: str | None, check: bool = True):
        flags = ["--creds", creds] if creds else []
        return self.run("push", "--tls-verify=false", *flags, image, f"docker://{ref}", check=check)

    def pull(self, ref: str, creds: str | None = None, check: bool = True):
        flags = ["--creds", creds] if creds else []
        return self.run("pull", "-q", "--tls-verify=false", *flags, ref, check=check)


def push_image(session: requests.Session, base: str, name: str, tag: str, img: Image) -> str:
    """Push ``img`` to ``name:tag`` over plain HTTP (monolithic blob uploads); its digest."""
    for digest, data in img.blobs.items():
        if session.head(f"{base}/v2/{name}/blobs/{digest}", timeout=TIMEOUT).status_code == 200:
            continue
        response = session.post(
            f"{base}/v2/{name}/blobs/uploads/",
            params={"digest": digest},
            data=data,
            timeout=TIMEOUT,
        )
        assert response.status_code == 201, response.text
    response = session.put(
        f"{base}/v2/{name}/manifests/{tag}",
        data=img.manifest,
        headers={"Content-Type": img.media_type},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return response.headers["Docker-Content-Digest"]
