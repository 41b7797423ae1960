"""The image's ``HEALTHCHECK``: ``GET /`` where the running registry listens.

A health check runs beside the registry with the container's environment but not its command,
so it reads the command from ``/proc/1/cmdline`` (``dumb-init --single-child -- registry serve
CONFIG``), loads the configuration as the registry did (the container's ``REGISTRY_*``
variables over that file) and asks ``/`` on the loopback address of ``http.addr``, over TLS
when ``http.tls`` is set (not verified: the certificate is for the public name; with Let's
Encrypt, asking for the first of its ``hosts``). Exit 0 on a
200, 1 otherwise, as Docker expects. A registry that demands client certificates
(``http.tls.clientcas``) fails the handshake, so its container shows unhealthy: check it from
outside instead."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import sys
from collections.abc import Sequence

from distribution import config as config_module
from distribution.config import ConfigError, Configuration
from distribution.container.identity import config_path

#: Seconds the whole check may take (Docker's own timeout is the image's ``--timeout``).
TIMEOUT = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    logging.disable(logging.WARNING)
    try:
        config = config_module.load(_registry_config_path())
    except ConfigError as err:
        print(f"unhealthy: configuration: {err}", file=sys.stderr)
        return 1
    try:
        status = probe(config)
    except (OSError, http.client.HTTPException) as err:
        print(f"unhealthy: {err}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: GET / answered {status}", file=sys.stderr)
        return 1
    return 0


def probe(config: Configuration) -> int:
    """The status of ``GET /`` on the registry's own address."""
    connection = _connection(config.http)
    try:
        connection.request("GET", "/", headers={"User-Agent": "registry-healthcheck"})
        return connection.getresponse().status
    finally:
        connection.close()


def _connection(settings: config_module.HTTP) -> http.client.HTTPConnection:
    tls = settings.tls
    context = None
    if tls.certificate or tls.letsencrypt.cachefile:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.net == "unix":
        return _Connection("localhost", None, settings.addr, context, _server_name(tls))
    host, _, port = settings.addr.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1" if host != "::" else "::1"
    return _Connection(host, int(port), None, context, _server_name(tls))


def _server_name(tls: config_module.TLS) -> str | None:
    """The name to ask for: Let's Encrypt serves by name, so the first of its hosts."""
    if not tls.letsencrypt.cachefile:
        return None
    from distribution.tls import letsencrypt

    return letsencrypt.hosts(tls)[0]


class _Connection(http.client.HTTPConnection):
    """To ``host``:``port``, or to the unix socket at ``socket_path``; over TLS when given a
    ``context``, asking for ``server_name`` (SNI), which may differ from the host."""

    def __init__(
        self,
        host: str,
        port: int | None,
        socket_path: str | None,
        context: ssl.SSLContext | None,
        server_name: str | None,
    ) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self.socket_path = socket_path
        self.context = context
        self.server_name = server_name

    def connect(self) -> None:
        if self.socket_path is None:
            super().connect()
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(TIMEOUT)
            self.sock.connect(self.socket_path)
        if self.context is not None:
            self.sock = self.context.wrap_socket(self.sock, server_hostname=self.server_name)


def _registry_config_path() -> str | None:
    """The configuration file of the registry that PID 1 runs (None: the built-in default)."""
    try:
        with open("/proc/1/cmdline", "rb") as file:
            arguments = [a.decode(errors="replace") for a in file.read().split(b"\0") if a]
    except OSError:
        arguments = []
    for index, argument in enumerate(arguments):
        if argument.rsplit("/", 1)[-1] == "registry":
            return config_path(arguments[index:])[1]
    return config_path(["registry", "serve"])[1]


if __name__ == "__main__":
    raise SystemExit(main())
