"""Which certificate each TLS connection of ``registry serve`` gets.

A worker asks one :class:`ServerTLS` per TLS connection for the ``ssl.SSLContext`` to hand the
handshake. Two kinds answer: :class:`~distribution.tls.reload.FileCertificates` serves
``http.tls.certificate``/``key`` and picks up replaced files, and
:class:`~distribution.tls.letsencrypt.LetsEncrypt` serves the certificates it obtains by ACME
and answers the CA's TLS-ALPN-01 validation connections. The worker itself knows neither.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

from distribution.config import TLS
from distribution.tls.clienthello import ClientHello

#: TLS alert descriptions (RFC 8446 section 6), sent to a refused client.
DECODE_ERROR = 50
INTERNAL_ERROR = 80
UNRECOGNIZED_NAME = 112


class Refused(Exception):
    """The connection gets no certificate: the worker answers with a fatal TLS alert."""

    def __init__(self, description: int) -> None:
        super().__init__(description)
        self.description = description

    @property
    def alert(self) -> bytes:
        """The alert as a plaintext TLS record (before any handshake, alerts are not
        encrypted): type 21, version 1.2, length 2, level fatal, description."""
        return bytes((21, 3, 3, 0, 2, 2, self.description))


class ServerTLS:
    """What a worker asks, per connection, for the context of its TLS handshake."""

    #: Whether :meth:`context` needs the ClientHello (else it is given None).
    reads_hello = False

    def context(self, hello: ClientHello | None) -> ssl.SSLContext | None:
        """The context for this connection; None while the certificate it needs is on its way
        (the worker asks again a moment later). Raises :class:`Refused` to refuse it."""
        raise NotImplementedError


def server_factory(tls: TLS) -> Callable[[Any], ServerTLS] | None:
    """What builds, in each worker from gunicorn's settings, the :class:`ServerTLS` for
    ``http.tls``; None without TLS."""
    if tls.letsencrypt.cachefile:
        from distribution.tls.letsencrypt import LetsEncrypt

        return lambda cfg: LetsEncrypt(tls)
    if tls.certificate:
        from distribution.tls.reload import FileCertificates

        return lambda cfg: FileCertificates.from_gunicorn(cfg, tls)
    return None
