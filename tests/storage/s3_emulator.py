"""Two independent S3 implementations for the tests: moto's standalone server and Ceph's RADOS
Gateway.

* **moto** (PyPI ``moto[server]``): a Python emulator keeping objects in its own memory. It
  checks no signature, so it cannot refuse a wrong key, and everything is gone when it stops.
* **Ceph RGW** (Debian ``radosgw``, ``ceph-mon``, ``ceph-osd``): the gateway many S3 users run
  in production, on a one-monitor, one-OSD cluster with its objects in memory (``memstore``),
  cephx off, all on 127.0.0.1. It checks signatures, so a wrong key is refused, and the gateway
  can be stopped and started again while the cluster keeps the objects, as a fault test needs.

Every daemon runs in the foreground under this process, logs to a file in its temp dir, and
is stopped by its own pid.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ports import free_port

BUCKET = "registry"
#: Any key works on moto; Ceph's test user is created with this pair.
ACCESS_KEY = "REGISTRYTESTKEY"
SECRET_KEY = "registry-test-secret-key"
REGION = "us-east-1"
START_TIMEOUT = 120.0
#: An OSD is up within seconds when all is well; a loaded CI machine gets a minute.
OSD_TIMEOUT = 60.0


def client(url: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):  # type: ignore[no-untyped-def]
    """A boto3 client for the server at ``url``, for tests to look at the bucket directly."""
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"mode": "standard", "total_max_attempts": 2},
    )
    return boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=config,
    )


def parameters(url: str, **overrides: object) -> dict[str, object]:
    """The ``storage.s3`` section for the server at ``url``."""
    return {
        "region": REGION,
        "regionendpoint": url,
        "bucket": BUCKET,
        "accesskey": ACCESS_KEY,
        "secretkey": SECRET_KEY,
        "rootdirectory": "/registry",
        **overrides,
    }


class Moto:
    """moto's server on a free port; stopping it loses every object."""

    name = "moto"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        log = self.root / "moto.log"
        executable = Path(sys.executable).parent / "moto_server"
        with open(log, "ab") as out:
            self._server = subprocess.Popen(
                [str(executable), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_for_http(self.url, self._server, log)
        if self._server.poll() is not None:  # what answered was another process's server
            pytest.fail(f"moto exited at start (port {self.port} taken?):\n{log.read_text()}")
        client(self.url).create_bucket(Bucket=BUCKET)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            _stop(self._server)
            self._server = None


class Ceph:
    """A one-node Ceph cluster and its RADOS Gateway; :meth:`stop_gateway` and
    :meth:`start_gateway` take only the gateway away and back (the objects stay)."""

    name = "ceph"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "ceph.conf"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._daemons: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> str:
        """Make and start the cluster, the gateway, the test user and bucket; the URL.

        An OSD that does not come up in time, or a monitor that refuses a command while it
        starts (both seen when another cluster ran on the machine), is given one more try on a
        fresh cluster.
        """
        for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool"):
            if shutil.which(tool) is None:
                pytest.fail(f"{tool} is not installed (apt-get install radosgw ceph-mon ceph-osd)")
        for attempt in range(2):
            try:
                up = self._start_cluster()
            except pytest.fail.Exception:
                if attempt:
                    raise
                up = False
            if up:
                break
            self.stop()
            if attempt:
                log = (self.root / "log" / "osd.0.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"the Ceph OSD did not come up:\n{log}")
            for made in ("mon", "osd", "monmap", "keyring"):
                path = self.root / made
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        self.start_gateway()
        self._run("radosgw-admin", "-c", str(self.conf), "user", "create", "--uid", "registry",
                  "--display-name", "registry", "--access-key", ACCESS_KEY,
                  "--secret", SECRET_KEY)  # fmt: skip
        client(self.url).create_bucket(Bucket=BUCKET)
        return self.url

    def _start_cluster(self) -> bool:
        """A monitor and an OSD; whether the OSD came up."""
        self._configure()
        self._run("monmaptool", "--create", "--addv", "a", f"[v1:127.0.0.1:{self._mon_port}]",
                  "--fsid", self._fsid, str(self.root / "monmap"))  # fmt: skip
        self._run("ceph-mon", "-c", str(self.conf), "--mkfs", "-i", "a",
                  "--monmap", str(self.root / "monmap"))  # fmt: skip
        self._daemon("mon", "ceph-mon", "-f", "-c", str(self.conf), "-i", "a")
        osd = str(uuid.uuid4())
        self._run("ceph", "-c", str(self.conf), "--connect-timeout", "30", "osd", "create", osd)
        self._run("ceph-osd", "-c", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd)
        # Placed here, not by the booting OSD: its own request can race its first monitor map
        # (Pacific sends it with a zero fsid, the monitor refuses, the OSD never comes up).
        for crush in (["add-bucket", "localhost", "host"], ["move", "localhost", "root=default"],
                      ["add", "osd.0", "1.0", "host=localhost"]):  # fmt: skip
            self._run("ceph", "-c", str(self.conf), "osd", "crush", *crush)
        self._daemon("osd", "ceph-osd", "-f", "-c", str(self.conf), "-i", "0")
        deadline = time.monotonic() + OSD_TIMEOUT
        while time.monotonic() < deadline:
            command = ["ceph", "-c", str(self.conf), "--connect-timeout", "10", "osd", "stat"]
            status = subprocess.run(
                [*command, "-f", "json"],
                capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if status.returncode == 0 and json.loads(status.stdout).get("num_up_osds") == 1:
                return True
            time.sleep(0.5)
        return False

    def start_gateway(self) -> None:
        self._daemon("rgw", "radosgw", "-f", "-c", str(self.conf), "-n", "client.rgw")
        _wait_for_http(self.url, self._daemons["rgw"], self.root / "log" / "client.rgw.log")

    def stop_gateway(self) -> None:
        _stop(self._daemons.pop("rgw"))

    def stop(self) -> None:
        for name in ("rgw", "osd", "mon"):
            if name in self._daemons:
                _stop(self._daemons.pop(name))

    def _configure(self) -> None:
        self._fsid = str(uuid.uuid4())
        self._mon_port = free_port()
        # Daemons of another cluster on this machine keep out of this one's port range.
        self._ports = random.randrange(20000, 30000, 100)
        for sub in ("run", "log", "mon/ceph-a", "osd/ceph-0"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        root = self.root
        self.conf.write_text(
            f"""\
[global]
fsid = {self._fsid}
mon host = v1:127.0.0.1:{self._mon_port}
ms bind msgr2 = false
ms bind ipv6 = false
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind port min = {self._ports}
ms bind port max = {self._ports + 99}
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 1
osd pool default pgp num = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
# The monitor commits each change at once, not in 1-second batches: the cluster and gateway
# start in 3-4 s instead of 16-17 (the gateway makes its pools one change at a time).
paxos propose interval = 0.01
paxos min wait = 0.001
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 0
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = {8 << 30}
run dir = {root}/run
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
log file = {root}/log/$name.log
mon data = {root}/mon/$cluster-$id
osd data = {root}/osd/$cluster-$id
keyring = {root}/keyring
[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{self.port} tcp_nodelay=1
# Free deleted objects' data within seconds, not hours: the objects live in memory.
rgw gc obj min wait = 1
rgw gc processor period = 5
"""
        )
        self._run("ceph-authtool", "--create-keyring", str(root / "keyring"), "--gen-key",
                  "-n", "mon.", "--cap", "mon", "allow *")  # fmt: skip

    def _run(self, *command: str) -> None:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=START_TIMEOUT, stdin=subprocess.DEVNULL
        )
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def _daemon(self, name: str, *command: str) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as out:
            self._daemons[name] = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(15)


def _wait_for_http(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # any HTTP answer: it serves
        except OSError:
            time.sleep(0.1)
    _stop(server)
    text = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    pytest.fail(f"S3 server did not start at {url}:\n{text}")


@contextlib.contextmanager
def running(kind: type[Moto] | type[Ceph], root: Path) -> Iterator[Moto | Ceph]:
    server = kind(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running moto server whose test bucket exists."""
    with running(Moto, tmp_path_factory.mktemp("moto")) as server:
        yield server.url


@pytest.fixture(scope="session")
def ceph_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a running Ceph RADOS Gateway whose test user and bucket exist."""
    # A short path: the daemons' unix sockets must fit in 107 bytes.
    root = Path(tmp_path_factory.mktemp("ceph"))
    with running(Ceph, root) as server:
        yield server.url
