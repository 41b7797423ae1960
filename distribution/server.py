"""``registry serve``: the Flask app under gunicorn, embedded, not shelled out, in threaded
workers of our own (:mod:`distribution.worker`)."""

from __future__ import annotations

import functools
import gc
import logging
import math
import os
import re
import socket
import ssl
import stat
import sys
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask
from gunicorn import glogging, systemd, util
from gunicorn import sock as gunicorn_sock
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter

from distribution import app as app_module
from distribution import (
    balance,
    codepages,
    debug,
    maintenance,
    notifications,
    proxyheaders,
    tls,
    tlsconfig,
    worker,
)
from distribution import log as log_module
from distribution.api.access import USER_ENVIRON
from distribution.api.filebody import DIRECT_BYTES
from distribution.config import TLS, ConfigError, Configuration

log = logging.getLogger(__name__)

#: Threads per worker when ``http.threads`` is unset: uploads and downloads are long, I/O-bound
#: requests, each holding a thread for its whole duration.
DEFAULT_THREADS = 16
#: Seconds in-flight requests get to finish after SIGTERM when ``http.draintimeout`` is unset.
DEFAULT_DRAIN_TIMEOUT = 30
#: Connections a worker holds at once, waiting or in a request (gunicorn's default is 1000).
WORKER_CONNECTIONS = 4096
#: Where gunicorn makes each worker's heartbeat file, when it can: memory, which no busy disk
#: delays, and which a read-only root file system (``docker run --read-only``) leaves writable.
#: Otherwise the temporary folder, as gunicorn's default.
HEARTBEAT_DIR = "/dev/shm"

_GUNICORN_LOG_LEVELS = {"warn": "warning", "fatal": "critical", "panic": "critical"}


class RegistryServer(BaseApplication):
    """A gunicorn application whose options come from the registry's configuration."""

    def __init__(self, config: Configuration) -> None:
        self.config = config
        self.options = gunicorn_options(config)
        #: The configuration key of each of ``options["bind"]``, in order.
        self.bind_keys = [key for key, _ in listen_addresses(config)]
        self.flask_app: Flask | None = None
        super().__init__(prog="registry")

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        maintenance.install(self.cfg, self.config)
        notifications.install(self.cfg, self.config)
        balance.install(self.cfg)
        previous_init = self.cfg.post_worker_init

        def post_worker_init(worker: Any) -> None:
            previous_init(worker)
            if self.flask_app is not None:
                app_module.start(self.flask_app)

        self.cfg.set("post_worker_init", post_worker_init)

    def run(self) -> None:
        """Start the master. The app is built here, once, and what the master holds is then
        frozen, so the workers share those pages: no worker builds the app again (each build
        copied about 5 MiB of the shared pages into the worker), and the garbage collector of
        a worker never writes to them. The app's threads start in each worker
        (:func:`~distribution.app.start`). The library code that building the app ran, and
        the master does not run again, is then unmapped (:mod:`~distribution.codepages`)."""
        self.wsgi()
        gc.collect()
        gc.freeze()
        codepages.release()
        try:
            RegistryArbiter(self).run()
        except RuntimeError as err:  # as gunicorn's own ``run`` reports it
            print(f"\nError: {err}\n", file=sys.stderr)
            sys.exit(1)

    def load(self) -> Flask | debug.WSGIApp:
        self.flask_app = app_module.create_app(self.config, start=False)
        app = debug.with_debug_server(self.flask_app, self.config)
        return proxyheaders.guard(app, self.config.http.trustedproxies)


class RegistryArbiter(Arbiter):
    """gunicorn's master, forking each worker with the signals that stop it held back."""

    def start(self) -> None:
        """gunicorn's start, on listeners bound here first: an address that cannot be bound
        (in use, not this host's, a name that does not resolve) stops the server at once with
        a :class:`ConfigError` naming its key, as Go's ``net.Listen`` fails. gunicorn would
        retry for 5 s and then log "Can't connect". Listeners handed over by systemd or by a
        re-executed master stay gunicorn's to take."""
        if not systemd.listen_fds(False) and "GUNICORN_FD" not in os.environ:
            self.LISTENERS = listen(self.cfg, self.log, self.app.bind_keys)
        super().start()

    def spawn_worker(self) -> int:
        """Between the fork and the worker's own handlers, the master's (copied by the fork)
        would swallow a SIGTERM sent to the new worker, which would then serve on until the
        graceful timeout kills it: a registry stopped just as it started took 30 s to stop.
        Held back from before the fork, the signal reaches the worker once it handles it
        (:meth:`~distribution.worker.RegistryWorker.init_signals`); the master lets them
        through as soon as it has forked."""
        worker.hold_stop_signals(True)
        try:
            return super().spawn_worker()  # in the worker, it returns only by exiting
        finally:
            if os.getpid() == self.pid:
                worker.hold_stop_signals(False)


def gunicorn_options(config: Configuration) -> dict[str, Any]:
    """Translate the ``http`` and ``log`` sections into gunicorn settings."""
    http = config.http
    # A negative draintimeout stops at once, as Go's Shutdown under an expired deadline.
    drain = max(0, math.ceil(http.draintimeout or DEFAULT_DRAIN_TIMEOUT))
    options: dict[str, Any] = {
        "bind": [address for _, address in listen_addresses(config)],
        "worker_class": worker.worker_class(http.timeouts, tls.server_factory(http.tls)),
        "preload_app": True,
        "workers": worker_count(config),
        "threads": http.threads or DEFAULT_THREADS,
        # Connections per worker: waiting ones cost a descriptor, not a thread.
        "worker_connections": WORKER_CONNECTIONS,
        "worker_tmp_dir": HEARTBEAT_DIR if os.access(HEARTBEAT_DIR, os.W_OK) else None,
        "graceful_timeout": drain,
        "keepalive": max(1, math.ceil(http.timeouts.idle)),
        # A Bearer token carrying an x5c chain outgrows gunicorn's 8190-byte default.
        "limit_request_field_size": 65536,
        # No limit of its own on the request line: the head as a whole is bounded
        # (worker.MAX_HEAD), as Go bounds it.
        "limit_request_line": 0,
        "loglevel": _GUNICORN_LOG_LEVELS.get(config.log.level, config.log.level),
        "errorlog": "-",
        "logger_class": _logger_class(config.log.formatter, config.log.fields),
        "accesslog": None if config.log.accesslog.disabled else "-",
        "proc_name": "registry",
        # No gunicornc socket: it would land in $HOME, the data volume in our image.
        "control_socket_disable": True,
        "forwarded_allow_ips": proxyheaders.gunicorn_allow_list(http.trustedproxies),
        # gunicorn would take SCRIPT_NAME from a trusted peer's header: routing is ours alone.
        "forwarder_headers": "",
    }
    if http.debug.addr:
        options.update(debug.server_hooks(config))
    if http.tls.certificate:
        options.update(
            certfile=http.tls.certificate,
            keyfile=http.tls.key,
            ssl_context=_ssl_context_hook(http.tls),
        )
    elif http.tls.letsencrypt.cachefile:
        # gunicorn speaks HTTPS (wsgi.url_scheme, no sendfile) when it has a certificate file;
        # the workers serve the certificates kept in this folder (distribution.tls).
        options["certfile"] = http.tls.letsencrypt.cachefile
    return options


def listen_addresses(config: Configuration) -> list[tuple[str, str]]:
    """Each address the server binds (``http.addr``'s, then the debug server's), with the
    configuration key it comes from."""
    http = config.http
    found = [("http.addr", address) for address in bind_addresses(http.net, http.addr)]
    if http.debug.addr:
        found += [
            ("http.debug.addr", address) for address in bind_addresses("tcp", http.debug.addr)
        ]
    return found


def listen(cfg: Any, log: Any, keys: list[str]) -> list[Any]:
    """gunicorn's listeners for ``cfg.address``, each bound once; ``keys`` name them."""
    listeners: list[Any] = []
    for address, key in zip(cfg.address, keys, strict=True):
        where, listener_class = address, gunicorn_sock.UnixSocket
        if isinstance(address, tuple):
            host, port = address
            if util.is_ipv6(host):
                where, listener_class = f"[{host}]:{port}", gunicorn_sock.TCP6Socket
            else:
                where, listener_class = f"{host}:{port}", gunicorn_sock.TCPSocket
        try:
            listeners.append(listener_class(address, cfg, log))
        except (OSError, ValueError) as err:
            for listener in listeners:
                listener.close()
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            raise ConfigError(key, f"cannot listen on {where}: {reason}") from None
    return listeners


def check(config: Configuration) -> None:
    """Check the listen addresses and ``http.trustedproxies``, and load the TLS files once at
    start-up, so that a bad one stops the server with its key named rather than failing every
    handshake."""
    check_address("http.addr", config.http.net, config.http.addr)
    if config.http.debug.addr:
        check_address("http.debug.addr", "tcp", config.http.debug.addr)
    proxyheaders.networks(config.http.trustedproxies)
    tlsconfig.check(config.http.tls)


def check_address(key: str, net: str, addr: str) -> None:
    """Refuse what Go's ``net.Listen`` refuses at start-up. gunicorn would bind its own port
    8000 for an address without a port, and stop with a stack trace for a port out of range or
    a file in the way of the socket (Go will not remove a file that is not a socket either).
    A service name for the port (``:http``), which Go looks up, is refused too."""
    if net == "unix":
        try:
            mode = os.stat(addr).st_mode
        except FileNotFoundError:
            return
        except OSError as err:
            raise ConfigError(key, f"cannot use {addr}: {err.strerror}") from None
        if not stat.S_ISSOCK(mode):
            raise ConfigError(key, f"{addr} exists and is not a socket")
        return
    host, sep, port = addr.rpartition(":")
    if not sep:
        raise ConfigError(key, f"missing port in address {addr!r} (host:port, such as :5000)")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ConfigError(
            key,
            f"too many colons in address {addr!r} (an IPv6 host goes in brackets: [{host}]:{port})",
        )
    if not port.isdigit() or int(port) > 65535:
        raise ConfigError(key, f"invalid port {port!r} in address {addr!r} (0 to 65535)")


def bind_addresses(net: str, addr: str) -> list[str]:
    """Go's ``net.Listen`` address as gunicorn binds.

    As in Go, an address without a host or with an unspecified one (``:5000``,
    ``0.0.0.0:5000``, ``[::]:5000``) listens on IPv4 and IPv6: one dual-stack socket, or two
    sockets where the system makes IPv6 sockets IPv6-only, or IPv4 alone on a host without
    IPv6.
    """
    if net == "unix":
        return [f"unix:{addr}"]
    host, sep, port = addr.rpartition(":")
    if not sep or host.strip("[]") not in ("", "0.0.0.0", "::"):
        return [addr]
    ipv6 = _ipv6_listening()
    if ipv6 is None:
        return [f"0.0.0.0:{port}"]
    return [f"[::]:{port}"] if ipv6 == "dual" else [f"0.0.0.0:{port}", f"[::]:{port}"]


@functools.cache
def _ipv6_listening() -> str | None:
    """How this host listens on ``[::]``: ``dual`` (IPv4 too), ``v6only``, or None (no IPv6).
    Probed once per process."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::", 0))
            v6only = probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
    except OSError:
        return None
    return "v6only" if v6only else "dual"


def worker_count(config: Configuration) -> int:
    """``http.workers``, else :func:`default_workers`; always one for ``inmemory`` storage.

    Each worker process would have its own in-memory store, so a blob pushed through one
    would be unknown to the others.
    """
    if config.storage.driver != "inmemory":
        return config.http.workers or default_workers()
    if (config.http.workers or 1) > 1:
        log.warning(
            "http.workers %d is not used with storage inmemory: it runs one worker process, "
            "as each process would have a store of its own",
            config.http.workers,
        )
    else:
        log.info("storage inmemory: one worker process, as each would have a store of its own")
    return 1


def default_workers() -> int:
    """One worker per CPU, at least two so one busy worker never stalls the server."""
    return max(2, os.cpu_count() or 1)


def _logger_class(formatter: str, fields: Mapping[str, Any]) -> type[glogging.Logger]:
    """gunicorn's logger, its server messages in the registry's log format (the access log
    keeps the Apache combined format the Go registry writes)."""

    class RegistryLogger(glogging.Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in self.error_log.handlers:
                handler.setFormatter(log_module.make_formatter(formatter, fields))

        def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
            """gunicorn's fields, with the user only once authenticated (gunicorn logs any
            Basic name sent, as given) and every control character escaped, so no client
            can write a line of its own into the log."""
            atoms = super().atoms(resp, req, environ, request_time)
            atoms["h"] = proxyheaders.forwarded_client(environ) or atoms["h"]
            atoms["u"] = environ.get(USER_ENVIRON) or "-"
            if environ.get(DIRECT_BYTES):  # the blob body gunicorn did not send itself
                atoms["B"] = (atoms["B"] or 0) + environ[DIRECT_BYTES]
                atoms["b"] = str(atoms["B"])
            return {
                key: _UNPRINTABLE.sub(_escaped, value) if isinstance(value, str) else value
                for key, value in atoms.items()
            }

        def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
            if not environ.get(debug.DEBUG_REQUEST):  # Go's debug server keeps no access log
                super().access(resp, req, environ, request_time)

    return RegistryLogger


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\\]")


def _escaped(match: re.Match[str]) -> str:
    """A control character or backslash as nginx writes it in its access log: ``\\xHH``."""
    return f"\\x{ord(match[0]):02X}"


def _ssl_context_hook(tls: TLS) -> Callable[..., ssl.SSLContext]:
    """gunicorn's ``ssl_context`` hook: Go's minimum TLS version and client certificates."""

    def ssl_context(conf: Any, default_factory: Any) -> ssl.SSLContext:
        context = default_factory()
        tlsconfig.configure(context, tls)
        return context

    return ssl_context
