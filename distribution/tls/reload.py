"""``http.tls.certificate``, ``key`` and ``clientcas``, served again after they are replaced.

certbot, cert-manager and Kubernetes secret mounts replace these files under a running server;
the Go registry serves the old ones until it restarts. Here each worker looks at the files
(``stat``, at most every :data:`CHECK_INTERVAL` seconds, and only when a connection comes) and
builds a new context once a change has settled: the files are unchanged since the previous look
or were last written :data:`SETTLE` seconds ago, so a certificate and key replaced one after the
other are not loaded half way. A replacement that does not load keeps the certificate in
service and is logged once (by each worker).
"""

from __future__ import annotations

import logging
import os
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

from distribution import tlsconfig
from distribution.config import TLS, ConfigError
from distribution.tls import ServerTLS
from distribution.tls.clienthello import ClientHello

log = logging.getLogger(__name__)

#: Seconds between two looks at the files.
CHECK_INTERVAL = 2.0
#: Seconds since their last write after which changed files are taken as complete.
SETTLE = 1.0
#: Seconds a worker that starts while the files are being replaced waits for them to load,
#: and between two tries.
FIRST_LOAD_WAIT = 10.0
FIRST_LOAD_RETRY = 0.1

_Signature = tuple[tuple[int, int, int, int] | None, ...]


class FileCertificates(ServerTLS):
    """The context ``build`` makes from ``files``, rebuilt when they change."""

    def __init__(
        self,
        build: Callable[[], ssl.SSLContext],
        files: Sequence[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.build = build
        self.files = tuple(files)
        self.clock = clock
        self._loaded, self._context = self._first_context()
        self._seen = self._loaded
        self._next_check = clock() + CHECK_INTERVAL

    @classmethod
    def from_gunicorn(cls, cfg: Any, tls: TLS) -> FileCertificates:
        """Contexts from gunicorn's settings (its ``ssl_context`` hook applies ``http.tls``),
        each made once the files have passed the start-up checks, so that a bad one is named."""
        from gunicorn import sock

        def build() -> ssl.SSLContext:
            tlsconfig.load(tls)
            return sock.ssl_context(cfg)

        files = [path for path in (tls.certificate, tls.key, *tls.clientcas) if path]
        return cls(build, files)

    def _first_context(self) -> tuple[_Signature, ssl.SSLContext]:
        """The files' signature, taken before the build (files replaced while it reads them
        differ at the next look), and the context. The files passed the start-up checks: if
        they do not load in a worker starting later, they are being replaced, so it waits up
        to :data:`FIRST_LOAD_WAIT` for the replacement to load rather than fail its boot."""
        deadline = time.monotonic() + FIRST_LOAD_WAIT
        while True:
            signature = self._signature()
            try:
                return signature, self.build()
            except (ConfigError, OSError, ssl.SSLError, ValueError) as err:
                if time.monotonic() >= deadline:
                    raise
                log.debug("http.tls: the files do not load yet, waiting: %s", err)
                time.sleep(FIRST_LOAD_RETRY)

    def context(self, hello: ClientHello | None) -> ssl.SSLContext:
        now = self.clock()
        if now >= self._next_check:
            self._next_check = now + CHECK_INTERVAL
            self._check()
        return self._context

    def _check(self) -> None:
        current = self._signature()
        written = max((entry[3] for entry in current if entry), default=0) / 1e9
        settled = current == self._seen or written <= time.time() - SETTLE
        self._seen = current
        if not settled or current == self._loaded:
            return
        self._loaded = current
        try:
            context = self.build()
        except (ConfigError, OSError, ssl.SSLError, ValueError) as err:
            log.error("http.tls: the replaced files do not load, keeping the old ones: %s", err)
            return
        self._context = context
        log.info("http.tls: serving the replaced certificate from %s", self.files[0])

    def _signature(self) -> _Signature:
        """What identifies the files' contents: device, inode, size and modification time of
        each (followed through symbolic links, as Kubernetes mounts use them)."""
        signature = []
        for path in self.files:
            try:
                info = os.stat(path)
            except OSError:
                signature.append(None)
                continue
            signature.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
        return tuple(signature)
