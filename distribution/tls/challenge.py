"""The TLS-ALPN-01 challenge certificate (RFC 8737), made with ``cryptography``.

The CA connects to the name on port 443 offering only the ALPN protocol ``acme-tls/1``; the
server answers with a self-signed certificate for that one name that carries, in the critical
``acmeIdentifier`` extension, the SHA-256 of the challenge's key authorisation.
"""

from __future__ import annotations

import datetime
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

#: The ALPN protocol of validation connections.
ALPN = "acme-tls/1"
#: id-pe-acmeIdentifier.
ACME_IDENTIFIER = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
#: How long a challenge certificate is valid; the CA validates within minutes.
LIFETIME = datetime.timedelta(days=1)


def certificate(name: str, key_authorization: str) -> bytes:
    """The challenge certificate for ``name`` and its key, as PEM: key first, as the
    certificate cache keeps them."""
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ACME challenge")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        # The extension's value is a DER OCTET STRING of the 32-byte digest.
        .add_extension(
            x509.UnrecognizedExtension(ACME_IDENTIFIER, b"\x04\x20" + digest), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return private_key_pem(key) + cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """``key`` as the Go registry's certificate cache writes it (``EC PRIVATE KEY``)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
