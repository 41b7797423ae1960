"""Real processes for the end-to-end tests: the Go registry, ours, and the skopeo client.

Both registries read the same config file format, so one config serves either: same storage
root, same ``http.secret``, delete enabled. That is what lets a test stop one and start the
other on the same data, or run both at once as replicas.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.conftest import free_port
from tests.process import ServerProcess

GO_REGISTRY = "/usr/bin/docker-registry"
SKOPEO = "/usr/bin/skopeo"
#: The registries under test, by the name tests are parametrised with.
KINDS = ["go", "python"]
#: Shared by every registry a test starts, so uploads move between them.
SECRET = "e2e-shared-secret"

#: Seconds for any one HTTP request and skopeo call.
REQUEST_TIMEOUT = 30
SKOPEO_TIMEOUT = 90


def config_text(root: Path, port: int, storage: str | None = None) -> str:
    """One configuration both registries accept: filesystem at ``root`` (or the driver entry
    ``storage``, indented under ``storage:``), delete on."""
    storage = (
        storage
        or f"""\
  filesystem:
    rootdirectory: {root}"""
    )
    return f"""\
version: 0.1
log:
  level: warn
storage:
{storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {SECRET}
"""


class Server(ServerProcess):
    """A registry (``go`` or ``python``) in a child process on a free loopback port."""

    def __init__(self, kind: str, root: Path, workdir: Path, storage: str | None = None) -> None:
        self.kind = kind
        self.root = root
        self.port = free_port()
        self.netloc = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True)
        config = workdir / "config.yml"
        config.write_text(config_text(root, self.port, storage))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        if kind == "go":
            # Go 2.8.2's S3 client refuses to start with this machine's AWS_CA_BUNDLE.
            env.pop("AWS_CA_BUNDLE", None)
            command = [GO_REGISTRY, "serve", str(config)]
        else:
            command = [sys.executable, "-m", "distribution", "serve", str(config)]
            env.update(REGISTRY_HTTP_WORKERS="2", REGISTRY_HTTP_THREADS="4")
        super().__init__(command, workdir, env, f"http://{self.netloc}", merge_output=True)
        # Our first worker answers before the second has forked.
        self.wait_ready(serving=lambda: kind == "go" or len(self.serving_pids()) >= 2)

    def __repr__(self) -> str:
        return f"<{self.kind} registry {self.url} pid {self.proc.pid}>"

    def rewrite(self, url: str) -> str:
        """``url`` (absolute or relative, from any registry) aimed at this one."""
        parts = urlsplit(url)
        return urlunsplit(("http", self.netloc, parts.path, parts.query, ""))

    def serving_pids(self) -> set[int]:
        """The processes that accept connections: gunicorn's workers, or the Go process."""
        if self.kind == "go":
            return {self.proc.pid}
        return children(self.proc.pid)

    def stop(self) -> int:
        """SIGTERM, then wait (bounded); a registry that ignores it is killed and fails."""
        return super().stop(strict=True)

    def wait_stopped(self, strict: bool = True) -> int:
        return super().wait_stopped(strict)


#: The ``start_server`` fixture: ``start_server(kind, root=None) -> Server``.
StartServer = Callable[..., Server]


def children(pid: int) -> set[int]:
    """Direct children of ``pid``, from ``/proc/*/stat``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def credentials_file(home: Path) -> str:
    """An empty registry credentials file under ``home`` for skopeo or podman (both refuse
    to start when ``REGISTRY_AUTH_FILE`` names a missing one)."""
    auth = home / "auth.json"
    if not auth.exists():
        auth.write_text('{"auths": {}}')
    return str(auth)


class Skopeo:
    """skopeo 1.9.3 with its own HOME, TMPDIR (blob-info cache, temp files) and credentials
    file per test: without ``XDG_RUNTIME_DIR`` skopeo keeps logins in one file for all of
    root's processes (``/run/containers/0/auth.json``), and a later test's registry on the
    same port would get them."""

    def __init__(self, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
        self.env.pop("XDG_RUNTIME_DIR", None)
        self.env["REGISTRY_AUTH_FILE"] = credentials_file(home)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = [SKOPEO, "--insecure-policy", *args]
        result = subprocess.run(command, env=self.env, capture_output=True, timeout=SKOPEO_TIMEOUT)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(command)} exited {result.returncode}:\n{result.stderr.decode()}"
            )
        return result

    def copy(self, src: str, dest: str, *flags: str) -> None:
        """Copy without changing a byte unless ``flags`` ask for a conversion."""
        preserve = [] if any(f.startswith("--format") for f in flags) else ["--preserve-digests"]
        self.run(
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            *preserve,
            *flags,
            src,
            dest,
        )

    def inspect_raw(self, ref: str) -> bytes:
        return self.run("inspect", "--raw", "--tls-verify=false", ref).stdout

    def inspect(self, ref: str, *flags: str) -> dict:
        return json.loads(self.run(*flags, "inspect", "--tls-verify=false", ref).stdout)

    def list_tags(self, ref: str) -> list[str]:
        return json.loads(self.run("list-tags", "--tls-verify=false", ref).stdout)["Tags"]

    def delete(self, ref: str) -> None:
        self.run("delete", "--tls-verify=false", ref)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def connection_owner(server: Server, client_port: int, timeout: float = 5.0) -> int:
    """The pid of the server process that accepted our connection from ``client_port``.

    The kernel lists the server's end in ``/proc/net/tcp`` (local port = the server's, remote =
    ours) with inode 0 until a process accepts it; the process whose fd table holds that socket
    inode is the one reading the request.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = _accepted_socket_inode(server.port, client_port)
        if inode:
            target = f"socket:[{inode}]"
            for pid in server.serving_pids():
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    try:
                        if os.readlink(fd) == target:
                            return pid
                    except OSError:
                        continue  # closed while we looked
        time.sleep(0.01)
    raise AssertionError(f"no process of {server} holds the connection from port {client_port}")


def _accepted_socket_inode(server_port: int, client_port: int) -> int:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        remote_port = int(fields[2].rsplit(":", 1)[1], 16)
        if (local_port, remote_port) == (server_port, client_port):
            return int(fields[9])
    return 0
