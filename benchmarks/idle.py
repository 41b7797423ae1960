"""Idle memory of the Go registry and ours, started in turn with the bench's settings.

    .venv/bin/python benchmarks/idle.py [ROUNDS]

Each round starts Go (``../shared/bench/start-go-registry.sh``) and then ours (``registry
serve``, the configuration ``side-by-side.sh`` gives it), answers one ``GET /v2/`` on each,
waits 3 s and reads ``/proc``: Go's RSS; our master's and workers' RSS and PSS, summed.

PSS splits a page among every process that maps it, those of other programs included: other
Python processes running this interpreter lower our PSS by sharing ``libpython`` and
``libcrypto`` pages with us (six idle ones took 8 MiB off, and this script is one). So the
pages the registry's processes map are also counted once each, whoever else maps them
(``/proc/<pid>/pagemap``, which gives page frame numbers to root only): what PSS would sum to
with the registry alone on the machine.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = Path(os.environ.get("BENCH_DIR", HERE.parent.parent / "shared" / "bench"))
REGISTRY = os.environ.get("REGISTRY", str(HERE.parent / ".venv" / "bin" / "registry"))
GO_PORT, PY_PORT = 5057, 5058
SETTLE = 3.0
PAGE = os.sysconf("SC_PAGE_SIZE")

CONFIG = """version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage:
  cache: {{blobdescriptor: inmemory}}
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http:
  addr: "127.0.0.1:{port}"
  secret: bench-secret
  headers: {{X-Content-Type-Options: [nosniff]}}
"""


def kib(pid: int, source: str, key: str) -> int:
    for line in Path(f"/proc/{pid}/{source}").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(child) for child in found.split()]


def answer(port: int) -> None:
    """Wait until ``GET /v2/`` answers (after start-up), once."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def frames(pid: int) -> set[int]:
    """The page frames ``pid`` has in memory (present bit 63, frame number in bits 0-54)."""
    found: set[int] = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            start, end = (int(bound, 16) for bound in line.split()[0].split("-"))
            if start >= 1 << 47:  # [vsyscall]
                continue
            pagemap.seek(start // PAGE * 8)
            entries = pagemap.read((end - start) // PAGE * 8)
            for (entry,) in struct.iter_unpack("<Q", entries):
                if entry >> 63:
                    found.add(entry & (1 << 55) - 1)
    return found


def go_round(work: Path) -> float:
    started = subprocess.run(
        [str(BENCH / "start-go-registry.sh"), str(GO_PORT), str(work / "go")],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(started.stdout.split()[-1])
    try:
        answer(GO_PORT)
        time.sleep(SETTLE)
        return kib(pid, "status", "VmRSS") / 1024
    finally:
        subprocess.run(["kill", str(pid)], check=False)


def our_round(work: Path) -> tuple[float, float, float, int]:
    config = work / "py.yml"
    config.write_text(CONFIG.format(root=work / "py", port=PY_PORT))
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    server = subprocess.Popen(
        [REGISTRY, "serve", str(config)],
        cwd=work,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        answer(PY_PORT)
        time.sleep(SETTLE)
        pids = [server.pid, *children(server.pid)]
        rss = sum(kib(pid, "smaps_rollup", "Rss") for pid in pids) / 1024
        pss = sum(kib(pid, "smaps_rollup", "Pss") for pid in pids) / 1024
        alone = len(set().union(*map(frames, pids))) * PAGE / 2**20
        return rss, pss, alone, len(pids)
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with tempfile.TemporaryDirectory(prefix="idle-") as folder:
        work = Path(folder)
        for number in range(1, rounds + 1):
            go = go_round(work)
            rss, pss, alone, processes = our_round(work)
            print(
                f"round {number}: Go RSS {go:.1f} MiB; ours ({processes} processes) RSS {rss:.1f}, "
                f"PSS {pss:.1f}, alone {alone:.1f} MiB = {alone / go:.2f}x Go's RSS",
                flush=True,
            )


if __name__ == "__main__":
    main()
