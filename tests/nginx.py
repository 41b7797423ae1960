"""A real nginx (Debian package) for tests, run in the foreground from a temp directory.

``Nginx(directory).start(http_block)`` writes an nginx.conf whose ``http { }`` holds the
caller's ``upstream``/``server`` blocks, keeps every path nginx writes (pid, logs, temp files)
under ``directory``, and waits until every ``listen`` port accepts connections.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT = 20.0

_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
  access_log {dir}/access.log;
  client_body_temp_path {dir}/client_body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
{http_block}
}}
"""


def binary() -> str:
    """The nginx binary; the test command installs it, so its absence is a failure."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if not found:
        raise AssertionError("nginx is not installed: run tests/run.sh, which installs it")
    return found


class Nginx:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def error_log(self) -> str:
        path = self.directory / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, http_block: str) -> Nginx:
        self.directory.mkdir(parents=True, exist_ok=True)
        # As root, workers would drop to "nobody" and fail to read the temp directory.
        user = f"user {getpass.getuser()};" if os.geteuid() == 0 else ""
        conf = self.directory / "nginx.conf"
        conf.write_text(_CONF.format(user=user, dir=self.directory, http_block=http_block))
        self.proc = subprocess.Popen(
            [
                binary(),
                "-c",
                str(conf),
                "-p",
                str(self.directory),
                "-e",
                str(self.directory / "error.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        ports = [int(p) for p in re.findall(r"listen\s+(?:[\d.]+:)?(\d+)", http_block)]
        deadline = time.monotonic() + START_TIMEOUT
        while not all(_accepts(port) for port in ports):
            if self.proc.poll() is not None:
                stderr = (
                    self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                )
                raise AssertionError(f"nginx exited at start-up:\n{stderr}\n{self.error_log}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(
                    f"nginx not listening after {START_TIMEOUT}s:\n{self.error_log}"
                )
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
