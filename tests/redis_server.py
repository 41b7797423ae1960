"""A real ``redis-server`` (Debian package) on a free loopback port, for tests.

``RedisServer.start(directory)`` runs one without persistence; ``stop()`` and ``start()`` again
on the same object bring it back on the same port, which is how tests kill Redis mid-run.
:func:`start_sentinel` and :func:`start_cluster` build the other two topologies distribution v3
reaches through ``redis.mastername`` and ``redis.addrs``, from the same binary.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import free_port

START_TIMEOUT = 10.0


class RedisServer:
    def __init__(self, directory: Path, args: Sequence[str] = ()) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("redis-server is not installed: run tests/run.sh")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        # No retries: redis-py's default backs off for seconds when the server is down.
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=5, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [
                self.binary,
                *self.args,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited {self.proc.returncode}")
            try:
                self.client().ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"redis-server not ready after {START_TIMEOUT}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=START_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def start_sentinel(directory: Path, master: RedisServer, name: str) -> RedisServer:
    """A Sentinel (``redis-server --sentinel``) monitoring ``master`` as ``name``."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "sentinel.conf"  # Sentinel rewrites its config file: one of its own
    config.write_text(f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n")
    sentinel = RedisServer(directory, [str(config), "--sentinel"]).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if sentinel.client().execute_command("SENTINEL", "MASTERS"):
            return sentinel
        time.sleep(0.05)
    sentinel.stop()
    raise AssertionError(f"sentinel does not monitor {name} after {START_TIMEOUT}s")


def start_cluster(directory: Path, size: int = 3) -> list[RedisServer]:
    """``size`` masters sharing the 16384 slots, joined with ``redis-cli --cluster create``."""
    nodes = [
        RedisServer(
            directory / f"node-{i}",
            # The bus port defaults to port + 10000, too high for most free ports.
            [
                *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                *("--cluster-port", str(free_port())),
            ],
        ).start()
        for i in range(size)
    ]
    create = subprocess.run(
        [
            *("redis-cli", "--cluster", "create", *(node.addr for node in nodes)),
            *("--cluster-replicas", "0", "--cluster-yes"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if create.returncode != 0:
        for node in nodes:
            node.stop()
        raise AssertionError(f"redis-cli --cluster create failed:\n{create.stdout}{create.stderr}")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if all(n.client().cluster("info")["cluster_state"] == "ok" for n in nodes):
            return nodes
        time.sleep(0.1)
    for node in nodes:
        node.stop()
    raise AssertionError(f"redis cluster not ok after {START_TIMEOUT}s")
