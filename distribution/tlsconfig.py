"""The server's TLS from ``http.tls``, as the Go registry sets up its ``tls.Config``.

``certificate`` may hold the server's certificate followed by its intermediates (the bundle the
deployment guide builds with ``cat domain.crt intermediate-certificates.pem``); they are sent in
that order. ``clientcas`` turns on mutual TLS: a client must present a certificate issued by one
of them (Go's ``RequireAndVerifyClientCert``), or, with ``clientauth: verify-client-cert-if-given``,
may present none. ``minimumtls`` takes Go's names.
"""

from __future__ import annotations

import logging
import ssl

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from distribution.config import TLS, ConfigError

log = logging.getLogger(__name__)

VERSIONS = {
    "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}

#: Go's ``clientauth`` modes OpenSSL can enforce; the other two accept certificates nobody
#: verified, which OpenSSL's server cannot do.
CLIENT_AUTH = {
    "require-and-verify-client-cert": ssl.CERT_REQUIRED,
    "verify-client-cert-if-given": ssl.CERT_OPTIONAL,
}


def enabled(tls: TLS) -> bool:
    return bool(tls.certificate or tls.key)


def check(tls: TLS) -> None:
    """Check ``tls`` and load every file it names, raising a ConfigError naming the key of a
    bad one."""
    if not enabled(tls) and not tls.letsencrypt.cachefile:
        if tls.clientcas:
            raise ConfigError("http.tls.clientcas", "needs http.tls.certificate and key")
        return
    if tls.clientauth is not None:
        if tls.clientauth not in CLIENT_AUTH:
            raise ConfigError(
                "http.tls.clientauth",
                f"{tls.clientauth} is not supported; use one of {', '.join(CLIENT_AUTH)}",
            )
        if not tls.clientcas:
            raise ConfigError("http.tls.clientauth", "needs http.tls.clientcas to verify with")
    if tls.ciphersuites:
        log.warning("http.tls.ciphersuites is not supported: OpenSSL's default suites are used")
    if tls.letsencrypt.cachefile:
        from distribution.tls import letsencrypt

        letsencrypt.check(tls)
        check_clientcas(tls)
        return
    if not tls.certificate:
        raise ConfigError("http.tls.certificate", "missing: http.tls.key is set without it")
    if not tls.key:
        raise ConfigError("http.tls.key", "missing: http.tls.certificate is set without it")
    load(tls)


def load(tls: TLS) -> ssl.SSLContext:
    """A server context from the files ``tls`` names, each checked first so that a bad one
    raises a ConfigError naming its key and saying what is wrong."""
    try:
        x509.load_pem_x509_certificates(_read("http.tls.certificate", tls.certificate or ""))
    except ValueError:
        raise ConfigError(
            "http.tls.certificate", f"no PEM certificate in {tls.certificate}"
        ) from None
    try:
        serialization.load_pem_private_key(_read("http.tls.key", tls.key or ""), password=None)
    except TypeError:
        raise ConfigError("http.tls.key", f"{tls.key} is encrypted; give it unencrypted") from None
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ConfigError(
            "http.tls.key", f"no usable PEM private key in {tls.key}: {err}"
        ) from None
    check_clientcas(tls)
    return configure(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), tls)


def check_clientcas(tls: TLS) -> None:
    for i, path in enumerate(tls.clientcas):
        key = f"http.tls.clientcas[{i}]"
        try:
            x509.load_pem_x509_certificates(_read(key, path))
        except ValueError:
            raise ConfigError(key, f"no PEM certificate in {path}") from None


def configure(context: ssl.SSLContext, tls: TLS) -> ssl.SSLContext:
    """Load the certificate chain, client CAs and minimum version into ``context``."""
    try:
        context.load_cert_chain(tls.certificate or "", tls.key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(
            "http.tls.key", f"{tls.key} does not match the certificate in {tls.certificate}: {err}"
        ) from None
    return configure_clients(context, tls)


def configure_clients(context: ssl.SSLContext, tls: TLS) -> ssl.SSLContext:
    """The minimum version and client certificates of ``tls`` in ``context``."""
    context.minimum_version = VERSIONS[tls.minimumtls]
    for i, path in enumerate(tls.clientcas):
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"http.tls.clientcas[{i}]", f"cannot load {path}: {err}") from None
    if tls.clientcas:
        context.verify_mode = CLIENT_AUTH[tls.clientauth or "require-and-verify-client-cert"]
    return context


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror or err}") from None
