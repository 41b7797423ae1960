"""The Let's Encrypt cache folder in the Go registry's layout, and the challenge certificate."""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from distribution.tls import challenge
from distribution.tls.certcache import ACCOUNT_KEY, CertCache, Retry
from tests.tls.pki import Authority


def go_cache_file(directory: Path, name: str, key_name: str | None = None) -> Path:
    """A certificate file as Go's autocert writes it: ``EC PRIVATE KEY``, then the chain."""
    authority = Authority.root("Cache CA").intermediate("Cache Intermediate")
    cert, key = authority.issue("leaf", directory / "made", names=(name,))
    leaf_key = serialization.load_pem_private_key(key.read_bytes(), None)
    if key_name is not None:  # the key of another certificate
        _, other = authority.issue("other", directory / "made", names=(key_name,))
        leaf_key = serialization.load_pem_private_key(other.read_bytes(), None)
    path = directory / name
    path.write_bytes(challenge.private_key_pem(leaf_key) + cert.read_bytes())  # type: ignore[arg-type]
    return path


def test_reads_a_go_certificate_file(tmp_path: Path) -> None:
    go_cache_file(tmp_path, "registry.example.test")
    cert = CertCache(str(tmp_path)).certificate("registry.example.test")
    assert cert is not None
    assert cert.path == str(tmp_path / "registry.example.test")
    assert cert.not_after - cert.not_before == datetime.timedelta(days=1, hours=1)


def test_a_file_that_does_not_fit_counts_as_none(tmp_path: Path) -> None:
    cache = CertCache(str(tmp_path))
    go_cache_file(tmp_path, "registry.example.test", key_name="registry.example.test")
    assert cache.certificate("registry.example.test") is None  # key of another certificate
    go_cache_file(tmp_path, "other.example.test")
    (tmp_path / "other.example.test").rename(tmp_path / "third.example.test")
    assert cache.certificate("third.example.test") is None  # not for this name
    (tmp_path / "half.example.test").write_bytes(b"-----BEGIN EC PRIVATE KEY-----\nMHc")
    assert cache.certificate("half.example.test") is None
    assert cache.certificate("absent.example.test") is None


def test_renewal_comes_30_days_early_or_with_a_third_left(tmp_path: Path) -> None:
    go_cache_file(tmp_path, "a.test")
    cert = CertCache(str(tmp_path)).certificate("a.test")
    assert cert is not None
    thirty_days = datetime.timedelta(days=30)
    assert cert.renew_at(thirty_days) == cert.not_after - (cert.not_after - cert.not_before) / 3
    long = cert.__class__(**{**cert.__dict__, "not_before": cert.not_after - 3 * thirty_days})
    assert long.renew_at(thirty_days) == cert.not_after - thirty_days


def test_account_key_is_made_once_and_kept(tmp_path: Path) -> None:
    cache = CertCache(str(tmp_path / "acme"))
    cache.prepare()
    key = cache.account_key()
    assert (tmp_path / "acme" / ACCOUNT_KEY).read_bytes().startswith(b"-----BEGIN EC PRIVATE KEY")
    assert (tmp_path / "acme" / ACCOUNT_KEY).stat().st_mode & 0o777 == 0o600
    assert cache.account_key().private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_retry_records_round_trip_and_garbage_is_none(tmp_path: Path) -> None:
    cache = CertCache(str(tmp_path))
    when = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    cache.set_retry("a.test", Retry(3, when, "the CA refused"))
    assert cache.retry("a.test") == Retry(3, when, "the CA refused")
    cache.set_retry("a.test", None)
    assert cache.retry("a.test") is None
    (tmp_path / "b.test+retry").write_text("{not json")
    assert cache.retry("b.test") is None


def test_challenge_certificate_follows_rfc_8737() -> None:
    pem = challenge.certificate("registry.example.test", "token.thumbprint")
    key = serialization.load_pem_private_key(pem, None)
    cert = x509.load_pem_x509_certificate(pem)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert cert.public_key() == key.public_key()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["registry.example.test"]
    extension = cert.extensions.get_extension_for_oid(challenge.ACME_IDENTIFIER)
    assert extension.critical
    digest = hashlib.sha256(b"token.thumbprint").digest()
    assert extension.value.value == b"\x04\x20" + digest
