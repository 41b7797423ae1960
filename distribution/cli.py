"""The ``registry`` command: ``serve`` (and, later, maintenance subcommands)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import secrets
import sys
from collections.abc import Sequence

from distribution import __version__, server
from distribution import config as config_module
from distribution import log as log_module
from distribution.config import ConfigError, Configuration
from distribution.storage import driver

#: The embedded default's storage root, as in the Go registry's image.
DEFAULT_ROOT = "/var/lib/registry"
#: Where the embedded default stores data when ``DEFAULT_ROOT`` cannot be written.
LOCAL_ROOT = "registry-data"

log = logging.getLogger("distribution.cli")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (None, "help"):
        parser.print_help()
        return 0
    log_module.configure()
    try:
        config = prepare(args.config or os.environ.get("REGISTRY_CONFIGURATION_PATH") or None)
    except ConfigError as err:
        print(f"registry: configuration error: {err}", file=sys.stderr)
        return 1
    log_module.configure(config.log.level, config.log.formatter, config.log.fields)
    server.RegistryServer(config).run()
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
    if config.auth.type:
        raise ConfigError(
            "auth",
            f"{config.auth.type} access control is not implemented yet; refusing to serve "
            "without it (remove the auth section to run an open registry)",
        )
    server.check(config)
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
    commands.add_parser("help", help="show this help")
    return parser
