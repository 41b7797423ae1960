"""What an access decision costs, by number of rules; and the rules the side-by-side run uses.

    python benchmarks/access.py                       # the decision figures
    python benchmarks/access.py --write-rules FILE N  # N generated rules as a rules file

It also times requests through the whole Flask app (htpasswd, ``HEAD`` of a blob) without an
``access`` section and with 1,000 rules, alternating, in process CPU time: what the rules add
to a request, without the noise that other processes put into a load test's rates.

The rules mix the shapes a large site writes: a namespace per team (``team-N/**``), a cache
path inside it (``team-N/*/cache``), a service name in any namespace (``*/svc-N``, whose
literal prefix is empty, so every name that no other pattern takes is tried against them),
exact names (``apps/app-N``), and ``bench/other-N/**`` beside the ``bench/**`` that
``../shared/bench/bench.py``'s repositories fall under. Twenty groups of fifty users.
"""

from __future__ import annotations

import argparse
import base64
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bcrypt
import yaml

from distribution import config as config_module
from distribution.access import Identity, parse
from distribution.app import create_app
from distribution.storage.blobs import RepositoryBlobs

#: The user the side-by-side run signs in as; ``bench/**`` is theirs.
BENCH_USER = "bench"


def rules(count: int) -> dict:
    """``count`` repository patterns (the last one ``bench/**``), groups, default, admins."""
    groups = {f"g{g}": [f"u{g * 50 + k}" for k in range(50)] for g in range(20)}
    repositories: dict[str, list[dict]] = {}
    for i in range(count - 1):
        user, group = f"u{i % 1000}", f"g{i % 20}"
        kind = i % 5
        if kind == 0:
            repositories[f"team-{i}/**"] = [
                {"users": [user, "ci"], "actions": ["pull", "push", "delete"]},
                {"groups": [group], "actions": ["pull"]},
            ]
        elif kind == 1:
            repositories[f"team-{i}/*/cache"] = [{"users": ["*"], "actions": ["pull"]}]
        elif kind == 2:
            repositories[f"*/svc-{i}"] = [{"groups": [group], "actions": ["pull", "push"]}]
        elif kind == 3:
            repositories[f"bench/other-{i}/**"] = [{"users": [user], "actions": ["pull"]}]
        else:
            repositories[f"apps/app-{i}"] = [{"users": [user], "actions": ["pull"]}]
    repositories["bench/**"] = [{"users": [BENCH_USER], "actions": ["pull", "push", "delete"]}]
    return {
        "groups": groups,
        "repositories": repositories,
        "default": [{"users": ["*"], "actions": ["pull"]}],
        "admins": ["root"],
    }


def per_call(function, arguments: list, repeat: int = 3) -> float:
    """Best of ``repeat`` passes over ``arguments``: microseconds per call."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for argument in arguments:
            function(*argument)
        best = min(best, time.perf_counter() - start)
    return best / len(arguments) * 1e6


def figures() -> None:
    rng = random.Random(21)
    user = Identity(BENCH_USER)
    print("rules  | decide, same name (µs) | first decision of a name (µs): bench/*  other/*")
    for count in (1, 10, 100, 1000, 10000):
        section = rules(count)
        policy = parse(section, "htpasswd")
        same = [(user, "bench/r1234", "push")] * 20000
        hot = per_call(policy.decide, same)

        def fresh(prefix: str, policy=policy, section=section) -> float:
            # A new policy per pass: the memo starts empty, as after a reload.
            names = [(f"{prefix}{rng.randrange(10**9)}",) for _ in range(5000)]
            best = float("inf")
            for _ in range(3):
                cold = parse(section, "htpasswd")
                best = min(best, per_call(cold.rule_for, names, repeat=1))
            return best

        print(f"{count:6} | {hot:22.2f} | {fresh('bench/r'):39.2f}  {fresh('other/x'):7.2f}")
    policy = parse(rules(1000), "htpasswd")
    names = [f"team-{rng.randrange(2000)}/app-{i}" for i in range(10000)]
    visible = policy.visibility(Identity("u7"))
    start = time.perf_counter()
    shown = sum(visible.includes(name) for name in names)
    elapsed = time.perf_counter() - start
    print(
        f"catalog filter, 1000 rules: {len(names)} names in {elapsed * 1000:.1f} ms "
        f"({shown} visible to u7)"
    )


def request_cost(rounds: int = 30, per_round: int = 500) -> None:
    """CPU microseconds per ``HEAD`` blob request through the app: no rules, 1,000 rules."""
    with tempfile.TemporaryDirectory() as work:
        htpasswd, rules_file = Path(work, "htpasswd"), Path(work, "access.yml")
        htpasswd.write_bytes(b"bench:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)) + b"\n")
        rules_file.write_text(yaml.safe_dump(rules(1000)))
        base = (
            "version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
            "storage: {inmemory: {}}\nhttp: {secret: s}\n"
            f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}}}\n"
        )
        texts = {"no rules": base, "1000 rules": base + f"access: {{path: {rules_file}}}\n"}
        headers = {"Authorization": "Basic " + base64.b64encode(b"bench:pw").decode()}
        urls, clients, cost = {}, {}, {}
        for label, text in texts.items():
            app = create_app(config_module.parse(text, {}))
            registry = app.extensions["registry"]
            digest = registry.blobs.put(b"layer").digest
            RepositoryBlobs(registry.blobs, "bench/r1").link(digest)
            urls[label], clients[label], cost[label] = (
                f"/v2/bench/r1/blobs/{digest}",
                app.test_client(),
                [],
            )
        for _ in range(rounds):
            for label, client in clients.items():
                start = time.process_time()
                for _ in range(per_round):
                    client.head(urls[label], headers=headers)
                cost[label].append((time.process_time() - start) / per_round * 1e6)
        for label, values in cost.items():
            print(
                f"HEAD blob through the app, {label}: median {statistics.median(values):.1f}, "
                f"best {min(values):.1f} CPU-µs per request ({rounds} x {per_round}, alternating)"
            )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-rules", nargs=2, metavar=("FILE", "N"))
    args = parser.parse_args(argv)
    if args.write_rules:
        path, count = Path(args.write_rules[0]), int(args.write_rules[1])
        path.write_text(yaml.safe_dump(rules(count), sort_keys=False))
        return 0
    figures()
    request_cost()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
