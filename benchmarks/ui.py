#!/usr/bin/env python3
"""Server time of each web UI page on a large tree: first visit, later visits, after a push.

    python benchmarks/ui.py ROOT [--workers 1] [--repeat 20]

ROOT is a tree made by ``../shared/bench/scale.py populate ROOT`` (10,000 repositories of 3
tags, and ``big/tags`` with 10,000 tags). The script starts the registry on it (no auth,
deletes on, one gunicorn worker unless told), asks each page once (the first visit, which
builds the caches), then ``--repeat`` times more, and prints the server's own time from the
``Server-Timing`` header (the wall time on loopback is within a millisecond of it). Then it
pushes a new tag to ``big/tags`` and to a new repository through the API, as another replica
would, and times the pages again: the first visit after a change, and the ones after it.
The push adds to ROOT; run ``scale.py populate`` again for a pristine tree.

Wrap it in ``flock /work/notes/bench.lock`` on a shared machine.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PAGES = [
    ("repositories", "/ui/"),
    ("repositories, page 100", "/ui/?page=100"),
    ("repositories, filtered", "/ui/?q=app0999"),
    ("repositories, namespace", "/ui/?ns=team42"),
    ("10,000 tags, newest first", "/ui/r/big/tags"),
    ("10,000 tags, by version", "/ui/r/big/tags?sort=name"),
    ("10,000 tags, page 50", "/ui/r/big/tags?sort=-name&page=50"),
    ("10,000 tags, filtered", "/ui/r/big/tags?q=build-0099"),
    ("image", "/ui/r/big/tags/-/manifests/build-005000"),
    ("small repository", "/ui/r/team07/app00007"),
    ("its image", "/ui/r/team07/app00007/-/manifests/v1.1"),
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    if not (Path(args.root) / "docker/registry/v2/repositories/big/tags").is_dir():
        sys.exit(f"{args.root}: not a scale.py tree (no big/tags)")
    port = _free_port()
    work = Path(tempfile.mkdtemp(prefix="ui-bench-"))
    config = work / "config.yml"
    config.write_text(
        f"""version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {os.path.abspath(args.root)}}}
  delete: {{enabled: true}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http: {{addr: "127.0.0.1:{port}", secret: ui-bench, workers: {args.workers}, threads: 4}}
"""
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "distribution", "serve", str(config)],
        stdout=open(work / "log", "wb"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
    )
    try:
        _wait(port)
        client = Client(port)
        print(f"workers: {args.workers}, repeat: {args.repeat}")
        measure(client, "cold start", args.repeat)
        push(client)
        measure(client, "after a push through the API", args.repeat)
    finally:
        server.terminate()
        server.wait(30)
    return 0


def measure(client: Client, label: str, repeat: int) -> None:
    print(f"\n{label}: server ms (first visit / median / max of the next {repeat})")
    for name, path in PAGES:
        first = client.time(path)
        later = [client.time(path) for _ in range(repeat)]
        print(
            f"  {name:28} {first:8.1f} {statistics.median(later):8.1f} {max(later):8.1f}   {path}"
        )
        print("BENCHJSON " + json.dumps({"phase": label, "page": name, "first_ms": first,
                                         "median_ms": statistics.median(later),
                                         "max_ms": max(later)}))  # fmt: skip


def push(client: Client) -> None:
    """A new image tagged in big/tags, and one in a new repository, through the API."""
    for name, tag in (("big/tags", "pushed-later"), ("team42/newly-pushed", "1")):
        blobs = [json.dumps({"os": "linux", "architecture": "amd64", "n": tag}).encode(),
                 os.urandom(256)]  # fmt: skip
        for data in blobs:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            client.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor("application/vnd.oci.image.config.v1+json", blobs[0]),
            "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar+gzip", blobs[1])],
        }
        client.request("PUT", f"/v2/{name}/manifests/{tag}", json.dumps(manifest).encode(),
                       {"Content-Type": OCI_MANIFEST})  # fmt: skip


class Client:
    def __init__(self, port: int) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        self.connection.request(method, path, body=body, headers=headers or {})
        response = self.connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise SystemExit(f"{method} {path}: {response.status} {data[:200]!r}")
        return response, data

    def time(self, path: str) -> float:
        response, data = self.request("GET", path)
        found = re.search(r"dur=([0-9.]+)", response.getheader("Server-Timing") or "")
        if not found or b"<h1" not in data:
            raise SystemExit(f"GET {path}: no page or no Server-Timing")
        return float(found.group(1))


def _descriptor(media_type: str, data: bytes) -> dict:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the registry did not start")


if __name__ == "__main__":
    sys.exit(main())
