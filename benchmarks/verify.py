"""``registry verify`` on a large blob store: time, throughput and peak memory.

    python3 benchmarks/verify.py [--blobs 100000] [--size 16384] [--jobs N] [--dir D]

Writes ``--blobs`` blobs of random content (sizes spread up to ``--size`` bytes, one of every
thousand of 8 MiB) straight into a filesystem layout under ``--dir``, drops the page cache's
copy of them (``POSIX_FADV_DONTNEED``) so the scrub reads from disk as it would on a real
store, then runs ``registry verify`` on it and prints its wall time, blobs/s, MB/s and the
command's peak RSS. Two of the blobs are damaged on purpose, so the exit status must be 2.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LARGE = 8 << 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=16_384)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="verify-bench-", dir=args.dir))
    try:
        total = populate(work / "root", args.blobs, args.size)
        config = work / "config.yml"
        config.write_text(
            f"version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {work / 'root'}}}\n"
        )
        registry = Path(sys.executable).with_name("registry")
        started = time.monotonic()
        done = subprocess.run(
            [str(registry), "verify", "--jobs", str(args.jobs), str(config)],
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(done.stdout.strip().splitlines()[-1])
        print(
            f"{args.blobs} blobs, {total / 1e6:.0f} MB in {seconds:.1f} s: "
            f"{args.blobs / seconds:.0f} blobs/s, {total / 1e6 / seconds:.0f} MB/s, "
            f"peak RSS {peak:.0f} MiB, --jobs {args.jobs}, exit {done.returncode} (2 expected)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


def populate(root: Path, count: int, size: int) -> int:
    """``count`` blobs in Go's layout, two of them damaged; their total size."""
    rng = random.Random(7)
    total = 0
    for i in range(count):
        length = LARGE if i % 1000 == 999 else rng.randrange(size)
        data = rng.randbytes(length)
        digest = hashlib.sha256(data).hexdigest()
        folder = root / "docker/registry/v2/blobs/sha256" / digest[:2] / digest
        folder.mkdir(parents=True, exist_ok=True)
        stored = data if i not in (count // 3, count // 2) else data[::-1] + b"!"
        (folder / "data").write_bytes(stored)
        total += len(stored)
    os.sync()  # written back, so the page cache can drop them
    for path in (root / "docker/registry/v2/blobs").rglob("data"):
        with open(path, "rb") as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return total


if __name__ == "__main__":
    main()
