"""How fast this machine writes a blob's worth of new data into the page cache.

    python3 benchmarks/pagecache.py [--dir DIR] [--size-mib 1024] [--rounds 3]

Each round writes a fresh file in 1 MiB ``write`` calls (as an upload does) twice: after the
previous file was deleted and the machine sat idle for 5 s, and right after deleting it. On a
VM whose free memory goes back to the host (virtio-balloon free page reporting, which reports
pages that stayed free for 2 s), the first kind pays for the host to back every new page; the
second reuses pages that were just freed. Prints MB/s (10^6 B/s) per round, and with the
fsync that makes an upload durable.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

PIECE = 1 << 20


def write_file(path: str, size: int, piece: memoryview) -> tuple[float, float]:
    """Write ``size`` bytes; the seconds to write them and to write and fsync them."""
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // PIECE):
            os.write(fd, piece)
        written = time.perf_counter() - start
        os.fsync(fd)
    finally:
        os.close(fd)
    return written, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=None, help="a directory on the disk to measure")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    size = args.size_mib * PIECE
    piece = memoryview(os.urandom(PIECE))
    with tempfile.TemporaryDirectory(dir=args.dir) as work:
        path = os.path.join(work, "blob")
        write_file(path, size, piece)
        for round_ in range(1, args.rounds + 1):
            for label, pause in ((f"after {args.idle:g} s idle", args.idle), ("just freed", 0)):
                os.unlink(path)
                time.sleep(pause)
                written, synced = write_file(path, size, piece)
                print(
                    f"round {round_}, {label:>16}: write {size / written / 1e6:6.0f} MB/s,"
                    f" with fsync {size / synced / 1e6:6.0f} MB/s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
