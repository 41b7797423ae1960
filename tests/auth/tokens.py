"""A throwaway PKI and token server for the token auth tests, made with ``cryptography``.

:class:`Authority` is a root CA, an intermediate CA and a token-signing leaf under it;
:meth:`Authority.mint` signs JWTs as a token server would. :class:`TokenServer` is such a server
over real HTTP: Basic credentials in, a JWT granting the requested scope (cut down to what the
user may do) out, as docker and skopeo expect from a ``realm``.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

ISSUER = "test-token-issuer"
SERVICE = "test-registry"
NOW = datetime.datetime.now(datetime.UTC)


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    subject: str,
    key: Any,
    issuer: tuple[x509.Certificate, Any] | None = None,
    ca: bool = False,
    days: int = 1,
    start: datetime.datetime | None = None,
) -> x509.Certificate:
    """A certificate for ``key``, signed by ``issuer`` (cert, key), self-signed without one."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    start = start or NOW - datetime.timedelta(hours=1)
    issuer_name, signer = (issuer[0].subject, issuer[1]) if issuer else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def der64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@dataclass
class Authority:
    """Root CA -> intermediate CA -> signing leaf; the bundle a registry trusts is the root."""

    root_key: Any = field(default_factory=rsa_key)
    leaf_key: Any = field(default_factory=rsa_key)

    def __post_init__(self) -> None:
        self.root = certificate("Test Root CA", self.root_key, ca=True)
        self.intermediate_key = rsa_key()
        self.intermediate = certificate(
            "Test Intermediate CA", self.intermediate_key, (self.root, self.root_key), ca=True
        )
        self.leaf = certificate(
            "Test Token Signer", self.leaf_key, (self.intermediate, self.intermediate_key)
        )

    @property
    def algorithm(self) -> str:
        return "ES256" if isinstance(self.leaf_key, ec.EllipticCurvePrivateKey) else "RS256"

    @property
    def x5c(self) -> list[str]:
        return [der64(self.leaf), der64(self.intermediate)]

    def write_bundle(self, directory: Path) -> Path:
        path = directory / "root-bundle.pem"
        path.write_bytes(pem(self.root))
        return path

    def claims(self, access: list[dict] | None = None, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "alice",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 5,
            "iat": now - 5,
            "jti": uuid.uuid4().hex,
            "access": access if access is not None else [],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        access: list[dict] | None = None,
        headers: Mapping[str, Any] | None = None,
        key: Any = None,
        **claims: Any,
    ) -> str:
        """A JWT signed by the leaf (or ``key``), carrying ``x5c`` unless ``headers`` say."""
        header = {"x5c": self.x5c} if headers is None else dict(headers)
        return jwt.encode(
            self.claims(access, **claims),
            key or self.leaf_key,
            algorithm=header.pop("alg", self.algorithm),
            headers=header,
        )


def repository(name: str, *actions: str) -> dict[str, Any]:
    return {"type": "repository", "name": name, "actions": list(actions)}


class TokenServer:
    """A real token endpoint at ``/token``: Basic auth against ``users``, scope cut to rights.

    ``users`` maps a name to ``(password, {repository: actions})``; ``"*"`` as a repository
    covers every repository.
    """

    def __init__(
        self, authority: Authority, users: Mapping[str, tuple[str, Mapping[str, list[str]]]]
    ) -> None:
        self.authority = authority
        self.users = users
        self.requests: list[dict[str, Any]] = []
        handler = self._handler()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def issue(self, user: str | None, scopes: list[str]) -> str:
        rights = self.users[user][1] if user else {}
        access = []
        for requested in scopes:
            kind, _, rest = requested.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = rights.get(name, rights.get("*", [])) if kind == "repository" else []
            granted = [a for a in actions.split(",") if a in allowed]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        return self.authority.mint(access, sub=user or "")

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                user = self._user()
                server.requests.append({"user": user, "query": query})
                if url.path != "/token" or user is False:
                    self._reply(401, {"details": "bad credentials"})
                    return
                token = server.issue(user, query.get("scope", []))
                self._reply(200, {"token": token, "access_token": token, "expires_in": 300})

            def _user(self) -> str | bool | None:
                """The authenticated user, None when anonymous, False when refused."""
                header = self.headers.get("Authorization", "")
                if not header.lower().startswith("basic "):
                    return None
                name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                known = server.users.get(name)
                return name if known and known[0] == password else False

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
