"""Cold sends of one file through ``FileBody``, with each page-cache probe.

    python benchmarks/coldsend.py [--file PATH] [--rounds 4]

Writes a 1 GiB file (once; ``--file`` on the disk to measure), then per round and probe, in
turn: drops it from the page cache, waits 3 s, and sends it through
``distribution.api.filebody.FileBody`` on one end of a socket pair while a thread reads the
other. Prints MB/s (10^6 B/s) and how many windows the probe called cold (sent with
``sendfile``) and cached (sent from a mapped window). The probes: ``cachestat``, and the
``RWF_NOWAIT`` read used where ``cachestat`` is missing.
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import threading
import time

from distribution.api import filebody

SIZE = 1 << 30
PIECE = 1 << 20


def write_once(path: str) -> None:
    if os.path.exists(path) and os.path.getsize(path) == SIZE:
        return
    block = os.urandom(PIECE)
    with open(path, "wb") as f:
        for _ in range(SIZE // PIECE):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


def send(path: str) -> float:
    """Drop ``path`` from the page cache, wait, send it whole; MB/s."""
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, SIZE, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    time.sleep(3)
    ours, theirs = socket.socketpair()
    received = [0]

    def read() -> None:
        buffer = bytearray(16 << 20)
        while count := theirs.recv_into(buffer):
            received[0] += count

    reader = threading.Thread(target=read)
    reader.start()
    started = time.perf_counter()
    with open(path, "rb") as f:
        environ = {"SERVER_PROTOCOL": "HTTP/1.1", "gunicorn.socket": ours}
        for piece in filebody.FileBody(environ, f, SIZE):
            ours.sendall(piece)
    elapsed = time.perf_counter() - started
    ours.close()
    reader.join()
    theirs.close()
    assert received[0] == SIZE
    return SIZE / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default="/var/tmp/coldsend.bin")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    write_once(args.file)
    cachestat, probe = filebody._cachestat, filebody._cached
    answers: collections.Counter[bool] = collections.Counter()

    def counted(fd: int, offset: int) -> bool:
        cached = probe(fd, offset)
        answers[cached] += 1
        return cached

    filebody._cached = counted
    probes = [("cachestat", cachestat), ("rwf_nowait", None)]
    for round_ in range(args.rounds):
        for name, function in probes if round_ % 2 == 0 else probes[::-1]:
            filebody._cachestat = function
            answers.clear()
            rate = send(args.file)
            print(f"round {round_} {name:10} {rate:6.0f} MB/s  windows cold {answers[False]}, "
                  f"cached {answers[True]}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
