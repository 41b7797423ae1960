"""Trust material for token auth: the root bundle, a JWKS file, key ids, certificate chains.

Pure functions over ``cryptography`` objects. A token names its signing key one of three ways,
as Go's ``registry/auth/token`` reads them: an ``x5c`` chain that must lead to a root of the
bundle, a ``jwk`` that must be one of the trusted keys, or a ``kid`` looked up among them. A
trusted key answers to every id a token server may use for it: the libtrust fingerprint (Go
2.x, docker_auth, GitLab), the RFC 7638 thumbprint (Go 3), the ``kid`` of its JWKS entry, and
for EC keys the thumbprint Go 3 computes from the curve's generator point (a Go bug that token
servers copying its code reproduce). An id only selects candidates; the signature decides.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

#: Longest ``x5c`` chain followed (leaf, intermediates, root).
MAX_CHAIN = 8

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


class UntrustedKey(Exception):
    """The token's signing key is not one we trust (or cannot be read)."""


def load_bundle(content: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ValueError if there is none or one is unreadable."""
    certificates = x509.load_pem_x509_certificates(content)
    if not certificates:
        raise ValueError("no PEM certificate in the bundle")
    return certificates


def load_jwks(content: bytes) -> dict[str, PublicKey]:
    """``{kid: key}`` from a JWKS document (a key without ``kid`` is known by thumbprint)."""
    document = json.loads(content)
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ValueError('expected a JSON object with a non-empty "keys" list')
    keys: dict[str, PublicKey] = {}
    for number, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("kty") == "oct":
            continue  # a shared secret: see load_jwks_secrets
        try:
            key = jwt.PyJWK(entry).key
        except (jwt.PyJWTError, TypeError, ValueError, KeyError) as err:
            raise ValueError(f"keys[{number}]: {err}") from None
        if not isinstance(key, PublicKey):
            raise ValueError(f"keys[{number}]: not an RSA, EC or Ed25519 public key")
        keys[str(entry.get("kid") or thumbprint(key))] = key
    return keys


def load_jwks_secrets(content: bytes) -> dict[str, bytes]:
    """``{kid: secret}`` of the symmetric (``kty: oct``) keys of a JWKS document: the only
    keys an HMAC-signed token (HS256/384/512) may be verified with, each named by its
    ``kid``, so that a public key can never be taken for an HMAC secret."""
    secrets: dict[str, bytes] = {}
    for number, entry in enumerate(json.loads(content).get("keys") or []):
        if not isinstance(entry, dict) or entry.get("kty") != "oct":
            continue
        kid, encoded = entry.get("kid"), entry.get("k")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"keys[{number}]: a symmetric (oct) key needs a kid")
        if not isinstance(encoded, str) or not encoded:
            raise ValueError(f"keys[{number}]: a symmetric (oct) key needs its k")
        try:
            secrets[kid] = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ValueError(f"keys[{number}]: k is not base64url") from None
    return secrets


def key_ids(key: PublicKey) -> set[str]:
    """Every id a token server may put in ``kid`` for ``key``."""
    ids = {libtrust_key_id(key), thumbprint(key)}
    if isinstance(key, ec.EllipticCurvePublicKey):
        ids.add(_go_generator_thumbprint(key))
    return ids


def libtrust_key_id(key: PublicKey) -> str:
    """docker/libtrust's fingerprint: base32 of the first 240 bits of SHA-256(SPKI), in fours."""
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def thumbprint(key: PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, unpadded base64url)."""
    if isinstance(key, rsa.RSAPublicKey):
        numbers = key.public_numbers()
        members = {"e": _b64int(numbers.e), "kty": "RSA", "n": _b64int(numbers.n)}
    elif isinstance(key, ec.EllipticCurvePublicKey):
        size = (key.curve.key_size + 7) // 8
        point = key.public_numbers()
        members = {
            "crv": _CURVES.get(key.curve.name, key.curve.name),
            "kty": "EC",
            "x": _b64(point.x.to_bytes(size, "big")),
            "y": _b64(point.y.to_bytes(size, "big")),
        }
    else:
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(key.public_bytes_raw())}
    return _hash_members(members)


def trusted_keys(
    certificates: Iterable[x509.Certificate], jwks: Mapping[str, PublicKey]
) -> dict[str, list[PublicKey]]:
    """Candidate keys by every id they answer to."""
    found: dict[str, list[PublicKey]] = {}
    for key_id, key in jwks.items():
        for name in {key_id, *key_ids(key)}:
            found.setdefault(name, []).append(key)
    for certificate in certificates:
        key = certificate.public_key()
        if isinstance(key, PublicKey):
            for name in key_ids(key):
                found.setdefault(name, []).append(key)
    return found


def verify_chain(x5c: Any, roots: list[x509.Certificate], now: datetime.datetime) -> PublicKey:
    """The leaf's key, once the ``x5c`` chain (base64 DER, leaf first) leads to a root.

    As Go's ``x509.Verify`` with any key usage: every certificate within its validity,
    intermediates CA certificates, each signed by the next; the root taken from ``roots``.
    """
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_CHAIN:
        raise UntrustedKey("x5c is not a certificate chain")
    try:
        chain = [
            x509.load_der_x509_certificate(base64.b64decode(entry, validate=True)) for entry in x5c
        ]
    except (TypeError, ValueError) as err:
        raise UntrustedKey(f"x5c holds an unreadable certificate: {err}") from None
    leaf, intermediates = chain[0], chain[1:]
    current = leaf
    for _ in range(MAX_CHAIN):
        _check_validity(current, now)
        if current in roots:
            break
        root = _issuer(current, roots, now, intermediate=False)
        if root is not None:
            break
        issuer = _issuer(current, intermediates, now, intermediate=True)
        if issuer is None:
            raise UntrustedKey("x5c chain does not lead to a root of the bundle")
        current = issuer
    else:
        raise UntrustedKey("x5c chain is too long")
    key = leaf.public_key()
    if not isinstance(key, PublicKey):
        raise UntrustedKey("leaf certificate has an unsupported key type")
    return key


def jwk_key(value: Any, trusted: Mapping[str, list[PublicKey]]) -> list[PublicKey]:
    """The trusted keys a token's ``jwk`` header stands for (empty if it is not one of them)."""
    if not isinstance(value, dict):
        return []
    try:
        key = jwt.PyJWK(value).key
    except (jwt.PyJWTError, TypeError, ValueError, KeyError):
        return []
    if not isinstance(key, PublicKey):
        return []
    return trusted.get(thumbprint(key), [])


def _issuer(
    certificate: x509.Certificate,
    candidates: list[x509.Certificate],
    now: datetime.datetime,
    intermediate: bool,
) -> x509.Certificate | None:
    for candidate in candidates:
        if candidate.subject != certificate.issuer or not _may_sign(candidate, intermediate):
            continue
        try:
            certificate.verify_directly_issued_by(candidate)
        except Exception:
            continue
        _check_validity(candidate, now)
        return candidate
    return None


def _may_sign(certificate: x509.Certificate, intermediate: bool) -> bool:
    """A root may lack basic constraints (v1); an intermediate must be a CA, as in Go."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return not intermediate
    return constraints.value.ca


def _check_validity(certificate: x509.Certificate, now: datetime.datetime) -> None:
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise UntrustedKey(f"certificate {certificate.subject.rfc4514_string()} is not valid now")


def _go_generator_thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """Go 3's ``GetRFC7638Thumbprint`` for EC keys: it hashes the curve's generator point."""
    generator = ec.derive_private_key(1, key.curve).public_key().public_numbers()
    members = {
        "crv": _CURVES.get(key.curve.name, key.curve.name),
        "kty": "EC",
        "x": _b64int(generator.x),
        "y": _b64int(generator.y),
    }
    return _hash_members(members)


def _hash_members(members: dict[str, str]) -> str:
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return _b64(hashlib.sha256(canonical).digest())


def _b64int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
