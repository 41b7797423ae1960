"""The ``http.tls.letsencrypt.cachefile`` folder, laid out as the Go registry's (autocert's
``DirCache``), so a folder one of them filled serves the other:

* ``acme_account+key``: the ACME account's key (``acme_account.key`` in older releases);
* ``<name>``: a certificate's private key, then its chain, as PEM;
* ``<name>+token``: the TLS-ALPN-01 challenge certificate of an order in progress, read by
  whichever worker or replica the CA's validation connection reaches.

Ours alone, which Go never reads: ``acme+lock``, the lock file that lets one process at a time
order (``flock``, which NFS carries across hosts), and ``<name>+retry``, when the next order for
a name that failed may start. Names are those of ``hosts`` only, so no client-given text ever
becomes a path. Files are written to a temporary name and renamed, readable by the owner only.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from distribution.tls.challenge import private_key_pem

ACCOUNT_KEY = "acme_account+key"
LEGACY_ACCOUNT_KEY = "acme_account.key"
LOCK = "acme+lock"

#: What identifies a file's contents: device, inode, size, modification time.
Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class Certificate:
    """A certificate from the cache, checked: it parses, its key matches, it names ``name``."""

    name: str
    path: str
    signature: Signature
    not_before: datetime.datetime
    not_after: datetime.datetime
    serial: int

    def renew_at(self, renew_before: datetime.timedelta) -> datetime.datetime:
        """When to renew: ``renew_before`` ahead of the end, or with a third of the lifetime
        left if that comes later, as Go's autocert does."""
        lifetime = self.not_after - self.not_before
        return self.not_after - min(renew_before, lifetime / 3)


@dataclass(frozen=True)
class Retry:
    """A name's failed orders: how many in a row, and when the next may start."""

    failures: int
    not_before: datetime.datetime
    error: str


class CertCache:
    """The cache folder at ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def prepare(self) -> None:
        """Create the folder (owner only, as Go does) and prove it writable; OSError if not."""
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=self.directory)
        os.close(fd)
        os.unlink(probe)
        os.close(os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))

    def path(self, key: str) -> str:
        return os.path.join(self.directory, key)

    def read(self, key: str) -> bytes | None:
        try:
            with open(self.path(key), "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None

    def write(self, key: str, data: bytes) -> None:
        fd, temporary = tempfile.mkstemp(prefix=f".{key}-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(key))

    def signature(self, key: str) -> Signature | None:
        try:
            info = os.stat(self.path(key))
        except OSError:
            return None
        return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the folder's lock: one order at a time among every process sharing it."""
        fd = os.open(self.path(LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def certificate(self, name: str) -> Certificate | None:
        """``name``'s certificate if the folder holds a usable one (a bad file counts as none,
        as in Go: it is ordered again)."""
        signature = self.signature(name)
        data = self.read(name)
        if signature is None or data is None:
            return None
        try:
            return parse(name, self.path(name), signature, data)
        except ValueError:
            return None

    def account_key(self) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
        """The account key, made and kept on first use. ValueError if the file is unusable."""
        data = self.read(ACCOUNT_KEY) or self.read(LEGACY_ACCOUNT_KEY)
        if data is None:
            key = ec.generate_private_key(ec.SECP256R1())
            self.write(ACCOUNT_KEY, private_key_pem(key))
            return key
        key = _private_key(data)
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ValueError(f"{self.path(ACCOUNT_KEY)} holds no ECDSA or RSA key")
        return key

    def retry(self, name: str) -> Retry | None:
        data = self.read(f"{name}+retry")
        if data is None:
            return None
        try:
            record = json.loads(data)
            return Retry(
                int(record["failures"]),
                datetime.datetime.fromisoformat(record["notBefore"]),
                str(record["error"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def set_retry(self, name: str, retry: Retry | None) -> None:
        if retry is None:
            self.delete(f"{name}+retry")
            return
        record = {
            "failures": retry.failures,
            "notBefore": retry.not_before.isoformat(),
            "error": retry.error,
        }
        self.write(f"{name}+retry", json.dumps(record).encode())


def parse(name: str, path: str, signature: Signature, data: bytes) -> Certificate:
    """A cache file's certificate, checked as Go's ``validCert`` does; ValueError if unusable."""
    key = _private_key(data)
    chain = x509.load_pem_x509_certificates(data)
    leaf = chain[0]
    if leaf.public_key() != key.public_key():
        raise ValueError("the key does not match the certificate")
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        raise ValueError("the certificate names no host") from None
    if name not in names.value.get_values_for_type(x509.DNSName):
        raise ValueError(f"the certificate is not for {name}")
    return Certificate(
        name,
        path,
        signature,
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        leaf.serial_number,
    )


def _private_key(data: bytes) -> PrivateKeyTypes:
    """The PEM private key in ``data`` (which may hold certificates too)."""
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (TypeError, ValueError, UnsupportedAlgorithm) as err:
        raise ValueError(f"no usable private key: {err}") from None
