"""Per-request instrumentation: the request id, the request's log fields, HTTP metrics.

As in the Go registry, every request gets a fresh id (``http.request.id``, a UUID; an incoming
``X-Request-Id`` is not trusted), kept in ``flask.g.request_id`` and put, with the request's
method, URI, host, remote address and user agent, on every line logged while it is handled.
Each request ends with Go's ``response completed`` line, or ``response completed with error``
with the OCI error's code, message and detail.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from flask import Flask, Response, g, request

from distribution import log as log_module
from distribution import metrics
from distribution.api.filebody import DIRECT_BYTES
from distribution.config import Configuration

#: The ``environ`` key the route's metrics label travels in, from Flask to :func:`instrument`.
ROUTE_KEY = "distribution.route"

log = logging.getLogger(__name__)


def init_app(app: Flask, config: Configuration) -> None:
    """Install the hooks; call it first, so that later hooks log with the request's fields."""
    app.before_request(_begin)
    app.after_request(_log_response)
    app.teardown_request(_end)
    metrics.record(metrics_served(config))
    if metrics_served(config):
        app.wsgi_app = instrument(app.wsgi_app)


def metrics_served(config: Configuration) -> bool:
    """Metrics are kept when the debug server exposes them, as Go's ``configurePrometheus``."""
    debug = config.http.debug
    return bool(debug.addr) and debug.prometheus.enabled


def request_fields(environ: Mapping[str, Any], request_id: str) -> dict[str, Any]:
    """Go's request logger fields (``dcontext.GetRequestLogger``) for a WSGI request."""
    fields = {
        "http.request.id": request_id,
        "http.request.method": environ.get("REQUEST_METHOD", ""),
        "http.request.host": environ.get("HTTP_HOST", ""),
        "http.request.uri": _request_uri(environ),
        "http.request.useragent": environ.get("HTTP_USER_AGENT", ""),
        "http.request.remoteaddr": remote_addr(environ),
    }
    if environ.get("HTTP_REFERER"):
        fields["http.request.referer"] = environ["HTTP_REFERER"]
    if environ.get("CONTENT_TYPE"):
        fields["http.request.contenttype"] = environ["CONTENT_TYPE"]
    return fields


def remote_addr(environ: Mapping[str, Any]) -> str:
    """The client's address as Go's ``requestutil.RemoteAddr`` finds it.

    The first ``X-Forwarded-For`` entry, else ``X-Real-Ip``, when it is an IP address; else
    the peer's ``host:port``.
    """
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "").partition(",")[0].strip()
    for candidate in (forwarded, environ.get("HTTP_X_REAL_IP", "").strip()):
        if candidate and _is_ip(candidate):
            return candidate
    host, port = environ.get("REMOTE_ADDR", ""), environ.get("REMOTE_PORT")
    if ":" in host:  # IPv6, bracketed as Go's ``net.JoinHostPort`` writes it
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def go_duration(seconds: float) -> str:
    """``seconds`` as Go's ``time.Duration.String`` writes it: ``1.5ms``, ``2m3.25s``."""
    ns = round(seconds * 1e9)
    if ns < 1000:
        return f"{ns}ns" if ns else "0s"
    if ns < 1_000_000:
        return _decimal(ns, 1000) + "µs"
    if ns < 1_000_000_000:
        return _decimal(ns, 1_000_000) + "ms"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    text = _decimal(rest, 10**9) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    return f"{hours}h{text}" if hours else text


def approximate_request_size(environ: Mapping[str, Any]) -> int:
    """promhttp's request size: URI, method, protocol, headers, host and declared body."""
    size = len(_request_uri(environ)) + len(environ.get("REQUEST_METHOD", ""))
    size += len(environ.get("SERVER_PROTOCOL", ""))
    for key, value in environ.items():
        if key.startswith("HTTP_") and isinstance(value, str):
            size += len(key) - 5 + len(value)
    length = environ.get("CONTENT_LENGTH") or ""
    return size + (int(length) if length.isdigit() else 0)


def instrument(app: Callable) -> Callable:
    """Count and time each routed request, to the last byte of its body, per Go route name.

    A blob's bytes sent on the socket around the server (:mod:`distribution.api.filebody`)
    count too.
    """

    def instrumented(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        environ[ROUTE_KEY] = None
        response: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            response["status"], response["headers"] = status, headers
            return start_response(status, headers, exc_info)

        def done(route: str, written: int) -> None:
            metrics.http_in_flight.labels(route).dec()
            code = response.get("status", "500").partition(" ")[0]
            method = environ.get("REQUEST_METHOD", "").lower()
            metrics.http_requests.labels(route, code, method).inc()
            metrics.http_duration.labels(route, method).observe(time.perf_counter() - started)
            metrics.http_request_size.labels(route).observe(approximate_request_size(environ))
            metrics.http_response_size.labels(route).observe(written)

        try:
            body = app(environ, capture)
        except BaseException:
            route = environ.get(ROUTE_KEY)
            if route is not None:
                done(route, 0)
            raise
        route = environ.get(ROUTE_KEY)
        if route is None:
            return body
        return _CountingBody(
            body, lambda written: done(route, written + environ.get(DIRECT_BYTES, 0))
        )

    return instrumented


class _CountingBody:
    """A response body that counts its bytes and reports them when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done = done
        self._written = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._written += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._done(self._written)


def new_request_id() -> str:
    """A random (version 4) UUID, as Go's: from the process's PRNG, which needs no system call
    (``uuid.uuid4`` reads ``os.urandom`` for each); ``random`` reseeds it after a fork."""
    bits = (random.getrandbits(128) & _V4_MASK) | _V4_BITS
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


_V4_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & (2**128 - 1)
_V4_BITS = (0x4000 << 64) | (0x8000 << 48)


def _begin() -> None:
    ctx, req = g._get_current_object(), request._get_current_object()  # each proxy looked up once
    environ = req.environ
    request_id = ctx.request_id = new_request_id()
    ctx.started_at = time.perf_counter()
    ctx.log_token = log_module.bind(_RequestFields(environ, request_id, req.view_args))
    if ROUTE_KEY in environ:
        route = metrics.route_name(req.endpoint)
        environ[ROUTE_KEY] = route
        if route is not None:
            metrics.http_in_flight.labels(route).inc()


class _RequestFields(Mapping[str, Any]):
    """A request's log fields (:func:`request_fields` and the route's variables), worked out
    when a line first reads them: below ``info`` most requests log nothing."""

    __slots__ = ("_environ", "_fields", "_request_id", "_view_args")

    def __init__(
        self, environ: Mapping[str, Any], request_id: str, view_args: Mapping[str, Any] | None
    ) -> None:
        self._environ, self._request_id, self._view_args = environ, request_id, view_args
        self._fields: dict[str, Any] | None = None

    def _worked_out(self) -> dict[str, Any]:
        if self._fields is None:
            fields = request_fields(self._environ, self._request_id)
            for key, value in (self._view_args or {}).items():
                if key in ("name", "reference", "digest", "uuid"):
                    fields[f"vars.{key}"] = value
            self._fields = fields
        return self._fields

    def __getitem__(self, key: str) -> Any:
        return self._worked_out()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._worked_out())

    def __len__(self) -> int:
        return len(self._worked_out())


def _log_response(response: Response) -> Response:
    """Go's last line for each request, with the response's fields."""
    if response.status_code < 400 and not log.isEnabledFor(logging.INFO):
        return response
    fields: dict[str, Any] = {
        "http.response.status": response.status_code,
        "http.response.written": response.content_length or 0,
        "http.response.duration": go_duration(time.perf_counter() - g.get("started_at", 0.0)),
    }
    if response.mimetype:
        fields["http.response.contenttype"] = response.content_type
    user = getattr(g, "user", None)
    if user:
        fields["auth.user.name"] = user
    if response.status_code < 400:
        log.info("response completed", extra={log_module.FIELDS: fields})
        return response
    body = response.get_json(silent=True) if response.is_json else None
    for error in (body or {}).get("errors", []) if isinstance(body, dict) else []:
        error_fields = {
            **fields,
            "err.code": str(error.get("code", "")).lower().replace("_", " "),
            "err.message": error.get("message", ""),
        }
        if "detail" in error:
            error_fields["err.detail"] = error["detail"]
        log.error("response completed with error", extra={log_module.FIELDS: error_fields})
    return response


def _end(exc: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        log_module.unbind(token)


def _request_uri(environ: Mapping[str, Any]) -> str:
    uri = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if uri:
        return uri
    query = environ.get("QUERY_STRING")
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    return f"{path}?{query}" if query else path


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _decimal(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    digits = f"{part:0{len(str(unit)) - 1}d}".rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)
