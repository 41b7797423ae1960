"""Stalled clients against a registry: does everyone else still get answers?

    python3 benchmarks/slowclients.py --url http://127.0.0.1:5000 [--user U --password P]
        [--heads 1000] [--bodies 100] [--wait-close 70]

Opens ``--heads`` connections that stall while sending a request head (a third send one byte,
a third the request line, a third half the headers, every fifth of them trickling one more
header line every 5 s), then ``--bodies`` authenticated chunked-upload PATCHes that stop after
1000 of their 1 MB body. Meanwhile it probes ``GET /v2/`` on fresh connections and prints the
probe's latency before and during the stall (median, p99, max, failures), then how many stalled
connections the server closed within ``--wait-close`` seconds. Every loop is bounded in count
and time. Prints a ``SLOWJSON {...}`` line for collecting runs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import resource
import socket
import statistics
import time
from urllib.parse import urlsplit

PROBES = 200
PROBE_TIMEOUT = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user", default="")
    parser.add_argument("--password", default="")
    parser.add_argument("--heads", type=int, default=1000)
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--wait-close", type=float, default=70.0)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    parts = urlsplit(args.url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    auth = {}
    if args.user:
        token = base64.b64encode(f"{args.user}:{args.password}".encode()).decode()
        auth = {"Authorization": f"Basic {token}"}

    before = probe(address, auth)
    stalled = stall_heads(address, args.heads) + stall_bodies(address, auth, args.bodies)
    time.sleep(1.0)
    during = probe(address, auth)
    closed, seconds = wait_closed(stalled, args.heads, args.wait_close)
    result = {
        "label": args.label,
        "heads": args.heads,
        "bodies": args.bodies,
        "opened": len(stalled),
        "before": before,
        "during": during,
        "closed": closed,
        "closed_within_s": round(seconds, 1),
    }
    for name in ("before", "during"):
        figures = result[name]
        print(
            f"{name:>6}: median {figures['median_ms']} ms, p99 {figures['p99_ms']} ms, "
            f"max {figures['max_ms']} ms, failed {figures['failed']} of {PROBES}"
        )
    print(f"closed by the server: {closed} of {len(stalled)} within {seconds:.1f} s")
    print("SLOWJSON " + json.dumps(result))


def probe(address: tuple[str, int], auth: dict[str, str]) -> dict[str, float | int]:
    """``GET /v2/`` on a fresh connection each time; latency figures and failures."""
    times, failed = [], 0
    for _ in range(PROBES):
        started = time.monotonic()
        try:
            conn = http.client.HTTPConnection(*address, timeout=PROBE_TIMEOUT)
            conn.request("GET", "/v2/", headers=auth)
            conn.getresponse().read()
            conn.close()
        except OSError:
            failed += 1
            continue
        times.append((time.monotonic() - started) * 1000)
        time.sleep(0.01)
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 2) if times else None,
        "p99_ms": round(times[int(len(times) * 0.99) - 1], 2) if times else None,
        "max_ms": round(times[-1], 2) if times else None,
        "failed": failed,
    }


def stall_heads(address: tuple[str, int], count: int) -> list[socket.socket]:
    partials = [b"G", b"GET /v2/ HTTP/1.1\r\n", b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAccept: "]
    opened = []
    for i in range(count):
        try:
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(partials[i % 3])
        except OSError:
            continue
        opened.append(sock)
    return opened


def stall_bodies(address: tuple[str, int], auth: dict[str, str], count: int) -> list[socket.socket]:
    """Authenticated PATCHes of a started upload, stopped 1000 bytes into their body."""
    opened = []
    header = "".join(f"{name}: {value}\r\n" for name, value in auth.items())
    for _ in range(count):
        conn = http.client.HTTPConnection(*address, timeout=PROBE_TIMEOUT)
        try:
            conn.request("POST", "/v2/slowclients/blobs/uploads/", headers=auth)
            response = conn.getresponse()
            response.read()
            location = response.getheader("Location") or ""
            conn.close()
            path = "/" + location.split("://", 1)[-1].split("/", 1)[1]
            sock = socket.create_connection(address, timeout=10)
            sock.sendall(
                f"PATCH {path} HTTP/1.1\r\nHost: x\r\n{header}Content-Length: 1000000\r\n"
                "Content-Type: application/octet-stream\r\n\r\n".encode()
                + b"x" * 1000
            )
        except (OSError, IndexError):
            continue
        opened.append(sock)
    return opened


def wait_closed(stalled: list[socket.socket], heads: int, limit: float) -> tuple[int, float]:
    """How many of ``stalled`` the server closed within ``limit`` seconds, and when the last
    of them went (trickling one header line every 5 s into a fifth of the first ``heads``)."""
    started = time.monotonic()
    for sock in stalled:
        sock.setblocking(False)
    open_ = set(range(len(stalled)))
    last_closed = 0.0
    next_trickle = started + 5
    while open_ and time.monotonic() - started < limit:
        for i in list(open_):
            try:
                data = stalled[i].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                open_.discard(i)
                last_closed = time.monotonic() - started
        if time.monotonic() >= next_trickle:
            for i in [i for i in open_ if i < heads][::5]:
                with contextlib.suppress(OSError):
                    stalled[i].send(b"X-Trickle: 1\r\n")
            next_trickle += 5
        time.sleep(0.2)
    for sock in stalled:
        sock.close()
    return len(stalled) - len(open_), last_closed


if __name__ == "__main__":
    main()
