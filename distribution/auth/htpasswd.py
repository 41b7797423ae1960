"""Basic authentication against an Apache htpasswd file of bcrypt entries (``auth: htpasswd``).

As in the Go registry: ``realm`` and ``path`` are required; any user in the file may do
anything (the file holds no per-repository rights); the file is re-read when it changes, with
no restart; a file missing at start-up is created with user ``docker`` and a random password
logged once (Go 2.8 does the same, see :func:`ensure_file`).

Where we differ: only bcrypt entries count (another hash is ignored with a warning naming its
line, where Go would fail every login; so is a cost outside bcrypt's 4 to 31, which Go's bcrypt
refuses to check); every refusal takes as long as a check at the file's highest bcrypt cost
(up to :data:`DECOY_MAX_COST`), for a known user with a cheaper hash and an unknown one alike,
so timing tells nobody which names exist; and verified credentials are cached in the process
for :data:`CACHE_TTL` seconds, since bcrypt is slow by design and a push sends the same
credentials with every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from distribution import log as log_module
from distribution.auth.base import (
    Access,
    AccessController,
    Grant,
    Unauthenticated,
    authorization,
    quoted,
    string_option,
)
from distribution.config import ConfigError

#: A bcrypt hash in modular crypt format: ``$2y$``, ``$2a$`` or ``$2b$``, cost, salt and hash.
BCRYPT = re.compile(rb"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")
#: The costs bcrypt (Go's and ours) can check; a hash outside them can never log in.
MIN_COST, MAX_COST = 4, 31
#: The decoy checked for unknown users costs at most this: each step doubles a check's time,
#: and a decoy at cost 31 would take hours to make.
DECOY_MAX_COST = 14
#: The decoy's cost while the file holds no user (as Go's ``DefaultCost``).
DECOY_DEFAULT_COST = 10
#: Seconds a verified user and password is believed without another bcrypt check.
CACHE_TTL = 60.0
#: Most cached credentials per process; the cache is emptied when full.
CACHE_SIZE = 1024
#: The user a created file holds, as Go provisions it.
DEFAULT_USER = "docker"
#: ``base64(":")``: the Basic credentials of a client that has none.
EMPTY_BASIC = "Og=="
#: bcrypt only reads this many bytes of a password.
BCRYPT_MAX_PASSWORD = 72

log = logging.getLogger(__name__)


def from_parameters(parameters: Mapping[str, Any]) -> HtpasswdController:
    return HtpasswdController(
        realm=string_option(parameters, "realm", "auth.htpasswd"),
        path=string_option(parameters, "path", "auth.htpasswd"),
    )


def check(parameters: Mapping[str, Any]) -> None:
    """Start-up check: options set, the file there (created if missing) and readable."""
    path = from_parameters(parameters).path
    try:
        ensure_file(path)
        with open(path, "rb") as file:
            _, warnings = parse(file.read())
    except OSError as err:
        raise ConfigError("auth.htpasswd.path", f"cannot read {path}: {err.strerror}") from None
    for warning in warnings:
        log.warning("htpasswd %s: %s", path, warning)


def ensure_file(path: str) -> None:
    """Create a missing htpasswd file holding user ``docker`` with a random password.

    The password is logged once, by the process that starts the server (Go 2.8 behaviour).
    ``O_EXCL`` keeps two replicas starting together from both writing it.
    """
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    password = secrets.token_urlsafe(32)
    bcrypt = _bcrypt()
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(10))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as file:
        file.write(DEFAULT_USER.encode() + b":" + hashed + b"\n")
    log.warning(
        "htpasswd is missing, provisioning with default user",
        extra={log_module.FIELDS: {"user": DEFAULT_USER, "password": password, "path": path}},
    )


def parse(content: bytes) -> tuple[dict[str, bytes], list[str]]:
    """``user:hash`` lines into ``{user: bcrypt hash}``, and a warning per ignored line.

    Blank lines and ``#`` comments are skipped; a repeated user keeps its last entry, as Go.
    """
    users: dict[str, bytes] = {}
    warnings: list[str] = []
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        name, colon, hashed = line.partition(b":")
        try:
            user = name.decode()
        except UnicodeDecodeError:
            user = ""
        if not colon or not user:
            warnings.append(f"line {number}: not a user:hash entry, ignored")
        elif not (found := BCRYPT.fullmatch(hashed.strip())):
            warnings.append(
                f"line {number}: user {user!r} has no bcrypt hash ($2y$, $2a$ or $2b$), ignored"
            )
        elif not MIN_COST <= int(found[1]) <= MAX_COST:
            warnings.append(
                f"line {number}: user {user!r} has bcrypt cost {int(found[1])}, outside "
                f"{MIN_COST} to {MAX_COST}, ignored"
            )
        else:
            users[user] = hashed.strip()
    return users, warnings


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, bytes] | None:
    """``(user, password)`` from a well-formed ``Authorization: Basic`` header, else None."""
    found = authorization(headers)
    if found is None or found[0] != "basic":
        return None
    try:
        decoded = base64.b64decode(found[1], validate=True)
        name, colon, password = decoded.partition(b":")
        user = name.decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    if not colon or not user:
        return None
    return user, password


class HtpasswdController(AccessController):
    """Users and bcrypt hashes from ``path``, re-read whenever the file changes."""

    def __init__(
        self,
        realm: str,
        path: str,
        cache_ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.realm = realm
        self.path = path
        self.challenge = f"Basic realm={quoted(realm)}"
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, bytes] = {}
        self._version: tuple[int, int, int] | str | None = None
        self._generation = 0
        #: The cost of the decoy for the file as read (see :meth:`_decoy`).
        self._decoy_cost = DECOY_DEFAULT_COST
        self._decoys: dict[int, _Decoy] = {}
        #: ``HMAC(user, password)`` -> (expiry, generation); the key never leaves the process.
        self._cache: dict[bytes, tuple[float, int]] = {}
        self._cache_key = secrets.token_bytes(32)
        _bcrypt()  # now, in gunicorn's master, so that the workers share it

    def authorized(self, headers: Mapping[str, str], accesses: Sequence[Access]) -> Grant:
        credentials = basic_credentials(headers)
        if credentials is None:
            if not headers.get("Authorization") or _empty_basic(headers):
                raise Unauthenticated(self.challenge, "no credentials", presented=False)
            raise Unauthenticated(self.challenge, "malformed or non-Basic authorization header")
        user, password = credentials
        if not self.authenticate(user, password):
            raise Unauthenticated(self.challenge, "invalid user or password", user)
        return Grant(user)

    def authenticate(self, user: str, password: bytes) -> bool:
        """True if the file's current entry for ``user`` matches ``password``."""
        users, generation = self._current()
        key = hmac.new(self._cache_key, user.encode() + b"\0" + password, hashlib.sha256).digest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now and cached[1] == generation:
            return True
        hashed = users.get(user)
        started = time.monotonic()
        if hashed is not None and _bcrypt().checkpw(password[:BCRYPT_MAX_PASSWORD], hashed):
            with self._lock:
                if len(self._cache) >= CACHE_SIZE:
                    self._cache.clear()
                self._cache[key] = (now + self._cache_ttl, generation)
            return True
        decoy = self._decoy()
        if hashed is None:
            _bcrypt().checkpw(password[:BCRYPT_MAX_PASSWORD], decoy.hashed)
        time.sleep(max(0.0, decoy.seconds - (time.monotonic() - started)))
        return False

    def entry_version(self, user: str) -> str | None:
        """A digest of ``user``'s entry as the file has it now, None if there is none: the web
        UI's sessions end when it changes (a new password, a removed user)."""
        hashed = self._current()[0].get(user)
        return None if hashed is None else hashlib.sha256(hashed).hexdigest()[:32]

    def _current(self) -> tuple[dict[str, bytes], int]:
        """The users of the file as it is now, re-read if its mtime, size or inode changed.

        A file that vanished or cannot be read lets nobody in (logged once), until it is back.
        """
        version = self._stat()
        if version == self._version:
            return self._users, self._generation
        with self._lock:
            if version == self._version:
                return self._users, self._generation
            users: dict[str, bytes] = {}
            if isinstance(version, tuple):
                try:
                    with open(self.path, "rb") as file:
                        users, warnings = parse(file.read())
                except OSError as err:
                    version = f"cannot read {self.path}: {err.strerror}"
                else:
                    for warning in warnings:
                        log.warning("htpasswd %s: %s", self.path, warning)
            if isinstance(version, str):
                log.error("htpasswd: %s; refusing every login until it is readable", version)
            self._decoy_cost = _decoy_cost(users)
            self._users, self._version = users, version
            self._generation += 1
            self._cache.clear()
            return self._users, self._generation

    def _stat(self) -> tuple[int, int, int] | str:
        """What identifies the file's content: ``(mtime, size, inode)``, or why it is missing."""
        try:
            stat = os.stat(self.path)
        except OSError as err:
            return f"cannot stat {self.path}: {err.strerror}"
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def _decoy(self) -> _Decoy:
        """The decoy at the current file's cost, made on the first refusal that needs it.

        Made outside ``_lock`` and only for refusals, so no login waits for it; once per cost
        per process (two threads may both make the first one: it is only a second's work).
        """
        cost = self._decoy_cost
        decoy = self._decoys.get(cost)
        if decoy is None:
            decoy = self._decoys[cost] = _Decoy.make(cost)
        return decoy


@dataclass(frozen=True)
class _Decoy:
    """A hash of nothing, checked for unknown users, and the seconds a check of it takes:
    every refusal lasts at least as long."""

    hashed: bytes
    seconds: float

    @classmethod
    def make(cls, cost: int) -> _Decoy:
        bcrypt = _bcrypt()
        hashed = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(cost))
        started = time.monotonic()
        bcrypt.checkpw(b"", hashed)
        return cls(hashed, time.monotonic() - started)


def _decoy_cost(users: Mapping[str, bytes]) -> int:
    """The highest cost among ``users`` (all within bcrypt's range), capped at
    :data:`DECOY_MAX_COST`."""
    costs = [int(found[1]) for hashed in users.values() if (found := BCRYPT.fullmatch(hashed))]
    return min(max(costs, default=DECOY_DEFAULT_COST), DECOY_MAX_COST)


def _empty_basic(headers: Mapping[str, str]) -> bool:
    """``Basic Og==`` (empty user and password): what podman and skopeo send, after a Basic
    challenge, when they hold no credentials. It asks for nothing more than no header does."""
    found = authorization(headers)
    return found is not None and found[0] == "basic" and found[1] == EMPTY_BASIC


def _bcrypt() -> ModuleType:
    """bcrypt, imported when first used: the web UI imports this module in every registry,
    and bcrypt costs each process 0.5 MiB that only a registry with ``auth: htpasswd`` needs."""
    import bcrypt

    return bcrypt
