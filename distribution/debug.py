"""The debug server at ``http.debug.addr``: ``/debug/health``, ``/debug/vars`` and metrics.

The Go registry serves these from a second HTTP server on their own address, so an operator
can expose the API and keep health and metrics on an internal port. Under gunicorn the debug
address is a second listener of the same server (see ``server.gunicorn_options``), and
:func:`by_listener` sends each request to the API or to the debug app by the local address
of the connection it arrived on. That address is the socket's own, not anything the client
sends, so the API is unreachable on the debug port and the debug routes on the API port,
whatever the ``Host`` header says; and one set of workers, with their health checks and
metrics, serves both (a separate server process would need its own copy of both).

As in Go, the debug server speaks plain HTTP even when ``http.tls`` serves the API over TLS
(so Prometheus scrapes and probes written for Go keep working): the worker asks
:func:`speaks_tls` of each listener.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import resource
import sys
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.wrappers import Request, Response

from distribution import health, instrumentation, metrics
from distribution.config import Configuration
from distribution.health import HealthChecks, checks, status_body

WSGIApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]

#: The ``environ`` key that marks a request to the debug server (kept out of the access log).
DEBUG_REQUEST = "distribution.debug"

HEALTH_PATH = "/debug/health"
VARS_PATH = "/debug/vars"

_TEXT = "text/plain; charset=utf-8"

log = logging.getLogger(__name__)


def create_debug_app(config: Configuration, health: HealthChecks) -> WSGIApp:
    """The debug routes Go registers on its default mux; anything else is Go's plain 404."""
    prometheus = config.http.debug.prometheus
    metrics_path = (prometheus.path or "/metrics") if prometheus.enabled else None

    def debug_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == HEALTH_PATH and request.method == "GET":
            status, body = status_body(health.status())
            response = Response(body, status, content_type="application/json; charset=utf-8")
        elif request.path == VARS_PATH and request.method == "GET":
            response = Response(json.dumps(_vars()), content_type="application/json; charset=utf-8")
        elif request.path == metrics_path:
            body, content_type = metrics.exposition()
            response = Response(body, content_type=content_type)
        else:
            response = Response("404 page not found\n", 404, content_type=_TEXT)
        return response(environ, start_response)

    return debug_app


def with_debug_server(app: Flask, config: Configuration) -> Flask | WSGIApp:
    """``app`` alone, or with the debug routes on ``http.debug.addr`` when that is set."""
    if not config.http.debug.addr:
        return app
    debug = create_debug_app(config, app.extensions[health.EXTENSION])
    return by_listener(app, debug, config.http.debug.addr)


def server_hooks(config: Configuration) -> dict[str, Callable]:
    """gunicorn hooks for the master: announce the debug server, share metrics across workers.

    The metrics directory is made before the first worker forks, each dead worker's live
    gauges are dropped, and the directory is cleaned when the server exits.
    """
    addr, prometheus = config.http.debug.addr, config.http.debug.prometheus
    state: dict[str, Any] = {}

    def on_starting(server: Any) -> None:
        log.info("debug server listening %s", addr)
        if instrumentation.metrics_served(config):
            log.info("providing prometheus metrics on %s", prometheus.path or "/metrics")
            operator_dir = os.environ.get(metrics.MULTIPROC_ENV)
            state["dir"] = metrics.start_multiprocess(operator_dir)
            state["private"] = not operator_dir

    def child_exit(server: Any, worker: Any) -> None:
        if "dir" in state:
            metrics.process_dead(worker.pid)

    def on_exit(server: Any) -> None:
        if "dir" in state:
            metrics.stop_multiprocess(state["dir"], state["private"])

    return {"on_starting": on_starting, "child_exit": child_exit, "on_exit": on_exit}


def by_listener(api: WSGIApp, debug: WSGIApp, debug_addr: str) -> WSGIApp:
    """Serve ``debug`` to connections accepted on ``debug_addr``, ``api`` to all others."""
    host, port = checks.split_host_port(debug_addr)
    only_ip = _literal_ip(host)

    def dispatch(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if is_debug_connection(environ, port, only_ip):
            environ[DEBUG_REQUEST] = True
            return debug(environ, start_response)
        return api(environ, start_response)

    return dispatch


def is_debug_connection(environ: dict[str, Any], port: int, only_ip: str | None) -> bool:
    """Whether the connection behind ``environ`` was accepted on the debug listener.

    ``only_ip`` is the listener's IP when it is bound to one address (None: any address).
    """
    sock = environ.get("gunicorn.socket")
    return sock is not None and _is_debug_address(sock.getsockname(), port, only_ip)


def speaks_tls(config: Configuration, local: Any, tls: bool) -> bool:
    """Whether a connection accepted on the listener at ``local`` speaks TLS: when the server
    does (``tls``), every listener does but the debug one, which speaks plain HTTP as Go's."""
    if not tls or not config.http.debug.addr:
        return tls
    host, port = checks.split_host_port(config.http.debug.addr)
    return not _is_debug_address(local, port, _literal_ip(host))


def _is_debug_address(local: Any, port: int, only_ip: str | None) -> bool:
    """Whether a socket's local address ``local`` is the debug listener's."""
    if not isinstance(local, tuple) or local[1] != port:
        return False  # a Unix socket, or another port
    return only_ip is None or _literal_ip(local[0]) == only_ip


def _literal_ip(host: str) -> str | None:
    """``host`` normalised if it is an IP address; None for a name or a wildcard."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return None if address.is_unspecified else str(address)


def _vars() -> dict[str, Any]:
    """A little of what Go's expvar shows: the command line and this process's memory."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cmdline": sys.argv,
        "memstats": {"MaxRSS": usage.ru_maxrss * 1024},
        "pid": os.getpid(),
    }
