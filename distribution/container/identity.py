"""Whom the registry runs as in its container: the owner of its data, with no privileges.

The image starts as root, as the Go image does, and its entry point asks this module which
user and group the registry should run as; ``setpriv`` then drops to them with every capability
gone and no way back (``no_new_privs``). The rule keeps what works with the Go image working:

- The owner of the storage root decides (the filesystem driver's ``rootdirectory``, or its
  nearest existing parent). The image's own volume belongs to ``registry`` (uid 1000): the
  registry runs unprivileged. A directory you own: as you. A directory root owns (a
  ``/mnt/registry`` made with sudo, a volume the Go image wrote): as uid 0, but without any
  capability, so it writes what root owns there and nothing else (no chown, no bypassing file
  permissions, no raw sockets, no mounts...). No file's owner is ever changed, with one
  exception below.
- Without a local storage root (a cloud driver, ``inmemory``): as ``registry``.
- A file the configuration names that only root may read (a 0600 TLS key made by root, as
  openssl and certbot make them) is read by uid 0 without capabilities, as the Go image reads
  it: when the storage root is a new, empty volume of the image's, it is handed to root first.
- Whoever is chosen must be able to read every file the configuration names and write the
  storage root and the Let's Encrypt folder; otherwise start-up stops with one line naming the
  file and what to do.

The one capability kept is ``NET_BIND_SERVICE``, and only when the registry listens on a port
below 1024 (the guide's ``REGISTRY_HTTP_ADDR=0.0.0.0:443``).

Usage, from the entry point: ``python -m distribution.container.identity --user registry --
registry serve CONFIG``; prints ``UID GID CAPS`` (``CAPS`` is ``,+net_bind_service`` or empty).
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import stat
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from distribution import config as config_module
from distribution.config import ConfigError, Configuration

#: The filesystem driver's root when its parameters name none.
DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
#: Subcommands of ``registry`` that read a configuration, and their options taking a value.
CONFIGURED_COMMANDS = {"serve": set(), "garbage-collect": {"--grace-period"}}
#: The capability kept for a listen port below 1024, in setpriv's syntax.
BIND_LOW_PORTS = ",+net_bind_service"


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int

    def __str__(self) -> str:
        return f"uid {self.uid}" + (" (root, without capabilities)" if self.uid == 0 else "")


ROOT = Identity(0, 0)


@dataclass(frozen=True)
class Need:
    """A path the registry must ``read`` (a file) or ``write`` (a directory it creates in)."""

    path: str
    access: str  # "read" or "write"
    key: str  # the configuration key that names it


class Refusal(Exception):
    """No identity without privileges can use every file: the message says which and why."""


def choose(config: Configuration, config_path: str | None, fallback: Identity) -> Identity:
    """The identity for ``config`` (see the module's rules); may hand an empty volume to root."""
    needs = needs_of(config, config_path)
    root = storage_root(config)
    if root is None:
        owner = fallback
    else:
        info = os.stat(_existing(root))
        owner = Identity(info.st_uid, info.st_gid)
    failed = unmet(owner, needs)
    if not failed:
        return owner
    # Root without capabilities may help with other files, never with the owner's own root.
    others = [need for need in needs if need.path != root]
    if owner != ROOT and root not in {n.path for n in failed} and not unmet(ROOT, others):
        if root is None:
            return ROOT
        if owner == fallback and _is_empty_dir(root):
            try:
                os.chown(root, 0, 0)
            except OSError as err:
                raise Refusal(
                    f"registry: cannot start: cannot take {root}: {err.strerror}"
                ) from None
            return ROOT
    need = failed[0]
    why = f"as {owner}" + (f", the owner of {root}," if root is not None else "")
    raise Refusal(
        f"registry: cannot start: {why} it cannot {need.access} {need.path} ({need.key}; "
        f"{_describe(need.path)}). Make it {need.access}able by uid {owner.uid}, or give the "
        f"storage root ({root or 'none'}) the owner that can, or run with --user."
    )


def needs_of(config: Configuration, config_path: str | None) -> list[Need]:
    """Every path the registry reads or writes by the configuration."""
    http, parameters = config.http, config.auth.parameters
    reads = [
        ("configuration file", config_path),
        ("http.tls.certificate", http.tls.certificate),
        ("http.tls.key", http.tls.key),
        *(("http.tls.clientcas", path) for path in http.tls.clientcas),
        ("redis.tls.certificate", config.redis.tls.certificate),
        ("redis.tls.key", config.redis.tls.key),
        *(("redis.tls.clientcas", path) for path in config.redis.tls.clientcas),
    ]
    if config.auth.type == "token":
        reads += [("auth.token.rootcertbundle", parameters.get("rootcertbundle"))]
        reads += [("auth.token.jwks", parameters.get("jwks"))]
    if config.storage.driver == "gcs":
        reads += [("storage.gcs.keyfile", config.storage.parameters.get("keyfile"))]
    for i, middleware in enumerate(config.middleware.get("storage", ())):
        if middleware.name == "cloudfront":
            key = f"middleware.storage[{i}].options.privatekey"
            reads += [(key, middleware.options.get("privatekey"))]
    reads += [("access.path", config.access.get("path"))]
    needs = [Need(path, "read", key) for key, path in reads if isinstance(path, str) and path]
    if config.auth.type == "htpasswd" and isinstance(parameters.get("path"), str):
        path = parameters["path"]
        # A missing file is created (with a random password for user docker), as Go does.
        needs.append(
            Need(path, "read", "auth.htpasswd.path")
            if os.path.exists(path)
            else Need(_existing(path), "write", "auth.htpasswd.path")
        )
    if http.tls.letsencrypt.cachefile:  # the registry makes the folder and writes into it
        folder = _existing(http.tls.letsencrypt.cachefile)
        needs.append(Need(folder, "write", "http.tls.letsencrypt.cachefile"))
    root = storage_root(config)
    if root is not None:
        needs.append(Need(root, "write", "storage.filesystem.rootdirectory"))
    return needs


def storage_root(config: Configuration) -> str | None:
    if config.storage.driver != "filesystem":
        return None
    root = config.storage.parameters.get("rootdirectory") or DEFAULT_ROOTDIRECTORY
    return os.path.abspath(str(root))


def unmet(identity: Identity, needs: Sequence[Need]) -> list[Need]:
    """The needs ``identity`` cannot meet without capabilities, asked of the kernel itself
    (ownership, modes, ACLs, read-only mounts) by a shell running as that identity."""
    if not needs:
        return []
    script = (
        "for need do path=${need#?:}; case $need in "
        'r:*) [ -r "$path" ] || echo "$need";; '
        'w:*) { [ -w "$path" ] && [ -x "$path" ]; } || echo "$need";; esac; done'
    )
    arguments = [
        f"{n.access[0]}:{_existing(n.path) if n.access == 'write' else n.path}" for n in needs
    ]
    done = subprocess.run(
        [
            *("setpriv", f"--reuid={identity.uid}", f"--regid={identity.gid}", "--clear-groups"),
            *("--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"),
            *("--", "sh", "-c", script, "sh", *arguments),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    failed = set(done.stdout.splitlines())
    return [need for need, argument in zip(needs, arguments, strict=True) if argument in failed]


def capabilities(config: Configuration) -> str:
    """``BIND_LOW_PORTS`` if the registry listens on a TCP port below 1024, else nothing."""
    addresses = [config.http.addr] if config.http.net == "tcp" else []
    addresses += [config.http.debug.addr] if config.http.debug.addr else []
    for address in addresses:
        port = address.rpartition(":")[2]
        if port.isdigit() and int(port) < 1024:
            return BIND_LOW_PORTS
    return ""


def config_path(argv: Sequence[str]) -> tuple[bool, str | None]:
    """Whether ``registry ARGS`` reads a configuration, and the file it names (None: the
    ``REGISTRY_CONFIGURATION_PATH`` variable's, else the built-in default), as the CLI reads it."""
    if len(argv) < 2 or argv[1] not in CONFIGURED_COMMANDS:
        return False, None
    takes_value = CONFIGURED_COMMANDS[argv[1]]
    rest = iter(argv[2:])
    for argument in rest:
        if argument in takes_value:
            next(rest, None)
        elif not argument.startswith("-"):
            return True, argument
    return True, os.environ.get("REGISTRY_CONFIGURATION_PATH") or None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distribution.container.identity")
    parser.add_argument("--user", required=True, help="the user of the image's own volume")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="registry and its arguments")
    args = parser.parse_args(argv)
    logging.disable(logging.WARNING)  # the registry warns about its configuration itself
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    account = pwd.getpwnam(args.user)
    fallback = Identity(account.pw_uid, account.pw_gid)
    configured, path = config_path(command)
    if not configured:
        print(fallback.uid, fallback.gid, "")
        return 0
    try:
        config = config_module.load(path)
    except ConfigError:  # the registry says what is wrong, in its own words
        print(fallback.uid, fallback.gid, "")
        return 0
    try:
        identity = choose(config, path, fallback)
    except Refusal as refusal:
        print(refusal, file=sys.stderr)
        return 1
    print(identity.uid, identity.gid, capabilities(config))
    return 0


def _existing(path: str) -> str:
    """``path`` or, if it does not exist yet, its nearest existing parent."""
    path = os.path.abspath(path)
    while not os.path.lexists(path) and path != os.path.dirname(path):
        path = os.path.dirname(path)
    return path


def _is_empty_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode) and not os.listdir(path)
    except OSError:
        return False


def _describe(path: str) -> str:
    try:
        info = os.stat(path)
    except OSError as err:
        return err.strerror or str(err)
    return f"owner uid {info.st_uid}, group {info.st_gid}, mode {stat.S_IMODE(info.st_mode):04o}"


if __name__ == "__main__":
    raise SystemExit(main())
