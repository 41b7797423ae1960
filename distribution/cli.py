"""The ``registry`` command: ``serve``, ``garbage-collect``, ``verify``, ``access check``, and
(:mod:`distribution.storage_cli`) ``usage``, ``retention`` and ``delete-repository``.

The modules only one command uses (the collector, the scrubber, the htpasswd tool) are
imported when it runs: ``registry serve`` builds the app in this process and forks its workers
from it, so whatever is imported here takes room in every one of them."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
import urllib.parse
from collections.abc import Sequence

from distribution import (
    __version__,
    duration,
    errors,
    health,
    leases,
    mailhook,
    maintenance,
    notifications,
    parity,
    proxy,
    redisconn,
    reference,
    server,
    storage_cli,
    tracing,
    usage,
)
from distribution import access as access_rules
from distribution import config as config_module
from distribution import log as log_module
from distribution.auth import factory as auth_factory
from distribution.auth import htpasswd
from distribution.cache import factory as cache_factory
from distribution.config import ConfigError, Configuration
from distribution.storage import driver
from distribution.storage import middleware as storage_middleware

#: The embedded default's storage root, as in the Go registry's image.
DEFAULT_ROOT = "/var/lib/registry"
#: Where the embedded default stores data when ``DEFAULT_ROOT`` cannot be written.
LOCAL_ROOT = "registry-data"

log = logging.getLogger("distribution.cli")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["htpasswd"]:  # Apache's flags, not argparse's
        from distribution.auth import htpasswd_tool

        return htpasswd_tool.main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "help"):
        parser.print_help()
        return 0
    if args.command == "garbage-collect":
        return garbage_collect(args)
    if args.command == "verify":
        return verify(args)
    if args.command in storage_cli.COMMANDS:
        return storage_cli.run(args)
    if args.command == "access":
        if args.access_command != "check":
            args.access_parser.print_help(sys.stderr)
            return 2
        return access_check(args)
    log_module.configure()
    try:
        config = prepare(args.config or os.environ.get("REGISTRY_CONFIGURATION_PATH") or None)
    except ConfigError as err:
        print(f"registry: configuration error: {err}", file=sys.stderr)
        return 1
    log_module.configure(
        config.log.level,
        config.log.formatter,
        config.log.fields,
        config.log.reportcaller,
        mailhook.handlers(config.log.hooks, config.log.fields),
    )
    try:
        server.RegistryServer(config).run()
    except ConfigError as err:  # a listen address that cannot be bound
        print(f"registry: configuration error: {err}", file=sys.stderr)
        return 1
    return 0


def prepare(path: str | None) -> Configuration:
    """Load and check everything ``serve`` needs before any worker starts."""
    config = config_module.load(path)
    if path is None:
        config = _embedded_default_storage(config)
    try:
        driver.create(config.storage.driver, config.storage.parameters)
    except driver.InvalidParameterError as err:
        raise ConfigError(f"storage.{config.storage.driver}.{err.parameter}", err.message) from None
    except driver.StorageDriverError as err:  # a bucket or container missing, credentials refused
        raise ConfigError(f"storage.{config.storage.driver}", err.message) from None
    except ValueError as err:  # an unknown driver, or one whose extra is not installed
        raise ConfigError("storage", str(err)) from None
    storage_middleware.check(config)
    parity.check(config)
    auth_factory.check(config)
    access_rules.check(config)
    mailhook.check(config.log.hooks)
    storage_cli.check(config)
    server.check(config)
    cache_factory.check(config)
    notifications.check(config)
    health.check(config)
    redisconn.check(config.redis, "redis")
    if config.notifications.redis is not None:
        redisconn.check(config.notifications.redis, "notifications.redis")
    notifications.check_eviction(config)
    proxy.check(config)
    tracing.check()
    config = _usable_host(config)
    if not config.http.secret:
        log.warning(
            "No HTTP secret provided - generated random secret. This may cause problems with "
            "uploads if multiple registries are behind a load-balancer. To provide a shared "
            "secret, fill in http.secret in the configuration file or set the "
            "REGISTRY_HTTP_SECRET environment variable."
        )
        http = dataclasses.replace(config.http, secret=secrets.token_urlsafe(32))
        config = dataclasses.replace(config, http=http)
    return config


def _usable_host(config: Configuration) -> Configuration:
    """``http.host`` as Go uses it: only a URL with a scheme and a host makes the URLs handed
    to clients; Go ignores anything else (the request decides), and so does this, aloud."""
    host = config.http.host
    if not host:
        return config
    try:
        url = urllib.parse.urlsplit(host)
    except ValueError as err:  # Go's url.Parse fails start-up too
        raise ConfigError("http.host", f"not a URL: {host!r}: {err}") from None
    if url.scheme and url.netloc:
        return config
    log.warning(
        "http.host %r is not used: it needs a scheme and a host, such as "
        "https://registry.example.com:5000 (Go ignores it too)",
        host,
    )
    return dataclasses.replace(config, http=dataclasses.replace(config.http, host=None))


def _embedded_default_storage(config: Configuration) -> Configuration:
    """Without a config file, fall back to ``./registry-data`` if the default root is read-only."""
    storage = config.storage
    root = storage.parameters.get("rootdirectory")
    if storage.driver != "filesystem" or root != DEFAULT_ROOT or writable_dir(root):
        return config
    local = os.path.abspath(LOCAL_ROOT)
    log.warning("storage: %s is not writable; storing data in %s instead", root, local)
    parameters = {**storage.parameters, "rootdirectory": local}
    return dataclasses.replace(config, storage=dataclasses.replace(storage, parameters=parameters))


def writable_dir(path: str) -> bool:
    """True if ``path`` is (or can be made) a directory this process may write to."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry",
        description="A container image registry: Docker Registry HTTP API v2, OCI Distribution.",
    )
    parser.add_argument("--version", "-v", action="version", version=f"registry {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the registry HTTP server")
    serve.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="config.yml (default: $REGISTRY_CONFIGURATION_PATH, else the built-in default)",
    )
    _add_garbage_collect(commands)
    _add_verify(commands)
    _add_access(commands)
    commands.add_parser(
        "htpasswd",
        help="make or change an htpasswd file (Apache's flags, bcrypt only)",
        add_help=False,
    )
    storage_cli.add_commands(commands)
    commands.add_parser("help", help="show this help")
    return parser


def _add_garbage_collect(commands: argparse._SubParsersAction) -> None:
    collect = commands.add_parser(
        "garbage-collect",
        help="delete blobs no manifest references",
        description="Delete blobs no manifest references (distribution's mark and sweep). "
        "Without --online, run it with the registry stopped or read-only, as with the Go "
        "registry; --online is safe while pushes continue.",
    )
    collect.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="config.yml (default: $REGISTRY_CONFIGURATION_PATH)",
    )
    collect.add_argument(
        "--dry-run", "-d", action="store_true", help="do everything except remove the blobs"
    )
    collect.add_argument(
        "--delete-untagged",
        "-m",
        action="store_true",
        help="delete manifests that are not currently referenced via tag",
    )
    collect.add_argument("--quiet", "-q", action="store_true", help="silence output")
    collect.add_argument(
        "--online",
        action="store_true",
        help="safe while the registry serves pushes: spare anything younger than the grace "
        "period, quarantine before deleting (our extension)",
    )
    collect.add_argument(
        "--grace-period",
        metavar="DURATION",
        help="with --online, never delete what is younger than this Go duration "
        "(default: storage.maintenance.gc.age, 1h)",
    )


def _add_verify(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "verify",
        help="re-hash every stored blob and report those that do not match their digest",
        description="Re-hash every blob in storage (layers, configs, manifests) and report each "
        "whose content is not its digest's, one per line on stdout, then a summary; progress "
        "goes to stderr. "
        "Safe while the registry runs. Exit status: 0 all sound, 2 damage found, 1 error "
        "(our extension; the Go registry has no scrub).",
    )
    check.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="config.yml (default: $REGISTRY_CONFIGURATION_PATH)",
    )
    check.add_argument(
        "--repair",
        action="store_true",
        help="move damaged blobs out of the blob store (a later push brings them back) and "
        "rebuild each repository's referrers index",
    )
    check.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="blobs hashed at once (default: one per CPU)",
    )
    check.add_argument(
        "--quiet", "-q", action="store_true", help="only the damaged blobs: no progress or summary"
    )


def verify(args: argparse.Namespace) -> int:
    """``registry verify``: damaged blobs on stdout, progress on stderr (exit 2 if any)."""
    from distribution.storage import scrub

    log_module.configure("warn")
    loaded = _load_storage(args.config)
    if isinstance(loaded, int):
        return loaded
    config, store = loaded
    if args.jobs < 1:
        print("registry verify: --jobs must be at least 1", file=sys.stderr)
        return 1

    def progress(report: scrub.Report) -> None:
        if not args.quiet:
            print(report.progress(), file=sys.stderr, flush=True)

    try:
        report = scrub.verify(
            store,
            repair=args.repair,
            jobs=args.jobs,
            cache=cache_factory.from_config(config),
            found=lambda damage: print(damage, flush=True),
            progress=progress,
        )
    except driver.StorageDriverError as err:
        print(f"failed to verify: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(report.summary(args.repair), flush=True)
    return 2 if report.damaged else 0


def _load_storage(path: str | None) -> tuple[Configuration, driver.StorageDriver] | int:
    """The config at ``path`` (or ``$REGISTRY_CONFIGURATION_PATH``) and its storage driver, or
    the exit status after saying, in Go's words, what is wrong."""
    path = path or os.environ.get("REGISTRY_CONFIGURATION_PATH")
    if not path:
        print("configuration error: configuration path unspecified", file=sys.stderr)
        return 1
    try:
        config = config_module.load(path)
        return config, driver.create(config.storage.driver, config.storage.parameters)
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 1
    except (ValueError, driver.StorageDriverError) as err:
        print(f"failed to construct {config.storage.driver} driver: {err}", file=sys.stderr)
        return 1


def garbage_collect(args: argparse.Namespace) -> int:
    """``registry garbage-collect``: Go's output on stdout, errors on stderr, exit 1 on failure."""
    from distribution.storage import gc

    log_module.configure("warn")
    if args.grace_period is not None and not args.online:  # offline, nothing is spared
        print("registry garbage-collect: error: --grace-period goes with --online", file=sys.stderr)
        return 2
    loaded = _load_storage(args.config)
    if isinstance(loaded, int):
        return loaded
    config, store = loaded
    grace = config.storage.maintenance.gc.age
    if args.grace_period is not None:
        nanoseconds = duration.parse(args.grace_period)
        if nanoseconds is None or nanoseconds < 0:
            print(
                f"configuration error: --grace-period: not a duration: {args.grace_period!r}",
                file=sys.stderr,
            )
            return 1
        if nanoseconds == 0:  # no wait before the rescan either: a racing push could lose
            print(
                "configuration error: --grace-period: must be longer than zero, "
                f"got {args.grace_period!r}",
                file=sys.stderr,
            )
            return 1
        grace = nanoseconds / 1e9
    log_module.configure(config.log.level, config.log.formatter, config.log.fields)
    options = gc.Options(
        dry_run=args.dry_run, delete_untagged=args.delete_untagged, online=args.online, grace=grace
    )
    emit = (lambda line: None) if args.quiet else (lambda line: print(line, flush=True))
    cache = cache_factory.shared(config)
    try:
        if not args.online:
            report = gc.collect(store, options, emit, cache=cache)
        else:
            lease = maintenance.make_lease(config, store)
            with leases.holding(lease, strict=True) as held:
                if not held():
                    print(
                        "failed to garbage collect: another registry holds the maintenance "
                        "lease; try again later",
                        file=sys.stderr,
                    )
                    return 1
                report = gc.collect(store, options, emit, proceed=held, cache=cache)
        if not args.dry_run:  # for the running registry's usage figures
            usage.note_changed(config, store, report.changed)
    except (gc.GCError, driver.StorageDriverError) as err:
        print(f"failed to garbage collect: {err}", file=sys.stderr)
        return 1
    except leases.LeaseUnreachable as err:
        print(
            f"failed to garbage collect: cannot take the maintenance lease: {err}", file=sys.stderr
        )
        return 1
    except BrokenPipeError:  # output piped to ``head``: stop, as Go does on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    emit(report.summary(args.dry_run))
    return 0


def _add_access(commands: argparse._SubParsersAction) -> None:
    access = commands.add_parser(
        "access", help="access rules: check a decision offline", description="Access rules."
    )
    access.set_defaults(access_parser=access)
    checks = access.add_subparsers(dest="access_command", metavar="COMMAND")
    check = checks.add_parser(
        "check",
        help="say whether USER may do ACTION on REPOSITORY, and the rule that decides",
        description="Say whether USER may do ACTION on REPOSITORY under the access rules of "
        "CONFIG (or of the file its access.path names), and which rule decides, as the "
        "registry would for a request. Exit status: 0 allowed, 1 denied, 2 error.",
    )
    check.add_argument("config", metavar="CONFIG", help="config.yml")
    check.add_argument("user", metavar="USER", help="a user name, or - for anonymous")
    check.add_argument("repository", metavar="REPOSITORY", help="a repository name")
    check.add_argument(
        "action",
        metavar="ACTION",
        choices=access_rules.ACTIONS,
        help=f"one of {', '.join(access_rules.ACTIONS)} (a push also needs pull, as in the API)",
    )


def access_check(args: argparse.Namespace) -> int:
    """``registry access check``: ``allowed``/``denied`` and the rule on stdout; 0, 1 or 2."""
    log_module.configure("error")
    try:
        config = config_module.load(args.config)
        source = access_rules.PolicySource.from_config(config)
    except ConfigError as err:
        print(f"registry: configuration error: {err}", file=sys.stderr)
        return 2
    try:
        reference.check_name(args.repository)
    except errors.NameInvalid:
        print(f"registry: not a repository name: {args.repository!r}", file=sys.stderr)
        return 2
    policy = source.current()
    if policy.mode is access_rules.Mode.TOKEN:
        print(
            "registry: with auth: token the token's claims decide; there is nothing to check "
            "offline",
            file=sys.stderr,
        )
        return 2
    identity = access_rules.Identity(None if args.user == "-" else args.user)
    _warn_unknown_user(config, identity)
    actions = ["pull", "push"] if args.action == "push" else [args.action]
    decision = policy.decide_all(identity, args.repository, actions)
    verdict = "allowed" if decision.allowed else "denied"
    may = "may" if decision.allowed else "may not"
    print(f"{verdict}: {identity} {may} {args.action} {args.repository} (rule: {decision.rule})")
    return 0 if decision.allowed else 1


def _warn_unknown_user(config: Configuration, identity: access_rules.Identity) -> None:
    """A note on stderr when USER is not in the htpasswd file: rules cannot tell."""
    path = config.auth.parameters.get("path") if config.auth.type == "htpasswd" else None
    if identity.user is None or not isinstance(path, str):
        return
    try:
        with open(path, "rb") as file:
            users, _ = htpasswd.parse(file.read())
    except OSError as err:
        print(f"note: cannot read {path}: {err.strerror}", file=sys.stderr)
        return
    if identity.user not in users:
        print(f"note: {identity.user} is not a user of {path}", file=sys.stderr)
