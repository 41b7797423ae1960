"""Where a process gets its policy: the config's ``access:`` section, or the file at ``path``.

The file is re-read when it changes (its mtime, size or inode), as the htpasswd file is, so
rules change with no restart; each worker of each replica notices on its next request. A
file that cannot be read or does not check out keeps the previous rules and logs one line
naming the problem (once per version of the file). At start-up the same problems stop the
registry instead, naming the key.

"The previous rules" are the last this process read. A gunicorn worker starts with the rules
the master read at start-up, which the file may have replaced since: a worker started (or
respawned) while the file is broken has no rules it can trust, and answers 503 until the file
reads again, rather than fall back to older, perhaps more open, rules.

An empty file is an error, not "no rules": an editor that truncates before writing must never
open the registry for a moment. For the same reason a reload never changes the policy's mode:
a file written in place and read half-way may hold only ``immutable:``, which alone would let
every signed-in user do everything. Such a version is refused like a broken one; a restart
applies it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from distribution import config as config_module
from distribution import errors
from distribution.access.policy import Policy, parse
from distribution.config import ConfigError, Configuration

log = logging.getLogger(__name__)

#: The key naming the rules file.
PATH_KEY = "access.path"


class PolicySource:
    """The current :class:`Policy`: fixed, or followed from a file."""

    def __init__(self, policy: Policy, path: str | None = None, auth: str | None = None) -> None:
        self._policy = policy
        self.path = path
        self._auth = auth
        self._lock = threading.Lock()
        self._version = _stat(path) if path else None
        #: The process that read ``_policy``; another one (forked since) cannot fall back on it.
        self._reader = os.getpid()
        #: Why this process has no rules it can trust, when it has none.
        self._untrusted: str | None = None

    @classmethod
    def from_config(cls, config: Configuration) -> PolicySource:
        """The source ``config`` describes; :class:`ConfigError` names what is wrong."""
        section = config.access
        auth = config.auth.type
        path = section.get("path") if section else None
        if path is None:
            return cls(parse(section, auth))
        if not isinstance(path, str) or not path:
            raise ConfigError(PATH_KEY, "must be a file path")
        others = [name for name in section if name != "path"]
        if others:
            raise ConfigError(
                PATH_KEY,
                f"keep the rules either in {path} or in the config, not both "
                f"(found access.{others[0]} too)",
            )
        return cls(read_file(path, auth), path, auth)

    def current(self) -> Policy:
        """The policy to decide with now (a stat of the rules file, if there is one)."""
        if self.path is None:
            return self._policy
        version = _stat(self.path)
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._reload(version)
        if self._untrusted is not None:
            raise errors.Unavailable(detail=self._untrusted)
        return self._policy

    def _reload(self, version: tuple[int, int, int] | str) -> None:
        assert self.path is not None
        self._version = version
        if isinstance(version, str):
            self._refuse(version)
            return
        try:
            policy = read_file(self.path, self._auth)
        except ConfigError as err:
            self._refuse(str(err))
            return
        if policy.mode is not self._policy.mode:
            self._refuse(
                f"{PATH_KEY} {self.path}: this version would switch from {self._policy.mode.value} "
                f"to {policy.mode.value} mode ({policy.describe()}); a reload never changes the "
                "mode, since a file read while it is written could open the registry: restart "
                "the registry to apply it"
            )
            return
        self._policy, self._reader, self._untrusted = policy, os.getpid(), None
        log.info("access rules reloaded from %s: %s", self.path, policy.describe())

    def _refuse(self, problem: str) -> None:
        """The file as it is now cannot be used: keep the previous rules if this process read
        them, else have none."""
        if self._reader == os.getpid():
            log.error("access rules: %s; keeping the previous rules", problem)
            return
        self._untrusted = f"access rules cannot be read: {problem}"
        log.error(
            "access rules: %s; this worker started after the last rules it could read, and "
            "answers 503 until the file reads again",
            problem,
        )


def check(config: Configuration) -> None:
    """The start-up check ``registry serve`` runs: the section (and its file) as a policy."""
    PolicySource.from_config(config)


def read_file(path: str, auth: str | None) -> Policy:
    """The policy in the rules file at ``path``; :class:`ConfigError` names the file and key.

    The file holds the section's keys at its top level; a file whose only key is ``access``
    (the section copied whole from a config file) is read the same way.
    """
    key = f"{PATH_KEY} {path}"
    try:
        with open(path, "rb") as file:
            text = file.read()
    except OSError as err:
        raise ConfigError(key, f"cannot read the rules file: {err.strerror}") from None
    tree = config_module.load_yaml(text, key)
    if tree is None:
        raise ConfigError(key, "the rules file is empty")
    if isinstance(tree, Mapping) and list(tree) == ["access"]:
        tree = tree["access"]
    if isinstance(tree, Mapping) and "path" in tree:
        raise ConfigError(key, "path: a rules file cannot point to another one")
    try:
        return parse(_as_mapping(tree, key), auth, where="")
    except ConfigError as err:
        raise ConfigError(key, f"{err.key}: {err.message}") from None


def _as_mapping(tree: Any, key: str) -> dict[str, Any]:
    if not isinstance(tree, dict):
        raise ConfigError(key, f"the rules file must hold a mapping, got {type(tree).__name__}")
    return tree


def _stat(path: str) -> tuple[int, int, int] | str:
    """What identifies the file's content: ``(mtime, size, inode)``, or why it is missing."""
    try:
        stat = os.stat(path)
    except OSError as err:
        return f"cannot stat {path}: {err.strerror}"
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
