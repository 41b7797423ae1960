"""A bounded load test of two registry replicas behind nginx, sharing a root, a secret and Redis.

    .venv/bin/python benchmarks/load.py [--duration 120] [--clients 16] [--workdir DIR]

Starts a real redis-server, two ``registry serve`` processes (gunicorn, 2 workers each) on one
filesystem root with one ``http.secret`` and the Redis blob descriptor cache, and nginx
round-robin in front, all on loopback. Then ``--clients`` threads, each with its own
keep-alive session through nginx, run a mix for ``--duration`` seconds:

- push a blob whole (POST, then PUT with the body), 1 KiB to 1 MiB;
- push a blob in three PATCHes and a PUT (nginx spreads them over both replicas);
- push an image manifest naming a config and a layer pushed before, under a tag;
- pull a blob pushed by any client (GET, checked against its digest), HEAD one, or GET a
  manifest by tag.

Afterwards every pushed blob and manifest is read back through nginx and compared. The run
fails (exit 1) on any 5xx, any other unexpected status, or any difference; it prints
throughput, latency percentiles per operation and the Redis hit ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import free_port
from tests.nginx import Nginx
from tests.process import ServerProcess
from tests.redis_server import RedisServer
from tests.replicas.cluster import replica_config, round_robin

REQUEST_TIMEOUT = 60
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
#: Operation -> relative weight in the mix.
MIX = {
    "push_whole": 25,
    "push_chunked": 10,
    "push_manifest": 10,
    "pull_blob": 35,
    "head_blob": 10,
    "pull_manifest": 10,
}


@dataclass
class Pushed:
    repo: str
    digest: str
    size: int


@dataclass
class Report:
    duration: float
    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    bytes_pushed: int = 0
    bytes_pulled: int = 0
    failures: list[str] = field(default_factory=list)
    server_errors: int = 0
    blobs_checked: int = 0
    manifests_checked: int = 0
    redis_hits: int = 0
    redis_misses: int = 0

    @property
    def operations(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def ok(self) -> bool:
        return not self.failures and self.server_errors == 0

    def lines(self) -> list[str]:
        out = [
            f"{self.clients} clients, {self.duration:.1f} s, {self.operations} operations, "
            f"{self.operations / self.duration:.0f} ops/s",
            f"pushed {_mb(self.bytes_pushed)} ({_mb(self.bytes_pushed / self.duration)}/s), "
            f"pulled {_mb(self.bytes_pulled)} ({_mb(self.bytes_pulled / self.duration)}/s)",
            f"{'operation':<15}{'count':>8}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}",
        ]
        for name in MIX:
            values = sorted(self.latencies.get(name, []))
            if not values:
                continue
            out.append(
                f"{name:<15}{len(values):>8}{_pct(values, 50):>10.1f}{_pct(values, 90):>10.1f}"
                f"{_pct(values, 99):>10.1f}"
            )
        lookups = self.redis_hits + self.redis_misses
        ratio = self.redis_hits / lookups if lookups else 0.0
        out += [
            f"read back: {self.blobs_checked} blobs, {self.manifests_checked} manifests, "
            f"all identical: {not self.failures}",
            f"5xx: {self.server_errors}, failures: {len(self.failures)}",
            f"redis keyspace hits {self.redis_hits}, misses {self.redis_misses} "
            f"(hit ratio {ratio:.2f})",
        ]
        return out + [f"  FAILURE {failure}" for failure in self.failures[:20]]


class Replica(ServerProcess):
    """``registry serve`` with 2 workers of 16 threads, configured as the replica tests do."""

    def __init__(self, workdir: Path, root: Path, redis_addr: str) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "config.yml"
        config.write_text(replica_config(root, redis_addr, port=self.port))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(REGISTRY_HTTP_WORKERS="2", REGISTRY_HTTP_THREADS="16")
        command = [sys.executable, "-m", "distribution", "serve", str(config)]
        super().__init__(command, workdir, env, f"http://127.0.0.1:{self.port}", True)
        self.wait_ready()


class Load:
    """The shared state of one run: what was pushed, and what went wrong."""

    def __init__(self, base: str, duration: float, clients: int) -> None:
        self.base = base
        self.report = Report(duration, clients)
        self.deadline = time.monotonic() + duration
        self.lock = threading.Lock()
        self.blobs: list[Pushed] = []
        self.manifests: dict[tuple[str, str], bytes] = {}

    def client(self, number: int) -> None:
        rng = random.Random(number)
        session = requests.Session()
        repo = f"load/client-{number}"
        names, weights = list(MIX), list(MIX.values())
        while time.monotonic() < self.deadline:
            operation = rng.choices(names, weights)[0]
            started = time.monotonic()
            try:
                done = getattr(self, operation)(session, rng, repo)
            except requests.RequestException as error:
                self.fail(f"{operation}: {error!r}")
                continue
            if done:
                with self.lock:
                    self.report.latencies[operation].append(time.monotonic() - started)

    # Operations: each returns False when there was nothing to do yet.

    def push_whole(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        data = rng.randbytes(rng.randint(1, 1024) * 1024)
        digest = _sha256(data)
        response = session.post(f"{self.base}/v2/{repo}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
        if not self.expect(response, 202, "POST upload"):
            return True
        response = session.put(
            _with_digest(urljoin(self.base, response.headers["Location"]), digest),
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            timeout=REQUEST_TIMEOUT,
        )
        if self.expect(response, 201, "PUT upload"):
            self.pushed(repo, digest, data)
        return True

    def push_chunked(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        chunks = [rng.randbytes(rng.randint(16, 256) * 1024) for _ in range(3)]
        data = b"".join(chunks)
        response = session.post(f"{self.base}/v2/{repo}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
        if not self.expect(response, 202, "POST upload"):
            return True
        offset = 0
        for chunk in chunks:
            response = session.patch(
                urljoin(self.base, response.headers["Location"]),
                data=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                },
                timeout=REQUEST_TIMEOUT,
            )
            if not self.expect(response, 202, "PATCH"):
                return True
            offset += len(chunk)
        digest = _sha256(data)
        response = session.put(
            _with_digest(urljoin(self.base, response.headers["Location"]), digest),
            timeout=REQUEST_TIMEOUT,
        )
        if self.expect(response, 201, "PUT chunked"):
            self.pushed(repo, digest, data)
        return True

    def push_manifest(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        with self.lock:
            own = [b for b in self.blobs if b.repo == repo]
        if len(own) < 2:
            return False
        config, layer = rng.sample(own, 2)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer.digest, "size": layer.size}],
            }
        ).encode()
        tag = f"t{rng.randint(0, 9)}"
        response = session.put(
            f"{self.base}/v2/{repo}/manifests/{tag}",
            data=body,
            headers={"Content-Type": OCI_MANIFEST},
            timeout=REQUEST_TIMEOUT,
        )
        if self.expect(response, 201, "PUT manifest"):
            with self.lock:
                self.manifests[(repo, tag)] = body
                self.report.bytes_pushed += len(body)
        return True

    def pull_blob(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        blob = self.any_blob(rng)
        if blob is None:
            return False
        response = session.get(
            f"{self.base}/v2/{blob.repo}/blobs/{blob.digest}", timeout=REQUEST_TIMEOUT
        )
        if self.expect(response, 200, "GET blob"):
            if _sha256(response.content) != blob.digest:
                self.fail(f"GET blob {blob.repo}@{blob.digest}: different content")
            with self.lock:
                self.report.bytes_pulled += len(response.content)
        return True

    def head_blob(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        blob = self.any_blob(rng)
        if blob is None:
            return False
        response = session.head(
            f"{self.base}/v2/{blob.repo}/blobs/{blob.digest}", timeout=REQUEST_TIMEOUT
        )
        ok = self.expect(response, 200, "HEAD blob")
        if ok and response.headers.get("Content-Length") != str(blob.size):
            self.fail(f"HEAD blob {blob.repo}@{blob.digest}: wrong Content-Length")
        return True

    def pull_manifest(self, session: requests.Session, rng: random.Random, repo: str) -> bool:
        with self.lock:
            tags = [key for key in self.manifests if key[0] == repo]
        if not tags:
            return False
        name, tag = rng.choice(tags)
        response = session.get(
            f"{self.base}/v2/{name}/manifests/{tag}",
            headers={"Accept": OCI_MANIFEST},
            timeout=REQUEST_TIMEOUT,
        )
        if self.expect(response, 200, "GET manifest"):
            with self.lock:
                expected = self.manifests[(name, tag)]
            # Only this client pushes to its repository, so the tag holds the last body.
            if response.content != expected:
                self.fail(f"GET manifest {name}:{tag}: different content")
        return True

    # Bookkeeping.

    def any_blob(self, rng: random.Random) -> Pushed | None:
        with self.lock:
            return rng.choice(self.blobs) if self.blobs else None

    def pushed(self, repo: str, digest: str, data: bytes) -> None:
        with self.lock:
            self.blobs.append(Pushed(repo, digest, len(data)))
            self.report.bytes_pushed += len(data)

    def expect(self, response: requests.Response, status: int, what: str) -> bool:
        if response.status_code == status:
            return True
        if response.status_code >= 500:
            with self.lock:
                self.report.server_errors += 1
        self.fail(f"{what} {response.request.url}: {response.status_code} {response.text[:200]}")
        return False

    def fail(self, message: str) -> None:
        with self.lock:
            self.report.failures.append(message)

    def check_all(self) -> None:
        """Every pushed blob and the last manifest of every tag, read back through nginx."""
        session = requests.Session()
        for blob in self.blobs:
            response = session.get(
                f"{self.base}/v2/{blob.repo}/blobs/{blob.digest}", timeout=REQUEST_TIMEOUT
            )
            if (
                self.expect(response, 200, "read back blob")
                and _sha256(response.content) != blob.digest
            ):
                self.fail(f"read back {blob.repo}@{blob.digest}: different content")
            self.report.blobs_checked += 1
        for (name, tag), body in self.manifests.items():
            response = session.get(
                f"{self.base}/v2/{name}/manifests/{tag}",
                headers={"Accept": OCI_MANIFEST},
                timeout=REQUEST_TIMEOUT,
            )
            if self.expect(response, 200, "read back manifest") and response.content != body:
                self.fail(f"read back {name}:{tag}: different content")
            self.report.manifests_checked += 1


def run(duration: float, clients: int, workdir: Path) -> Report:
    """Start Redis, two replicas and nginx under ``workdir``, run the load, stop them all."""
    redis = RedisServer(workdir / "redis").start()
    replicas: list[Replica] = []
    nginx = None
    try:
        root = workdir / "root"
        replicas = [Replica(workdir / f"replica-{i}", root, redis.addr) for i in range(2)]
        port = free_port()
        nginx = Nginx(workdir / "nginx").start(round_robin(replicas, port))
        base = f"http://127.0.0.1:{port}"
        before = redis.client().info("stats")
        load = Load(base, duration, clients)
        threads = [threading.Thread(target=load.client, args=(i,)) for i in range(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        load.report.duration = time.monotonic() - started
        after = redis.client().info("stats")
        load.report.redis_hits = after["keyspace_hits"] - before["keyspace_hits"]
        load.report.redis_misses = after["keyspace_misses"] - before["keyspace_misses"]
        load.check_all()
        for replica in replicas:
            if "Traceback" in replica.log:
                load.fail(f"traceback in {replica.stderr_path}")
        return load.report
    finally:
        if nginx is not None:
            nginx.stop()
        for replica in replicas:
            replica.stop()
        redis.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds (at most 120)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    duration = min(args.duration, 120.0)
    if args.workdir is None:
        with tempfile.TemporaryDirectory(prefix="registry-load-") as directory:
            report = run(duration, args.clients, Path(directory))
    else:
        report = run(duration, args.clients, args.workdir)
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _with_digest(url: str, digest: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}digest={digest}"


def _mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def _pct(values: list[float], percent: int) -> float:
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000


if __name__ == "__main__":
    sys.exit(main())
