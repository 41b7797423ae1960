"""Push and pull one big blob through ``registry serve`` on each cloud storage emulator.

    .venv/bin/python benchmarks/cloud.py [--size 1024] [--patch 0] [--drivers gcs,azure]

For each driver: start its emulator (fake-gcs-server, azurite) in a temp dir, create the
bucket or container, start ``registry serve`` (gunicorn, 2 workers x 4 threads) on it with the
drivers' default chunk sizes (``--gcs-chunksize`` changes GCS's), then push a blob of
``--size`` MiB of random data as docker does (POST, one streaming chunked-encoded PATCH, PUT
with the digest; ``--patch N`` splits it into PATCHes of N MiB), and pull it back (GET,
following the redirect when the driver gives one: azure's SAS URL; GCS needs signing
credentials for that, which an anonymous emulator run has not), hashing what comes back.
Prints one Markdown table row per driver; exits 1 if a pulled blob does not match its digest.
Every request is bounded by ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import free_port
from tests.process import ServerProcess
from tests.storage import azure_emulator as azure
from tests.storage import gcs_emulator as gcs

MiB = 1024 * 1024
PIECE = 4 * MiB
REPO = "bench/cloud"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="blob size in MiB")
    parser.add_argument("--patch", type=int, default=0, help="PATCH size in MiB; 0: one")
    parser.add_argument("--drivers", default="gcs,azure")
    parser.add_argument(
        "--gcs-chunksize", type=int, default=16, help="the gcs driver's chunksize, in MiB"
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds per request")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cloud-bench-"))
    print(
        f"{args.size} MiB blob, PATCH {args.patch or args.size} MiB, "
        f"gcs chunksize {args.gcs_chunksize} MiB, work dir {workdir}"
    )
    print("| driver | push (MB/s) | push time (s) | pull (MB/s) | pull time (s) | pull path |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    ok = True
    for driver in args.drivers.split(","):
        ok &= _run(driver, workdir / driver, args)
    return 0 if ok else 1


def _run(driver: str, root: Path, args: argparse.Namespace) -> bool:
    root.mkdir(parents=True)
    emulator: gcs.FakeGCS | azure.Azurite
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    if driver == "gcs":
        emulator = gcs.FakeGCS(root)
        url = emulator.start()
        env["STORAGE_EMULATOR_HOST"] = url
        _create_bucket(url)
        storage = f"  gcs:\n    bucket: {gcs.BUCKET}\n    chunksize: {args.gcs_chunksize * MiB}\n"
    else:
        emulator = azure.Azurite(root)
        url = emulator.start()
        _create_container(url)
        storage = (
            f"  azure:\n    accountname: {azure.ACCOUNT}\n    accountkey: {azure.KEY}\n"
            f"    container: {azure.CONTAINER}\n    serviceurl: {url}\n"
        )
    port = free_port()
    (root / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: warn\nstorage:\n{storage}"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
    )
    env.update(REGISTRY_HTTP_WORKERS="2", REGISTRY_HTTP_THREADS="4")
    registry = ServerProcess(
        [sys.executable, "-m", "distribution", "serve", str(root / "config.yml")],
        root / "registry",
        env,
        f"http://127.0.0.1:{port}",
        merge_output=True,
    )
    try:
        registry.wait_ready()
        return _measure(driver, registry.url, args)
    finally:
        registry.stop()
        emulator.stop()


def _measure(driver: str, base: str, args: argparse.Namespace) -> bool:
    size = args.size * MiB
    digest = _digest(size)
    session = requests.Session()
    start = time.monotonic()
    response = session.post(f"{base}/v2/{REPO}/blobs/uploads/", timeout=args.timeout)
    response.raise_for_status()
    location = urljoin(base, response.headers["Location"])
    patch = (args.patch or args.size) * MiB
    for offset in range(0, size, patch):
        length = min(patch, size - offset)
        response = session.patch(
            location,
            data=_content(offset, length),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + length - 1}",
            },
            timeout=args.timeout,
        )
        response.raise_for_status()
        location = urljoin(base, response.headers["Location"])
    response = session.put(location, params={"digest": digest}, timeout=args.timeout)
    response.raise_for_status()
    push = time.monotonic() - start

    start = time.monotonic()
    response = session.get(f"{base}/v2/{REPO}/blobs/{digest}", stream=True, timeout=args.timeout)
    response.raise_for_status()
    hasher = hashlib.sha256()
    received = 0
    for piece in response.iter_content(PIECE):
        hasher.update(piece)
        received += len(piece)
    pull = time.monotonic() - start
    path = "redirect to the emulator" if response.history else "through the registry"
    ok = received == size and f"sha256:{hasher.hexdigest()}" == digest
    print(
        f"| {driver} | {size / push / 1e6:.0f} | {push:.1f} | {size / pull / 1e6:.0f} "
        f"| {pull:.1f} | {path}{'' if ok else ' **DIGEST MISMATCH**'} |",
        flush=True,
    )
    return ok


def _content(offset: int, length: int) -> Iterator[bytes]:
    """Deterministic incompressible bytes, generated as they are sent (memory stays small)."""
    block = _block()
    sent = 0
    while sent < length:
        n = min(PIECE, length - sent)
        index = (offset + sent) // PIECE
        yield index.to_bytes(8, "big") + block[8:n] if n >= 8 else block[:n]
        sent += n


def _digest(size: int) -> str:
    hasher = hashlib.sha256()
    for piece in _content(0, size):
        hasher.update(piece)
    return f"sha256:{hasher.hexdigest()}"


_BLOCK: list[bytes] = []


def _block() -> bytes:
    if not _BLOCK:
        _BLOCK.append(os.urandom(PIECE))
    return _BLOCK[0]


def _create_bucket(url: str) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": url}
    )
    client.create_bucket(gcs.BUCKET)


def _create_container(url: str) -> None:
    from azure.storage.blob import BlobServiceClient

    credential = {"account_name": azure.ACCOUNT, "account_key": azure.KEY}
    BlobServiceClient(url, credential=credential).create_container(azure.CONTAINER)


if __name__ == "__main__":
    sys.exit(main())
