"""``http.tls.letsencrypt``: certificates obtained and renewed by the registry itself.

As in the Go registry 3 (autocert): ACME v2, the TLS-ALPN-01 challenge answered on the TLS port
itself (no port 80), a certificate for a name of ``hosts`` obtained on first need (the first
TLS connection asking for it), kept in the ``cachefile`` folder in Go's layout, renewed 30 days
before its end (or with a third of its lifetime left) while serving.

Each worker serves from the folder and runs one thread that looks at it every
:data:`REFRESH` seconds and orders what is needed. An order is made under the folder's lock,
so among every worker and replica sharing the folder one orders and the others pick its
certificate up; a failure is written beside the certificate with the time of the next try
(:data:`FIRST_BACKOFF`, doubling up to :data:`MAX_BACKOFF`), so nobody tries before then, and
logged once, by the process that tried.

While a name's first certificate is on its way, its connections wait (up to
``http.timeouts.header``) and then go on with it; while its orders fail, they are refused with
a TLS alert.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from distribution import tlsconfig
from distribution.config import TLS, ConfigError
from distribution.tls import INTERNAL_ERROR, UNRECOGNIZED_NAME, Refused, ServerTLS, challenge
from distribution.tls.certcache import CertCache, Certificate, Retry, Signature
from distribution.tls.clienthello import ClientHello

log = logging.getLogger(__name__)

#: Let's Encrypt's production directory, the default of ``directoryurl`` (as in Go).
DEFAULT_DIRECTORY = "https://acme-v02.api.letsencrypt.org/directory"
#: How long before its end a certificate is renewed (Go's autocert: 30 days).
RENEW_BEFORE = datetime.timedelta(days=30)
#: Seconds between two looks at the cache folder by each worker.
REFRESH = 2.0
#: Seconds to wait after a failed order, doubled after each further failure up to the most.
FIRST_BACKOFF = 60.0
MAX_BACKOFF = 3600.0
#: Seconds between two log lines about refused host names, per worker.
REFUSAL_LOG_INTERVAL = 60.0
#: TLS alert for a validation connection that finds no challenge in progress (RFC 7301).
NO_APPLICATION_PROTOCOL = 120

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")


def check(tls: TLS) -> None:
    """Check ``http.tls.letsencrypt`` and prepare its folder, raising ConfigError."""
    settings = tls.letsencrypt
    if tls.certificate or tls.key:
        raise ConfigError(
            "http.tls.letsencrypt", "cannot be used with http.tls.certificate and key: give one"
        )
    hosts(tls)
    if settings.directoryurl is not None:
        url = urlsplit(settings.directoryurl)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise ConfigError(
                "http.tls.letsencrypt.directoryurl", f"not an http(s) URL: {settings.directoryurl}"
            )
    try:
        import acme.client  # noqa: F401
    except ImportError:
        raise ConfigError(
            "http.tls.letsencrypt", "needs the acme package (pip install acme)"
        ) from None
    if settings.cachefile and os.path.isfile(settings.cachefile):
        raise ConfigError(
            "http.tls.letsencrypt.cachefile",
            f"{settings.cachefile} is a file: Go 2.8 kept its ACME v1 state in one, which Let's "
            "Encrypt no longer serves; name a folder instead (as Go 3 does), where the account "
            "and certificates will be kept",
        )
    try:
        CertCache(settings.cachefile or "").prepare()
    except OSError as err:
        raise ConfigError(
            "http.tls.letsencrypt.cachefile",
            f"cannot use {settings.cachefile} as the certificate folder: {err.strerror or err}",
        ) from None


def hosts(tls: TLS) -> tuple[str, ...]:
    """``hosts`` as TLS clients send them: lower case, IDNA-encoded; ConfigError if one is not
    a name a certificate can be ordered for by TLS-ALPN-01."""
    names = []
    if not tls.letsencrypt.hosts:
        raise ConfigError(
            "http.tls.letsencrypt.hosts", "required: the names to obtain certificates for"
        )
    for i, host in enumerate(tls.letsencrypt.hosts):
        key = f"http.tls.letsencrypt.hosts[{i}]"
        name = host.strip().rstrip(".").lower()
        try:
            name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise ConfigError(key, f"not a host name: {host!r}") from None
        if name.startswith("*."):
            raise ConfigError(key, "wildcard names need the DNS-01 challenge, not answered here")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            raise ConfigError(key, f"{host} is an IP address; give the name that resolves to it")
        if not _HOST.match(name):
            raise ConfigError(key, f"not a host name: {host!r}")
        names.append(name)
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class _Served:
    certificate: Certificate
    context: ssl.SSLContext


class LetsEncrypt(ServerTLS):
    """The certificates of ``hosts``, from the cache folder, ordered when needed."""

    reads_hello = True

    def __init__(self, tls: TLS, start: bool = True) -> None:
        from distribution.tls.acmeclient import ACMEClient

        self.tls = tls
        self.hosts = hosts(tls)
        self.cache = CertCache(tls.letsencrypt.cachefile or "")
        self.client = ACMEClient(
            tls.letsencrypt.directoryurl or DEFAULT_DIRECTORY, tls.letsencrypt.email, self.cache
        )
        #: Where in the renewal window this process renews: spreads the replicas' wake-ups.
        self.jitter = random.random()
        self._served: dict[str, _Served] = {}
        #: Names not to order before the time given: from the folder, or from this process's
        #: own failures when the folder cannot be written.
        self._retry: dict[str, datetime.datetime] = {}
        self._failures: dict[str, int] = {}
        self._last_error = ""
        self._tokens: dict[str, tuple[Signature, ssl.SSLContext]] = {}
        self._needed: set[str] = set()
        self._wake = threading.Event()
        self._refusal_logged = -REFUSAL_LOG_INTERVAL
        if start:
            self._refresh()
            threading.Thread(target=self._run, name="letsencrypt", daemon=True).start()

    # On the worker's event loop.

    def context(self, hello: ClientHello | None) -> ssl.SSLContext | None:
        name = hello.server_name if hello else None
        if name is None:  # a client that gave no name (by IP address) gets the first host's
            served = self._served.get(self.hosts[0])
            if served is None:
                raise Refused(UNRECOGNIZED_NAME)
            return served.context
        if name not in self.hosts:
            self._log_refusal(name)
            raise Refused(UNRECOGNIZED_NAME)
        if hello is not None and hello.alpn == (challenge.ALPN,):
            return self._challenge_context(name)
        served = self._served.get(name)
        if served is not None:
            return served.context
        if name in self._retry:
            raise Refused(INTERNAL_ERROR)
        if name not in self._needed:
            self._needed.add(name)
            self._wake.set()
        return None

    def _challenge_context(self, name: str) -> ssl.SSLContext:
        """The context of a validation connection, from the challenge certificate that the
        process which orders wrote to the folder."""
        key = f"{name}+token"
        signature = self.cache.signature(key)
        if signature is None:
            raise Refused(NO_APPLICATION_PROTOCOL)
        known = self._tokens.get(name)
        if known is not None and known[0] == signature:
            return known[1]
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cache.path(key))
        except (OSError, ssl.SSLError):  # removed or replaced meanwhile
            raise Refused(NO_APPLICATION_PROTOCOL) from None
        context.set_alpn_protocols([challenge.ALPN])
        self._tokens[name] = (signature, context)
        return context

    def _log_refusal(self, name: str) -> None:
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSAL_LOG_INTERVAL:
            self._refusal_logged = now
            log.warning(
                "letsencrypt: refused a TLS connection for %s: not in http.tls.letsencrypt.hosts",
                name,
            )
        else:
            log.debug("letsencrypt: refused a TLS connection for %s", name)

    # In this worker's thread.

    def _run(self) -> None:
        while True:
            self._wake.wait(REFRESH)
            self._wake.clear()
            try:
                self._refresh()
                for name in self.hosts:
                    if self._due(name):
                        self._obtain(name)
            except Exception as err:  # the folder gone, a bug: say it once, keep renewing
                message = f"letsencrypt: {type(err).__name__}: {err}"
                if message != self._last_error:
                    log.error("%s", message)
                self._last_error = message
            else:
                self._last_error = ""

    def _refresh(self) -> None:
        """Serve what the folder holds now, and learn which names wait for a retry."""
        now = _now()
        for name in self.hosts:
            served = self._served.get(name)
            signature = self.cache.signature(name)
            if signature is None:
                self._served.pop(name, None)
            elif served is None or served.certificate.signature != signature:
                certificate = self.cache.certificate(name)
                if certificate is not None and certificate.not_after > now:
                    self._serve(certificate)
            if name in self._served and self._served[name].certificate.not_after <= now:
                del self._served[name]
            retry = self.cache.retry(name)
            until = max(
                (t for t in (retry and retry.not_before, self._retry.get(name)) if t), default=now
            )
            if until > now:
                self._retry[name] = until
            else:
                self._retry.pop(name, None)

    def _due(self, name: str) -> bool:
        if name in self._retry:
            return False
        served = self._served.get(name)
        if served is None:
            return name in self._needed
        return _now() >= self._renew_at(served.certificate)

    def _renew_at(self, certificate: Certificate) -> datetime.datetime:
        lifetime = certificate.not_after - certificate.not_before
        spread = min(datetime.timedelta(hours=1), lifetime / 20)
        return certificate.renew_at(RENEW_BEFORE) - spread * self.jitter

    def _obtain(self, name: str) -> None:
        """Order a certificate for ``name`` unless, once the folder is ours, another process
        has done it or is to wait."""
        from distribution.tls.acmeclient import OrderError

        with self.cache.locked():
            current = self.cache.certificate(name)
            now = _now()
            if current is not None and now < self._renew_at(current):
                self._serve(current)
                return
            retry = self.cache.retry(name)
            if retry is not None and now < retry.not_before:
                self._retry[name] = retry.not_before
                return
            renewing = "renew the" if current is not None else "obtain a"
            try:
                pem = self.client.obtain(name)
                self.cache.write(name, pem)
            except (OrderError, OSError) as err:
                failures = (retry.failures if retry else self._failures.get(name, 0)) + 1
                self._failures[name] = failures
                delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (failures - 1))
                not_before = now + datetime.timedelta(seconds=delay)
                log.error(
                    "letsencrypt: cannot %s certificate for %s: %s (next try in %ds)",
                    renewing,
                    name,
                    err,
                    delay,
                )
                self._retry[name] = not_before
                try:
                    self.cache.set_retry(name, Retry(failures, not_before, str(err)))
                except OSError as write_error:
                    log.error("letsencrypt: cannot write to the cache folder: %s", write_error)
                return
            self.cache.set_retry(name, None)
            self._retry.pop(name, None)
            self._failures.pop(name, None)
            certificate = self.cache.certificate(name)
            if certificate is None:
                log.error("letsencrypt: the CA's certificate for %s does not load", name)
                return
            self._serve(certificate)
            log.info(
                "letsencrypt: obtained a certificate for %s, valid until %s",
                name,
                certificate.not_after.isoformat(timespec="seconds"),
            )

    def _serve(self, certificate: Certificate) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(certificate.path)
        except (OSError, ssl.SSLError) as err:
            log.error("letsencrypt: cannot load %s: %s", certificate.path, err)
            return
        tlsconfig.configure_clients(context, self.tls)
        self._served[certificate.name] = _Served(certificate, context)
        self._needed.discard(certificate.name)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
