"""Certificates made in the test with cryptography: a root CA, an intermediate, leaves.

``Authority.root(name)`` is a self-signed CA; ``.intermediate(name)`` a CA it signs;
``.issue(name, directory)`` writes a leaf's key and certificate, the chain up to (but not
including) the root appended, as the Go registry's deployment guide builds its bundle.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: Names every server certificate here is valid for.
SERVER_NAMES = ("127.0.0.1", "localhost")


@dataclass
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    @classmethod
    def root(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        return cls(_sign(_builder(subject, subject, key, ca=True), key), key)

    def intermediate(self, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _sign(_builder(_name(name), self.cert.subject, key, ca=True), self.key)
        return Authority(cert, key, [cert, *self.chain])

    def write_ca(self, path: Path) -> Path:
        path.write_bytes(_pem(self.cert))
        return path

    def issue(
        self,
        name: str,
        directory: Path,
        names: tuple[str, ...] = SERVER_NAMES,
        client: bool = False,
    ) -> tuple[Path, Path]:
        """A leaf's ``(certificate bundle, key)`` files in ``directory``, named ``name.*``."""
        key = ec.generate_private_key(ec.SECP256R1())
        builder = _builder(_name(name), self.cert.subject, key, ca=False)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if not client:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
            )
        cert = _sign(builder, self.key)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(b"".join(_pem(c) for c in [cert, *self.chain]))
        key_path.write_bytes(_key_pem(key))
        return cert_path, key_path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca: bool,
    server: bool = False,
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    usage = dict.fromkeys(
        [
            "content_commitment",
            "data_encipherment",
            "key_agreement",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    return builder.add_extension(
        x509.KeyUsage(
            digital_signature=server or not ca,
            key_encipherment=False,
            key_cert_sign=ca,
            crl_sign=ca,
            **usage,
        ),
        critical=True,
    )


def _sign(builder: x509.CertificateBuilder, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def self_signed(name: str, directory: Path, names: tuple[str, ...] = SERVER_NAMES) -> Path:
    """A self-signed server certificate ``name.crt`` (its own CA, as ``openssl req -x509``
    makes) and its key ``name.key``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign(
        _builder(_name(name), _name(name), key, ca=True, server=True).add_extension(
            x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False
        ),
        key,
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.crt").write_bytes(_pem(cert))
    (directory / f"{name}.key").write_bytes(_key_pem(key))
    return directory / f"{name}.crt"
