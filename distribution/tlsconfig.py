"""The server's TLS from ``http.tls``, as the Go registry sets up its ``tls.Config``.

``certificate`` may hold the server's certificate followed by its intermediates (the bundle the
deployment guide builds with ``cat domain.crt intermediate-certificates.pem``); they are sent in
that order. ``clientcas`` turns on mutual TLS: a client must present a certificate issued by one
of them (Go's ``RequireAndVerifyClientCert``), or, with ``clientauth: verify-client-cert-if-given``,
may present none, or, with ``request-client-cert``, need not present one that any CA vouches
for (Go asks for one and never checks it: nobody is refused, which is what OpenSSL does when it
asks for none). ``require-any-client-cert`` (a certificate required but never checked) cannot be
done with OpenSSL and stops start-up. ``minimumtls`` takes Go's names; ``ciphersuites`` Go's
suite names, for TLS 1.2 and below (TLS 1.3's suites are fixed, in Go as in OpenSSL), with Go's
default list when unset.
"""

from __future__ import annotations

import logging
import ssl

from distribution.config import TLS, ConfigError

log = logging.getLogger(__name__)

VERSIONS = {
    "tls1.0": ssl.TLSVersion.TLSv1,
    "tls1.1": ssl.TLSVersion.TLSv1_1,
    "tls1.2": ssl.TLSVersion.TLSv1_2,
    "tls1.3": ssl.TLSVersion.TLSv1_3,
}

#: ``minimumtls`` values OpenSSL 3 serves only at security level 0.
LEGACY_VERSIONS = ("tls1.0", "tls1.1")

#: Go's ``clientauth`` modes as OpenSSL does them; ``require-any-client-cert`` it cannot.
CLIENT_AUTH = {
    "require-and-verify-client-cert": ssl.CERT_REQUIRED,
    "verify-client-cert-if-given": ssl.CERT_OPTIONAL,
    "request-client-cert": ssl.CERT_NONE,
}

#: Go's cipher suite names (``crypto/tls``) for TLS 1.0 to 1.2, as OpenSSL names them: those
#: Go 2.8 takes, which include the RC4 and CBC-SHA256 suites 3.x no longer takes.
CIPHER_SUITES = {
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
}
#: TLS 1.3's suites: valid names, always on (neither Go nor OpenSSL lets them be chosen here).
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
#: Go's ``defaultCipherSuites`` below TLS 1.3: forward secrecy and AEAD only.
DEFAULT_CIPHER_SUITES = (
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
)


def enabled(tls: TLS) -> bool:
    return bool(tls.certificate or tls.key)


def check(tls: TLS) -> None:
    """Check ``tls`` and load every file it names, raising a ConfigError naming the key of a
    bad one."""
    if not enabled(tls) and not tls.letsencrypt.cachefile:
        if tls.clientcas:
            raise ConfigError("http.tls.clientcas", "needs http.tls.certificate and key")
        _warn_unused(tls)
        return
    if tls.clientauth is not None:
        if tls.clientauth not in CLIENT_AUTH:
            raise ConfigError(
                "http.tls.clientauth",
                f"{tls.clientauth} is not supported (OpenSSL cannot require a certificate it "
                f"does not verify); use one of {', '.join(CLIENT_AUTH)}",
            )
        if not tls.clientcas:
            log.warning(
                "http.tls.clientauth %s is not used without http.tls.clientcas (as in Go)",
                tls.clientauth,
            )
    for i, name in enumerate(tls.ciphersuites):
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            raise ConfigError(
                f"http.tls.ciphersuites[{i}]",
                f"unknown TLS cipher suite {name!r} (Go's crypto/tls names, such as "
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)",
            )
        if name in CIPHER_SUITES and not _available(CIPHER_SUITES[name]):
            log.warning(
                "http.tls.ciphersuites[%d]: %s is not available in this OpenSSL and is left out",
                i,
                name,
            )
    if tls.ciphersuites and tls.minimumtls == "tls1.3":
        log.warning(
            "restricting TLS cipher suites to empty. Because configuring cipher suites is no "
            "longer supported in tls1.3"
        )
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


def _warn_unused(tls: TLS) -> None:
    """Without ``certificate`` or Let's Encrypt's ``cachefile`` the registry serves plain HTTP
    and Go ignores the other TLS keys; so does this, aloud, as a deployment that left the one
    key out would serve plain HTTP unawares."""
    settings = tls.letsencrypt
    unused = [
        f"http.tls.{name}"
        for name, value in (
            ("clientauth", tls.clientauth),
            ("ciphersuites", tls.ciphersuites),
            ("letsencrypt.email", settings.email),
            ("letsencrypt.hosts", settings.hosts),
            ("letsencrypt.directoryurl", settings.directoryurl),
        )
        if value
    ]
    if unused:
        log.warning(
            "%s %s not used without http.tls.certificate or http.tls.letsencrypt.cachefile "
            "(as in Go): the registry serves plain HTTP",
            ", ".join(unused),
            "is" if len(unused) == 1 else "are",
        )


def load(tls: TLS) -> ssl.SSLContext:
    """A server context from the files ``tls`` names, each checked first so that a bad one
    raises a ConfigError naming its key and saying what is wrong."""
    from cryptography import x509  # only a registry that serves TLS loads it
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

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
    from cryptography import x509

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
    if tls.minimumtls != "tls1.3":
        _set_cipher_suites(
            context, tls.ciphersuites or DEFAULT_CIPHER_SUITES, tls.minimumtls in LEGACY_VERSIONS
        )
    for i, path in enumerate(tls.clientcas):
        try:
            context.load_verify_locations(cafile=path)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"http.tls.clientcas[{i}]", f"cannot load {path}: {err}") from None
    if tls.clientcas:
        context.verify_mode = CLIENT_AUTH[tls.clientauth or "require-and-verify-client-cert"]
    return context


def _set_cipher_suites(context: ssl.SSLContext, names: tuple[str, ...], legacy: bool) -> None:
    """Go's suites below TLS 1.3; a list of TLS 1.3 suites alone leaves TLS 1.3 only.

    ``legacy`` (``minimumtls`` below 1.2) lowers OpenSSL's security level to 0, the only one
    at which OpenSSL 3 does TLS 1.0 and 1.1 (their handshakes sign with SHA-1), as Go does them.
    """
    below13 = [CIPHER_SUITES[name] for name in names if name in CIPHER_SUITES]
    if not below13:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        return
    try:
        context.set_ciphers(":".join(below13) + (":@SECLEVEL=0" if legacy else ""))
    except ssl.SSLError:  # none of them is available in this OpenSSL
        log.warning("http.tls.ciphersuites: none is available below TLS 1.3; serving TLS 1.3 only")
        context.minimum_version = ssl.TLSVersion.TLSv1_3


def _available(cipher: str) -> bool:
    """Whether this OpenSSL has ``cipher`` (OpenSSL 3 has no RC4, for one)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(cipher)
    except ssl.SSLError:
        return False
    return True


def _read(key: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as err:
        raise ConfigError(key, f"cannot read {path}: {err.strerror or err}") from None
