"""All the tags of a large repository in one request, ours and the Go registry, interleaved.

    python benchmarks/taglist.py ROOT [--rounds 3] [--repository big/tags] [--before DIR]

ROOT is a tree of ``../shared/bench/scale.py populate`` (``scale-side-by-side.sh`` keeps one).
Each round starts each registry afresh on ROOT and, on one connection, asks ``/v2/`` (the
worker's first request) and then ``/v2/<repository>/tags/list`` twice:

- ``cold``: the page cache dropped before the start (needs root), as scale.py's cold figure;
- ``first``: the page cache warm, the listing the process's first (ours: no tag list kept yet);
- ``again``: the same request once more (ours: from the list the worker keeps).

``--before DIR`` adds our registry run from another checkout (a commit to compare with).
Milliseconds, from the request sent to the last byte read.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PORT = 5079


def config(root: str) -> str:
    return f"""version: 0.1
log: {{level: warn, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http: {{addr: "127.0.0.1:{PORT}", secret: taglist-secret}}
"""


def start(command: list[str], env: dict[str, str], cwd: str) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
            connection.request("GET", "/v2/")
            connection.getresponse().read()
            connection.close()
            return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    sys.exit(f"{command[0]} did not answer on port {PORT}")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


def timed_lists(path: str, count: int) -> list[float]:
    """``/v2/``, then ``count`` timed GETs of ``path``, all on one new connection."""
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    connection.request("GET", "/v2/")
    connection.getresponse().read()
    times = []
    for _ in range(count):
        began = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        times.append((time.perf_counter() - began) * 1000)
        if response.status != 200 or not json.loads(body).get("tags"):
            sys.exit(f"GET {path}: {response.status} {body[:200]!r}")
    connection.close()
    return times


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as caches:
        caches.write("3\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repository", default="big/tags")
    parser.add_argument("--before", help="another checkout of ours to compare with")
    args = parser.parse_args()
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    python = os.environ.get("PYTHON", os.path.join(here, ".venv", "bin", "python"))
    work = tempfile.mkdtemp(prefix="taglist-")
    cfg = os.path.join(work, "config.yml")
    with open(cfg, "w") as out:
        out.write(config(os.path.abspath(args.root)))
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    # From ``work``: ``python -m`` looks in the working directory before PYTHONPATH.
    sides = {
        "go": (["docker-registry", "serve", cfg], env),
        "ours": ([python, "-m", "distribution", "serve", cfg], {**env, "PYTHONPATH": here}),
    }
    if args.before:
        sides["before"] = (
            [python, "-m", "distribution", "serve", cfg],
            {**env, "PYTHONPATH": os.path.abspath(args.before)},
        )
    path = f"/v2/{args.repository}/tags/list"
    results: dict[str, dict[str, list[float]]] = {
        side: {"cold": [], "first": [], "again": []} for side in sides
    }
    for _ in range(args.rounds):
        for side, (command, side_env) in sides.items():
            drop_caches()
            server = start(command, side_env, work)
            cold, again = timed_lists(path, 2)
            stop(server)
            server = start(command, side_env, work)
            (first,) = timed_lists(path, 1)
            stop(server)
            for kind, value in (("cold", cold), ("first", first), ("again", again)):
                results[side][kind].append(value)
    print(f"{'side':8}" + "".join(f"{kind:>28}" for kind in ("cold", "first", "again")))
    for side, kinds in results.items():
        cells = []
        for kind in ("cold", "first", "again"):
            values = kinds[kind]
            cells.append(
                f"{' / '.join(f'{v:.1f}' for v in values)} (med {statistics.median(values):.1f})"
            )
        print(f"{side:8}" + "".join(f"{cell:>28}" for cell in cells))
    print("TAGLISTJSON " + json.dumps(results))


if __name__ == "__main__":
    main()
