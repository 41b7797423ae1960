"""The access controller contract, the access items it checks, and its two refusals."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from distribution.config import ConfigError

#: The ``app.extensions`` key holding the application's controller (None without auth).
EXTENSION = "auth"

#: Longest ``Authorization`` header looked at; anything longer is refused unread.
MAX_AUTHORIZATION = 32 * 1024


@dataclass(frozen=True)
class Access:
    """One action on one resource: ``repository:<name>:pull``, ``registry:catalog:*``."""

    type: str
    name: str
    action: str

    def to_dict(self) -> dict[str, str]:
        """The error ``detail`` entry, shaped as Go's ``auth.Access`` marshals."""
        return {"Type": self.type, "Class": "", "Name": self.name, "Action": self.action}


@dataclass(frozen=True)
class Grant:
    """A request allowed through, and who made it."""

    user: str | None


class Unauthenticated(Exception):
    """No usable credentials: 401 ``UNAUTHORIZED`` with ``challenge`` as ``WWW-Authenticate``.

    ``reason`` and ``user`` are for the audit log, never for the client. ``presented`` is
    False for a request that brought no credentials at all: the first step of every client's
    handshake, not an attempt that failed.
    """

    def __init__(
        self, challenge: str, reason: str, user: str | None = None, presented: bool = True
    ) -> None:
        super().__init__(reason)
        self.challenge = challenge
        self.reason = reason
        self.user = user
        self.presented = presented


class Forbidden(Exception):
    """Valid credentials without the rights asked for: 403 ``DENIED``."""

    def __init__(self, reason: str, user: str | None, challenge: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.user = user
        self.challenge = challenge


class AccessController(ABC):
    """Decides whether a request may perform ``accesses``; one instance serves all threads."""

    @abstractmethod
    def authorized(self, headers: Mapping[str, str], accesses: Sequence[Access]) -> Grant:
        """Return the grant, or raise :class:`Unauthenticated` or :class:`Forbidden`.

        ``headers`` looks names up case-insensitively (Werkzeug's ``Headers``). An empty
        ``accesses`` (``GET /v2/``) still needs valid credentials.
        """


def scope(accesses: Sequence[Access]) -> str:
    """The challenge's ``scope``: actions grouped per resource, resources space-separated."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for access in accesses:
        actions = grouped.setdefault((access.type, access.name), [])
        if access.action not in actions:
            actions.append(access.action)
    return " ".join(f"{kind}:{name}:{','.join(acts)}" for (kind, name), acts in grouped.items())


def quoted(value: str) -> str:
    """``value`` as an RFC 7230 quoted-string, as Go's ``%q`` writes plain text."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """The ``Authorization`` header as ``(scheme in lower case, credentials)``, if usable."""
    value = headers.get("Authorization") or ""
    if not value or len(value) > MAX_AUTHORIZATION:
        return None
    scheme, _, credentials = value.strip().partition(" ")
    credentials = credentials.strip()
    if not credentials:
        return None
    return scheme.lower(), credentials


def string_option(parameters: Mapping[str, Any], name: str, key: str) -> str:
    """A required non-empty string parameter; ``key`` is the config key for the error."""
    value = parameters.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key}.{name}", "must be set to a non-empty string")
    return value
