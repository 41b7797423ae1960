"""Delegated token auth (``auth: token``): Bearer JWTs from a token server the registry trusts.

The flow docker and skopeo follow: a request without a token gets 401 and
``WWW-Authenticate: Bearer realm=...,service=...,scope=...``; the client asks the realm (the
token server) for a token with that scope and retries with ``Authorization: Bearer <jwt>``.
A token counts when it is signed (``signingalgorithms``, default all of Go's; never ``none``)
by a trusted key (:mod:`distribution.auth.keys`): an asymmetric algorithm with a key of
``rootcertbundle`` or ``jwks``, or an HMAC (HS256/384/512, as Go 3 allows) with a symmetric
``oct`` key of ``jwks`` named by the token's ``kid`` and nothing else, so a public key is never
taken for an HMAC secret. It names our ``issuer``
and, in ``aud``, our ``service``, and is within ``exp``/``nbf`` give or take :data:`LEEWAY`.
Its ``access`` claim lists what its subject may do. A bad token is 401 with
``error="invalid_token"``; a good one without the rights asked for is 403 ``DENIED`` (Go
answers 401 ``insufficient_scope``; a 403 tells the client that a new token will not help).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import jwt
from cryptography import x509

from distribution.auth import keys
from distribution.auth.base import (
    Access,
    AccessController,
    Forbidden,
    Grant,
    Unauthenticated,
    authorization,
    quoted,
    scope,
    string_option,
)
from distribution.config import ConfigError

#: Seconds of clock skew allowed on ``exp`` and ``nbf``, as Go's ``token.Leeway``.
LEEWAY = 60
#: The HMAC algorithms: verified only with a ``kty: oct`` key of ``jwks`` named by ``kid``.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
#: The algorithms a token may be signed with, as Go's ``signingalgorithms`` names them.
ALGORITHMS = (
    "EdDSA", *HMAC_ALGORITHMS,
    "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
)  # fmt: skip
DEFAULT_AUTOREDIRECT_PATH = "/auth/token"

log = logging.getLogger(__name__)


class InvalidToken(Exception):
    """The token cannot be trusted; the message says why (for the log only)."""


def from_parameters(parameters: Mapping[str, Any]) -> TokenController:
    """Build the controller, reading the key files; ConfigError names the bad key."""
    section = "auth.token"
    autoredirect = parameters.get("autoredirect", False)
    if not isinstance(autoredirect, bool):
        raise ConfigError(f"{section}.autoredirect", "must be true or false")
    realm = string_option(parameters, "realm", section)
    if not autoredirect:
        url = urlsplit(realm)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"{section}.realm", f"must be an http(s) URL, got {realm!r}")
    redirect_path = parameters.get("autoredirectpath") or DEFAULT_AUTOREDIRECT_PATH
    if not isinstance(redirect_path, str) or not redirect_path.startswith("/"):
        raise ConfigError(f"{section}.autoredirectpath", "must be a path starting with /")
    bundle = _read_optional(parameters, "rootcertbundle", keys.load_bundle)
    jwks = _read_optional(parameters, "jwks", keys.load_jwks)
    secrets = _read_optional(parameters, "jwks", keys.load_jwks_secrets)
    if bundle is None and jwks is None:
        raise ConfigError(section, "rootcertbundle or jwks must be set")
    algorithms = parameters.get("signingalgorithms") or list(ALGORITHMS)
    if not isinstance(algorithms, list) or not all(a in ALGORITHMS for a in algorithms):
        raise ConfigError(
            f"{section}.signingalgorithms", f"must be a list of {', '.join(ALGORITHMS)}"
        )
    return TokenController(
        realm=realm,
        service=string_option(parameters, "service", section),
        issuer=string_option(parameters, "issuer", section),
        roots=bundle or [],
        jwks=jwks or {},
        secrets=secrets or {},
        algorithms=tuple(algorithms),
        autoredirect_path=redirect_path if autoredirect else None,
    )


def check(parameters: Mapping[str, Any]) -> None:
    from_parameters(parameters)


class TokenController(AccessController):
    """Verifies Bearer JWTs and compares their ``access`` claim with the request's needs."""

    def __init__(
        self,
        realm: str,
        service: str,
        issuer: str,
        roots: list[x509.Certificate],
        jwks: Mapping[str, keys.PublicKey],
        algorithms: Sequence[str] = ALGORITHMS,
        autoredirect_path: str | None = None,
        secrets: Mapping[str, bytes] | None = None,
    ) -> None:
        self.realm = realm
        self.secrets = dict(secrets or {})
        self.service = service
        self.issuer = issuer
        self.roots = roots
        self.trusted = keys.trusted_keys(roots, jwks)
        self.algorithms = tuple(algorithms)
        self.autoredirect_path = autoredirect_path

    def authorized(self, headers: Mapping[str, str], accesses: Sequence[Access]) -> Grant:
        found = authorization(headers)
        if found is None or found[0] != "bearer":
            presented = bool(headers.get("Authorization"))
            challenge = self.challenge(headers, accesses)
            raise Unauthenticated(challenge, "no bearer token", presented=presented)
        try:
            claims = self.verify(found[1])
        except InvalidToken as err:
            challenge = self.challenge(headers, accesses, "invalid_token")
            raise Unauthenticated(challenge, f"invalid token: {err}") from None
        user = claims.get("sub") if isinstance(claims.get("sub"), str) else None
        granted = granted_actions(claims.get("access"))
        for access in accesses:
            actions = granted.get((access.type, access.name), set())
            if "*" not in actions and access.action not in actions:
                challenge = self.challenge(headers, accesses, "insufficient_scope")
                raise Forbidden(f"token does not grant {scope([access])}", user, challenge)
        return Grant(user or None)

    def verify(self, raw: str, now: datetime.datetime | None = None) -> dict[str, Any]:
        """The claims of ``raw`` if it is a token we trust; InvalidToken otherwise."""
        now = now or datetime.datetime.now(datetime.UTC)
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as err:
            raise InvalidToken(f"malformed: {err}") from None
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise InvalidToken(f"signing algorithm {algorithm!r} not accepted")
        last: Exception = InvalidToken("no trusted key matches")
        for key in self._candidates(header, now):
            try:
                return jwt.decode(
                    raw,
                    key=key,
                    algorithms=[algorithm],
                    audience=self.service,
                    issuer=self.issuer,
                    leeway=LEEWAY,
                    options={"require": ["exp", "iss", "aud"]},
                )
            except jwt.InvalidSignatureError as err:
                last = err  # another key under the same id may have signed it
            except jwt.PyJWTError as err:
                raise InvalidToken(str(err)) from None
            except Exception as err:
                raise InvalidToken(f"unverifiable: {err!r}") from None
        raise InvalidToken(str(last))

    def challenge(
        self, headers: Mapping[str, str], accesses: Sequence[Access], error: str | None = None
    ) -> str:
        """``Bearer realm=...,service=...[,scope=...][,error=...]`` as Go writes it."""
        value = f"Bearer realm={quoted(self._realm(headers))},service={quoted(self.service)}"
        if accesses:
            value += f",scope={quoted(scope(accesses))}"
        if error:
            value += f",error={quoted(error)}"
        return value

    def _candidates(
        self, header: dict[str, Any], now: datetime.datetime
    ) -> list[keys.PublicKey] | list[bytes]:
        if header.get("alg") in HMAC_ALGORITHMS:
            kid = header.get("kid")
            if "x5c" in header or "jwk" in header or not isinstance(kid, str):
                raise InvalidToken("an HMAC token must name a symmetric key of jwks by kid alone")
            if kid not in self.secrets:
                raise InvalidToken(f"no symmetric key {kid!r} in jwks")
            return [self.secrets[kid]]
        try:
            if "x5c" in header:
                return [keys.verify_chain(header["x5c"], self.roots, now)]
        except keys.UntrustedKey as err:
            raise InvalidToken(str(err)) from None
        if "jwk" in header:
            return keys.jwk_key(header["jwk"], self.trusted)
        kid = header.get("kid")
        if isinstance(kid, str) and kid:
            return self.trusted.get(kid, [])
        raise InvalidToken("the token names no signing key (x5c, jwk or kid)")

    def _realm(self, headers: Mapping[str, str]) -> str:
        """The realm, or with ``autoredirect`` the token path on the host the client used."""
        if self.autoredirect_path is None:
            return self.realm
        scheme = headers.get("X-Forwarded-Proto") or "https"
        return f"{scheme}://{headers.get('Host', '')}{self.autoredirect_path}"


def granted_actions(claim: Any) -> dict[tuple[str, str], set[str]]:
    """The ``access`` claim as ``{(type, name): actions}``; malformed entries grant nothing."""
    granted: dict[tuple[str, str], set[str]] = {}
    if not isinstance(claim, list):
        return granted
    for entry in claim:
        if not isinstance(entry, dict):
            continue
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            granted.setdefault((kind, name), set()).update(a for a in actions if isinstance(a, str))
    return granted


def _read_optional(parameters: Mapping[str, Any], name: str, load: Callable[[bytes], Any]) -> Any:
    path = parameters.get(name)
    if path in (None, ""):
        return None
    key = f"auth.token.{name}"
    if not isinstance(path, str):
        raise ConfigError(key, "must be a file path")
    try:
        with open(path, "rb") as file:
            return load(file.read())
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror}") from None
    except ValueError as err:
        raise ConfigError(key, f"cannot load {path}: {err}") from None
