"""Our registry and the Go reference on one S3 server (Ceph's RADOS Gateway), interleaved.

    flock /work/notes/bench.lock .venv/bin/python benchmarks/s3.py [--runs 3] [--redirect]

Starts a one-node Ceph cluster and its gateway (as the tests do, objects in memory), then
RUNS times, for the Go registry (Debian ``docker-registry`` 2.8.2) and ours (``registry
serve``, gunicorn, 2 workers x 16 threads) in turn, each on a fresh root directory of one
bucket with the drivers' defaults (10 MiB parts): ``../shared/bench/bench.py --phases
push,pull`` (1 GiB monolithic PUT, 1 GiB in 16 MiB PATCHes, 3 GETs), the server's CPU-s per
GiB, then the root directory is deleted. Without ``--redirect`` both registries serve blob
GETs themselves (``storage.redirect.disable: true``), so the pull measures the registry;
with it, the client follows a presigned URL to the gateway and the pull measures Ceph.
Then, for each side, 4 concurrent uploads of 256 MiB in 16 MiB PATCHes, with the server's
peak resident memory above its idle size per upload. Prints the runs and ``ratio.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from tests.conftest import free_port  # noqa: E402
from tests.e2e.harness import children  # noqa: E402
from tests.storage import s3_emulator as s3  # noqa: E402

#: ../shared/bench from the main checkout; set BENCH_DIR from a worktree.
BENCH = Path(os.environ.get("BENCH_DIR", HERE.parent / "shared" / "bench"))
MiB = 1 << 20
CONCURRENT = 4
CONCURRENT_SIZE = 256 * MiB
PATCH = 16 * MiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redirect", action="store_true", help="pull through presigned URLs")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="s3-bench-"))
    ceph = s3.Ceph(work / "ceph")
    (work / "ceph").mkdir(parents=True, exist_ok=True)
    results = work / "results.jsonl"
    labels: dict[str, list[str]] = {"go": [], "ours": []}
    memory: dict[str, list[float]] = {"go": [], "ours": []}
    try:
        ceph.start()
        print(f"ceph gateway {ceph.url}, work dir {work}", flush=True)
        for run in range(1, args.runs + 1):
            for side in ("go", "ours"):
                label = f"{side}{run}"
                with Registry(side, ceph.url, work / label, not args.redirect) as registry:
                    _bench(registry, label, results, work / f"{label}.txt")
                    if run == 1:
                        memory[side].append(_concurrent_uploads(registry))
                labels[side].append(label)
    finally:
        ceph.stop()
    for line in results.read_text().splitlines():
        result = json.loads(line.split(" ", 1)[1])
        gib, cpu = result["blob_size"] / 2**30, result.get("server", {}).get("cpu_s", {})
        figures = [
            f"{phase} {result.get(f'{phase}_mbps')} MB/s ({cpu.get(phase, 0) / gib:.2f} CPU-s/GiB)"
            for phase in ("push_mono", "push_chunked", "pull")
        ]
        print(result["label"], *figures, sep="  ")
    for side, peaks in memory.items():
        print(f"{side}: {CONCURRENT} concurrent 16 MiB-PATCH uploads, peak RSS above idle per "
              f"upload: {', '.join(f'{p:.1f}' for p in peaks)} MiB")  # fmt: skip
    subprocess.run(
        [sys.executable, str(BENCH / "ratio.py"), str(results), ",".join(labels["go"]),
         ",".join(labels["ours"]), "--min-push", "1.5", "--min-pull", "1.0"],
        check=False,
    )  # fmt: skip
    return 0


class Registry:
    """A registry of ``kind`` on the bucket, below its own root directory."""

    def __init__(self, kind: str, endpoint: str, workdir: Path, no_redirect: bool) -> None:
        self.kind = kind
        self.endpoint = endpoint
        self.root = workdir.name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True)
        self.config = workdir / "config.yml"
        self.config.write_text(
            f"""\
version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage:
  s3:
    region: {s3.REGION}
    regionendpoint: {endpoint}
    bucket: {s3.BUCKET}
    accesskey: {s3.ACCESS_KEY}
    secretkey: {s3.SECRET_KEY}
    rootdirectory: /{self.root}
  cache: {{blobdescriptor: inmemory}}
  delete: {{enabled: true}}
  redirect: {{disable: {str(no_redirect).lower()}}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http: {{addr: "127.0.0.1:{self.port}", secret: bench-secret}}
"""
        )
        self.log = workdir / "server.log"

    def __enter__(self) -> Registry:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        if self.kind == "go":
            env.pop("AWS_CA_BUNDLE", None)  # Go 2.8.2's S3 client refuses to start with it
            command = ["/usr/bin/docker-registry", "serve", str(self.config)]
        else:
            env.update(REGISTRY_HTTP_WORKERS="2", REGISTRY_HTTP_THREADS="16")
            command = [sys.executable, "-m", "distribution", "serve", str(self.config)]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/v2/", timeout=1)
                if self.kind == "go" or len(children(self.process.pid)) >= 2:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.kind} registry did not start:\n{self.log.read_text()}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(60)
        bucket = s3.client(self.endpoint)
        for page in bucket.get_paginator("list_objects_v2").paginate(
            Bucket=s3.BUCKET, Prefix=f"{self.root}/"
        ):
            keys = [{"Key": o["Key"]} for o in page.get("Contents") or []]
            if keys:
                bucket.delete_objects(Bucket=s3.BUCKET, Delete={"Objects": keys, "Quiet": True})

    def pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]


def _bench(registry: Registry, label: str, results: Path, output: Path) -> None:
    command = [
        sys.executable, str(BENCH / "bench.py"), "--url", registry.url, "--phases", "push,pull",
        "--pid", str(registry.process.pid), "--label", label, "--json-out", str(results),
    ]  # fmt: skip
    if registry.kind == "ours":
        command.append("--pid-children")
    with open(output, "w") as out:
        subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=1800, check=True)
    print(f"{label} done", flush=True)


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _concurrent_uploads(registry: Registry) -> float:
    """Peak RSS above idle, per upload, while CONCURRENT chunked uploads run at once."""
    idle = _rss_mib(registry.pids())
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mib(registry.pids()))
            time.sleep(0.05)

    def upload(seed: int) -> None:
        session = requests.Session()
        piece = os.urandom(PATCH)
        digest = hashlib.sha256()
        response = session.post(f"{registry.url}/v2/bench/mem/blobs/uploads/", timeout=300)
        location = response.headers["Location"]
        for offset in range(0, CONCURRENT_SIZE, PATCH):
            chunk = offset.to_bytes(8, "big") + seed.to_bytes(8, "big") + piece[16:]
            digest.update(chunk)
            response = session.patch(
                location if location.startswith("http") else registry.url + location,
                data=chunk,
                headers={"Content-Range": f"{offset}-{offset + PATCH - 1}",
                         "Content-Type": "application/octet-stream"},
                timeout=300,
            )  # fmt: skip
            assert response.status_code == 202, response.text
            location = response.headers["Location"]
        url = location if location.startswith("http") else registry.url + location
        response = session.put(f"{url}&digest=sha256:{digest.hexdigest()}", timeout=600)
        assert response.status_code == 201, response.text

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=upload, args=(i,)) for i in range(CONCURRENT)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    sampler.join()
    return (peak - idle) / CONCURRENT


if __name__ == "__main__":
    sys.exit(main())
