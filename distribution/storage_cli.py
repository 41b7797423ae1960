"""``registry usage``, ``registry retention`` and ``registry delete-repository``.

Operator commands on a registry's storage, safe while it serves: ``usage`` only reads;
``retention`` and ``delete-repository`` change storage as the running registry would (under
the maintenance lease for retention, with the same locks against pushes), and note what they
changed in the journal, so the running registry's usage figures follow.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distribution import access, errors, leases, maintenance, quotas, reference, retention, usage
from distribution import config as config_module
from distribution import log as log_module
from distribution.cache import factory as cache_factory
from distribution.config import ConfigError, Configuration
from distribution.quotas.guard import human
from distribution.storage import driver, locks, repositories
from distribution.usage import settings

#: The commands this module adds to ``registry``.
COMMANDS = ("usage", "retention", "delete-repository")


def add_commands(commands: argparse._SubParsersAction) -> None:
    show = commands.add_parser(
        "usage",
        help="storage used per repository, namespace and in total",
        description="Count what every repository uses (the blobs its manifests reference, "
        "those shared with other repositories apart), per namespace and in total, with tag "
        "and manifest counts and the last push and pull (our extension). Reads storage only.",
    )
    show.add_argument("config", metavar="CONFIG", help="config.yml")
    show.add_argument("--json", action="store_true", help="print every figure as JSON")
    show.add_argument(
        "--cached",
        action="store_true",
        help="print the figures the running registry computed last instead of counting now",
    )
    keep = commands.add_parser(
        "retention",
        help="apply the retention policies once",
        description="Apply storage.maintenance.retention's policies once and print, per "
        "repository, the tags and manifests that go, and the bytes freed once the blobs are "
        "collected (our extension). Safe while the registry serves.",
    )
    keep.add_argument("config", metavar="CONFIG", help="config.yml")
    keep.add_argument("--dry-run", "-d", action="store_true", help="change nothing")
    keep.add_argument(
        "--collect",
        action="store_true",
        help="run the online garbage collection afterwards, which frees the blobs now",
    )
    drop = commands.add_parser(
        "delete-repository",
        help="delete a whole repository",
        description="Delete repository NAME: its tags, manifests, layer links, uploads and "
        "referrers index (not the repositories below it); the catalog no longer lists it and "
        "its blobs go at the next garbage collection (our extension).",
    )
    drop.add_argument("config", metavar="CONFIG", help="config.yml")
    drop.add_argument("name", metavar="NAME", help="the repository")
    drop.add_argument("--dry-run", "-d", action="store_true", help="only say what would go")


def run(args: argparse.Namespace) -> int:
    log_module.configure("warn")
    try:
        config = _load(args.config)
        store = driver.create(config.storage.driver, config.storage.parameters)
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 1
    except (ValueError, driver.StorageDriverError) as err:
        print(f"failed to construct {config.storage.driver} driver: {err}", file=sys.stderr)
        return 1
    log_module.configure(
        "warn" if config.log.level == "info" else config.log.level,
        config.log.formatter,
        config.log.fields,
    )
    try:
        if args.command == "usage":
            return _usage(args, config, store)
        if args.command == "retention":
            return _retention(args, config, store)
        return _delete_repository(args, config, store)
    except driver.StorageDriverError as err:
        print(f"registry {args.command}: {err}", file=sys.stderr)
        return 1
    except leases.LeaseUnreachable as err:
        print(f"registry {args.command}: cannot take the maintenance lease: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


def check(config: Configuration) -> None:
    """Refuse bad usage, retention and quota sections at start-up, naming the key."""
    settings.parse(config)
    retention.check(config)
    quotas.check(config)


def _load(path: str) -> Configuration:
    config = config_module.load(path)
    check(config)
    return config


def _usage(args: argparse.Namespace, config: Configuration, store: driver.StorageDriver) -> int:
    if args.cached:
        report = usage.load_report(store)
        if report is None:
            print("registry usage: the registry has not computed usage yet", file=sys.stderr)
            return 1
    else:
        outcome = usage.refresh(
            store,
            quotas=quotas.parse(config),
            client=usage.redis_client(config),
            full=True,
            write=False,
        )
        report = outcome.report.to_json()
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    for line in usage_lines(report):
        print(line)
    return 0


def usage_lines(report: dict[str, Any]) -> list[str]:
    """The report as tables: total, quotas, namespaces, repositories."""
    total = report["total"]
    lines = [
        f"figures of {report['generated']} (pulls recorded since {report['pulls_since']})",
        f"total: {total['repositories']} repositories, {total['tags']} tags, "
        f"{total['manifests']} manifests; {human(total['bytes'])} referenced in "
        f"{total['blobs']} blobs ({human(total['shared_bytes'])} used by several "
        f"repositories); {human(total['stored_bytes'])} stored in {total['stored_blobs']} "
        f"blobs at the last full scan ({report['full_scan']})",
    ]
    if report["quotas"]:
        lines += ["", "QUOTA\tLIMIT\tUSED\tPERCENT"]
        lines += [
            f"{q['repositories']}\t{human(q['limit'])}\t{human(q['bytes'])}\t{q['percent']} %"
            for q in report["quotas"]
        ]
    header = "TAGS\tMANIFESTS\tBYTES\tEXCLUSIVE\tSHARED\tLAST PUSH\tLAST PULL"
    tables = (("NAMESPACE", report["namespaces"]), ("REPOSITORY", report["repositories"]))
    for title, rows in tables:
        lines += ["", f"{title}\t{header}"]
        lines += [
            f"{row['name']}\t{row['tags']}\t{row['manifests']}\t{human(row['bytes'])}\t"
            f"{human(row['exclusive_bytes'])}\t{human(row['shared_bytes'])}\t"
            f"{row['last_push'] or '-'}\t{row['last_pull'] or '-'}"
            for row in rows
        ]
    return lines


def _retention(args: argparse.Namespace, config: Configuration, store: driver.StorageDriver) -> int:
    if not retention.parse(config).policies:
        print("registry retention: storage.maintenance.retention has no policies", file=sys.stderr)
        return 1
    options: dict[str, Any] = {
        "dry_run": args.dry_run,
        "collect": args.collect,
        "client": usage.redis_client(config),
        "locks": locks.from_config(config, store),
        "cache": cache_factory.from_config(config),
    }
    if args.dry_run:
        report, collected = retention.run_once(config, store, **options)
    else:
        with leases.holding(maintenance.make_lease(config, store), strict=True) as held:
            if not held():
                print(
                    "registry retention: another registry holds the maintenance lease; "
                    "try again later",
                    file=sys.stderr,
                )
                return 1
            report, collected = retention.run_once(config, store, proceed=held, **options)
    for line in report.lines():
        print(line)
    print(report.summary())
    if collected is not None:
        print(collected.summary(config.storage.maintenance.gc.dryrun))
    elif not args.dry_run and report.deleted_manifests:
        print("the blobs go at the next garbage collection (or run with --collect)")
    return 0


def _delete_repository(
    args: argparse.Namespace, config: Configuration, store: driver.StorageDriver
) -> int:
    name = args.name
    if not reference.is_name(name):
        print(f"registry delete-repository: not a repository name: {name!r}", file=sys.stderr)
        return 1
    try:
        held = repositories.contents(store, name)
    except errors.NameUnknown:
        print(f"registry delete-repository: no repository {name}", file=sys.stderr)
        return 1
    policy = access.PolicySource.from_config(config).current()
    frozen = [f"{tag} ({rule})" for tag in held.tags if (rule := policy.immutable(name, tag))]
    if frozen:
        print(
            f"registry delete-repository: {name} holds immutable tags: {', '.join(frozen)}; "
            "change the access rules first",
            file=sys.stderr,
        )
        return 1
    if args.dry_run:
        figures = usage.refresh(store, client=usage.redis_client(config), full=True, write=False)
        exclusive = figures.report.repositories.get(name)
        freed = exclusive.exclusive_bytes if exclusive is not None else 0
        print(f"would delete {name}: {held.summary()}")
        for tag, digest in sorted(held.tags.items()):
            print(f"  tag {tag} ({digest})")
        print(f"{freed} bytes would be freed once collected (blobs used elsewhere do not count)")
        return 0
    deleted = repositories.delete(store, name, cache_factory.from_config(config))
    usage.note_changed(config, store, [name])
    print(f"deleted {name}: {deleted.summary()}; its blobs go at the next garbage collection")
    return 0
