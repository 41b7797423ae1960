"""Time each request of one blob push: the PATCH phase apart from the closing PUT.

    python3 benchmarks/patches.py URL [PATCHES] [MiB_EACH] [PUT_URL]

Pushes PATCHES x MiB_EACH fresh bytes (default 64 x 16 MiB; 2 x 512 is nearly a monolithic
push) to ``bench/patches`` on one connection, then the closing ``PUT``, on a new connection to
PUT_URL if given (another replica sharing the storage: what nginx in front of replicas does to
a docker push, 1 x 1024). Prints the whole push's MB/s, the sum and spread of the PATCHes'
times, and the PUT's time: the PATCH sum is the server's receiving, the PUT mostly the
commit's fsync, which on a VM follows the host (and, elsewhere, whatever finishing the hash
takes).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.parse

MiB = 1 << 20


def main() -> None:
    url = urllib.parse.urlsplit(sys.argv[1])
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    size = (int(sys.argv[3]) if len(sys.argv) > 3 else 16) * MiB
    closing = urllib.parse.urlsplit(sys.argv[4]) if len(sys.argv) > 4 else url
    base = bytearray(os.urandom(size))
    pieces = []
    for _ in range(count):
        base[:16] = os.urandom(16)  # fresh content: no blob to find already stored
        pieces.append(bytes(base))
    digest = "sha256:" + hashlib.sha256(b"".join(pieces)).hexdigest()
    conn = http.client.HTTPConnection(url.hostname, url.port)
    start = time.perf_counter()
    conn.request("POST", "/v2/bench/patches/blobs/uploads/")
    response = conn.getresponse()
    response.read()
    location = response.getheader("Location")
    times, offset = [], 0
    for piece in pieces:
        began = time.perf_counter()
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + len(piece) - 1}",
        }
        conn.request("PATCH", location, body=piece, headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 202:
            sys.exit(f"PATCH at {offset}: HTTP {response.status}")
        location = response.getheader("Location")
        offset += len(piece)
        times.append(time.perf_counter() - began)
    began = time.perf_counter()
    if closing is not url:
        conn.close()
        conn = http.client.HTTPConnection(closing.hostname, closing.port)
        location = urllib.parse.urlsplit(location)._replace(scheme="", netloc="").geturl()
    separator = "&" if "?" in location else "?"
    conn.request("PUT", f"{location}{separator}digest={digest}", body=b"")
    response = conn.getresponse()
    response.read()
    if response.status != 201:
        sys.exit(f"closing PUT: HTTP {response.status}")
    put = time.perf_counter() - began
    total = time.perf_counter() - start
    times.sort()
    print(
        f"{offset / total / 1e6:.0f} MB/s in {total:.2f} s; PATCHes {sum(times):.2f} s "
        f"(each {times[0] * 1e3:.0f}-{times[-1] * 1e3:.0f} ms, median "
        f"{times[len(times) // 2] * 1e3:.0f}); closing PUT {put * 1e3:.0f} ms"
    )


if __name__ == "__main__":
    main()
