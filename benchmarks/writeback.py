"""How this disk takes 1 GiB written the way the filesystem driver writes an upload.

    python3 benchmarks/writeback.py [ROUNDS] [DIR]

Each mode writes 1 GiB in 1 MiB writes to a file in DIR (default /tmp, put it on the
registry's disk), starts writeback every 8 MiB (``sync_file_range``), waits for the range
WINDOW behind the end and drops it from the page cache, as ``_FileWriter`` does, then
fsyncs. ``32M``/``128M``/``512M`` vary the window; ``bg64``/``bg256`` keep 32 MiB and also
``fdatasync`` in a background thread every 64 or 256 MiB. Prints MB/s (whole write and
fsync) and the final fsync's time, mode by mode, round by round (interleaved).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time

MiB = 1 << 20
TOTAL = 1024 * MiB
STEP = 8 * MiB
#: mode: (window, background fdatasync every N bytes or 0)
MODES = {
    "32M": (32 * MiB, 0),
    "128M": (128 * MiB, 0),
    "512M": (512 * MiB, 0),
    "bg64": (32 * MiB, 64 * MiB),
    "bg256": (32 * MiB, 256 * MiB),
}

_sync_file_range = ctypes.CDLL(None, use_errno=True).sync_file_range
_sync_file_range.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
WRITE, WAIT_ALL = 2, 7


def write(path: str, window: int, flush_every: int) -> tuple[float, float]:
    """MB/s of the whole write, and the seconds its final fsync took."""
    piece = os.urandom(MiB)
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    flushed = dropped = end = synced = 0
    syncing: threading.Thread | None = None
    while end < TOTAL:
        end += os.write(fd, piece)
        if end - flushed < STEP:
            continue
        _sync_file_range(fd, flushed, end - flushed, WRITE)
        flushed = end
        if end - window > dropped:
            _sync_file_range(fd, dropped, end - window - dropped, WAIT_ALL)
            os.posix_fadvise(fd, dropped, end - window - dropped, os.POSIX_FADV_DONTNEED)
            dropped = end - window
        idle = syncing is None or not syncing.is_alive()
        if flush_every and dropped - synced >= flush_every and idle:
            syncing = threading.Thread(target=os.fdatasync, args=(fd,))
            syncing.start()
            synced = dropped
    written = time.perf_counter()
    if syncing is not None:
        syncing.join()
    os.fsync(fd)
    os.close(fd)
    done = time.perf_counter()
    os.remove(path)
    return TOTAL / (done - start) / 1e6, done - written


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    path = os.path.join(sys.argv[2] if len(sys.argv) > 2 else "/tmp", "writeback.bench")
    for round_ in range(rounds):
        for mode, (window, flush_every) in MODES.items():
            mbps, final = write(path, window, flush_every)
            print(
                f"round {round_} {mode:5} {mbps:5.0f} MB/s, final fsync {final:.2f} s", flush=True
            )
            time.sleep(1)


if __name__ == "__main__":
    main()
