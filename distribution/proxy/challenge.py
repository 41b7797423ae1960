"""Pure parsing for the upstream's authentication: challenges and token responses.

A registry that wants a token answers ``401`` with ``WWW-Authenticate: Bearer realm="...",
service="...",scope="..."``; the client fetches a token from ``realm`` and retries with it
(the Docker Hub flow, which Go's proxy follows through ``internal/client/auth``). Whether the
configured credentials may go with that request is :func:`realm_allowed`'s to say.
"""

from __future__ import annotations

import ipaddress
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Seconds a token lives when the token server does not say (the Docker token spec's default).
DEFAULT_TOKEN_LIFETIME = 60.0
#: Seconds before its expiry a cached token is no longer handed out.
EXPIRY_MARGIN = 5.0

_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One authentication scheme the upstream asked for, with its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` header, schemes in lower case.

    Several challenges may share one header (``Bearer realm="a", Basic realm="b"``); a scheme
    starts wherever a token is followed by a space instead of ``=``.
    """
    found: list[Challenge] = []
    rest = header.strip()
    while rest:
        scheme, _, rest = rest.partition(" ")
        scheme = scheme.strip().rstrip(",")
        params: dict[str, str] = {}
        while rest:
            match = _PARAM.match(rest)
            if match is None:
                break
            quoted, bare = match[2], match[3]
            params[match[1].lower()] = (
                re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else bare
            )
            rest = rest[match.end() :]
        if scheme:
            found.append(Challenge(scheme.lower(), params))
        rest = rest.strip()
    return found


def bearer(challenges: list[Challenge]) -> Challenge | None:
    """The Bearer challenge with a realm, if the upstream offered one."""
    for challenge in challenges:
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return challenge
    return None


@dataclass(frozen=True)
class Token:
    """A bearer token and the monotonic time after which it is not used any more."""

    value: str
    expires: float

    def valid(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) < self.expires


def parse_token(document: Any, now: float | None = None) -> Token:
    """The token of a token server's JSON answer: ``token`` (or OAuth's ``access_token``) and
    ``expires_in`` seconds (60 when absent or not positive). Raises ``ValueError``."""
    if not isinstance(document, dict):
        raise ValueError("token response is not a JSON object")
    value = document.get("token") or document.get("access_token")
    if not isinstance(value, str) or not value:
        raise ValueError("token response has no token")
    lifetime = document.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    start = time.monotonic() if now is None else now
    return Token(value, start + max(float(lifetime) - EXPIRY_MARGIN, 1.0))


def realm_allowed(upstream: str, realm: str) -> bool:
    """Whether the proxy's credentials may go to the token server ``realm`` of ``upstream``.

    As distribution 3.1 decides, and stricter: the upstream's own host (over HTTPS, or over
    the scheme the upstream was configured with); otherwise only HTTPS on the same registrable
    domain (``auth.docker.io`` for ``registry-1.docker.io``), and never an IP address or
    ``localhost`` that is not the upstream's own host.
    """
    try:
        base, target = urlsplit(upstream), urlsplit(realm)
        base_host, target_host = base.hostname, target.hostname
        target.port  # noqa: B018 - raises ValueError for a port that is no number
    except ValueError:
        return False
    if not base_host or not target_host or target.scheme not in ("http", "https"):
        return False
    if target_host == base_host:
        return target.scheme in ("https", base.scheme)
    if target.scheme != "https" or _literal_or_local(base_host) or _literal_or_local(target_host):
        return False
    domain = _registrable_domain(target_host)
    return domain is not None and domain == _registrable_domain(base_host)


def pull_scope(name: str) -> str:
    """The token scope to read repository ``name``, as Go's proxy asks for it."""
    return f"repository:{name}:pull"


def _literal_or_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _registrable_domain(host: str) -> str | None:
    """The public suffix plus one label (``docker.io``), from the Public Suffix List."""
    from publicsuffixlist import PublicSuffixList  # only a proxy with a token server needs it

    global _suffixes
    if _suffixes is None:
        _suffixes = PublicSuffixList()
    return _suffixes.privatesuffix(host.lower().rstrip("."))


_suffixes: Any = None
