"""A registry (ours or Go's) in a child process: output to files, ready once ``/v2/`` answers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import requests

#: Seconds for start-up and for shutdown.
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


class ServerProcess:
    """``command`` run in ``workdir``; stdout to ``stdout.log``, stderr to ``stderr.log``.

    With ``merge_output`` both go to one ``server.log``, in the order they were written.
    """

    def __init__(
        self,
        command: Sequence[str],
        workdir: Path,
        env: dict[str, str],
        url: str,
        merge_output: bool = False,
    ) -> None:
        self.url = url
        workdir.mkdir(parents=True, exist_ok=True)
        if merge_output:
            self.stdout_path = self.stderr_path = workdir / "server.log"
        else:
            self.stdout_path = workdir / "stdout.log"
            self.stderr_path = workdir / "stderr.log"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                list(command),
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT if merge_output else err,
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} pid {self.proc.pid}>"

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def log(self) -> str:
        """Everything the process wrote: stderr carries the registries' logs."""
        if self.stdout_path == self.stderr_path:
            return self.stderr
        return self.stderr + self.stdout

    def wait_ready(
        self, verify: str | bool = True, serving: Callable[[], bool] = lambda: True
    ) -> None:
        """Wait until ``GET /v2/`` gets any answer and ``serving()`` agrees; fail loudly."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self} exited {self.proc.returncode}:\n{self.log}")
            try:
                requests.get(f"{self.url}/v2/", timeout=1, verify=verify)
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine is slow
                time.sleep(0.05)
                continue
            if serving():
                return
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise AssertionError(f"{self} not ready after {START_TIMEOUT}s:\n{self.log}")

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, strict: bool = False) -> int:
        """Wait for the exit (bounded); kill a process that ignores SIGTERM, failing if
        ``strict``."""
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            if strict:
                raise AssertionError(f"{self} ignored SIGTERM for {STOP_TIMEOUT}s") from None
            return self.proc.returncode

    def stop(self, strict: bool = False) -> int:
        """SIGTERM, then wait; the exit status."""
        self.terminate()
        return self.wait_stopped(strict)


def resident_kib(pid: int, library: str) -> int:
    """KiB of the mappings of ``library`` (a part of its path) resident in process ``pid``."""
    kib, current = 0, ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        fields = line.split()
        if not fields[0].endswith(":"):  # a mapping's header: start-end perms ... path
            current = fields[5] if len(fields) >= 6 else ""
        elif fields[0] == "Rss:" and library in current:
            kib += int(fields[1])
    return kib
