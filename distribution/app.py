"""The Flask application factory: blueprints, response headers, error rendering."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, Request, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from flask.sessions import NullSession, SessionInterface, SessionMixin
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.routing import MapAdapter
from werkzeug.wsgi import get_host

from distribution import access as access_rules
from distribution import (
    errors,
    health,
    instrumentation,
    notifications,
    proxy,
    reference,
    routing,
    tracing,
    ui,
    wrappers,
)
from distribution.api import (
    access,
    base,
    blobs,
    body,
    catalog,
    context,
    manifests,
    referrers,
    tags,
    uploads,
    usage,
)
from distribution.auth import EXTENSION as AUTH_EXTENSION
from distribution.auth import factory as auth_factory
from distribution.config import Configuration
from distribution.storage.driver import StorageDriverError
from distribution.storage.registry import Registry

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"

#: Methods that change nothing, allowed in read-only mode.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

BLUEPRINTS = [
    base.bp,
    blobs.bp,
    uploads.bp,
    manifests.bp,
    tags.bp,
    catalog.bp,
    referrers.bp,
    usage.bp,
]

log = logging.getLogger(__name__)


class GoJSON(DefaultJSONProvider):
    """JSON answers typed and ordered as the Go registry writes them: ``application/json;
    charset=utf-8``, keys in the order built (``code``, ``message``, ``detail``), not sorted."""

    mimetype = "application/json; charset=utf-8"
    sort_keys = False


class RegistryFlask(Flask):
    """Flask with less to do per request, for options the registry never sets:

    - no check, for every hook and view, that the function is not ``async`` (none is, and
      ``inspect`` takes a few microseconds each time);
    - no Flask session (the UI signs its own cookie, :mod:`distribution.ui.session`), and
      one empty stand-in shared by every request;
    - answers of :class:`distribution.wrappers.Response`, whose headers go out uncopied;
    - the URL adapter bound with the request's host found once, not twice;
    - URL matches remembered (:mod:`distribution.routing`).
    """

    url_map_class = routing.RegistryMap
    response_class = wrappers.Response

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_interface = _NoSessions()

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        return func

    def create_url_adapter(self, request: Request | None) -> MapAdapter | None:
        custom = self.config["TRUSTED_HOSTS"] is not None or self.config["SERVER_NAME"]
        if request is None or custom or self.url_map.host_matching or self.subdomain_matching:
            return super().create_url_adapter(request)
        environ = request.environ
        request.host = host = get_host(environ)  # type: ignore[misc]
        return self.url_map.bind(
            host,
            _wsgi_text(environ.get("SCRIPT_NAME")),
            self.url_map.default_subdomain or "",
            environ["wsgi.url_scheme"],
            environ["REQUEST_METHOD"],
            _wsgi_text(environ.get("PATH_INFO")),
            query_args=_wsgi_text(environ.get("QUERY_STRING")),
        )


class _NoSessions(SessionInterface):
    """No session is opened nor saved; every request shares one empty, read-only stand-in."""

    _null = NullSession()

    def open_session(self, app: Flask, request: Request) -> None:
        return None

    def make_null_session(self, app: Flask) -> NullSession:
        return self._null

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def _wsgi_text(value: str | None) -> str | None:
    """A WSGI string (bytes as latin-1) as the text werkzeug routes on (UTF-8)."""
    return None if value is None else value.encode("latin-1").decode(errors="replace")


def create_app(
    config: Configuration, registry: Registry | None = None, *, start: bool = True
) -> Flask:
    """Build the registry's WSGI application for ``config``.

    ``registry`` defaults to one built from ``config.storage``; tests pass their own. Without
    ``start`` no background thread starts (see :func:`start`).
    """
    app = RegistryFlask("distribution")
    app.json = GoJSON(app)
    instrumentation.init_app(app, config)
    app.extensions[context.EXTENSION] = registry or Registry.from_config(config)
    app.url_map.strict_slashes = False
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    # A hook, not a URL value preprocessor: those run before every ``before_request`` hook,
    # so a refused name would be logged without the request's fields and timing.
    app.before_request(_check_name)
    app.extensions[AUTH_EXTENSION] = auth_factory.create(config.auth)
    app.extensions[access_rules.EXTENSION] = access_rules.PolicySource.from_config(config)
    app.before_request(access.authorize)
    ui.init_app(app, config, app.extensions[context.EXTENSION])
    app.register_error_handler(errors.RegistryError, _render_registry_error)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(StorageDriverError, _render_storage_error)
    app.register_error_handler(Exception, _render_unexpected)
    notifications.init_app(app, config, start)
    proxy.init_app(app, config)
    usage.init_app(app, config)
    manifests.init_app(app, config)

    if config.storage.maintenance.readonly.enabled:
        app.before_request(_refuse_writes)
    if config.http.prefix and config.http.prefix.strip("/"):
        app.wsgi_app = _mount(app.wsgi_app, "/" + config.http.prefix.strip("/"))
    checks = health.from_config(config, app.extensions[context.EXTENSION].driver, start)
    app.extensions[health.EXTENSION] = checks
    app.wsgi_app = health.gate(app.wsgi_app, checks)
    app.wsgi_app = body.discard_unread(app.wsgi_app)
    app.wsgi_app = tracing.wrap(app.wsgi_app)  # outermost: the span covers everything
    headers = config.http.headers

    @app.after_request
    def add_headers(response: Response) -> Response:
        if request.path.startswith("/v2"):
            response.headers[API_VERSION_HEADER] = API_VERSION
        for name, values in headers.items():
            for value in values:
                response.headers.add(name, value)
        return response

    return app


def start(app: Flask) -> None:
    """Start ``app``'s background threads in this process: health checks and notification
    delivery. ``registry serve`` builds the app once in gunicorn's master, which runs none, and
    each worker starts them as it boots, since threads do not survive a fork."""
    app.extensions[health.EXTENSION].start()
    dispatcher = app.extensions.get(notifications.EXTENSION)
    if dispatcher is not None:
        dispatcher.start()


def error_response(error: errors.RegistryError) -> Response:
    """Render ``error`` as the OCI error body with the code's status."""
    response = jsonify({"errors": [error.to_dict()]})
    response.status_code = error.status
    response.headers.update(error.headers)
    return response


def _check_name() -> None:
    """Every route with a repository name validates it before a handler runs (and before
    access is decided), after :mod:`distribution.instrumentation` has begun the request."""
    values = request.view_args
    if values and "name" in values:
        reference.check_name(values["name"])


def _refuse_writes() -> None:
    if request.method not in SAFE_METHODS and request.path.startswith("/v2/"):
        raise errors.Unsupported("registry is in read-only mode")


def _mount(wsgi_app: WSGIApplication, prefix: str) -> WSGIApplication:
    """Serve the API under ``http.prefix``; ``GET /`` stays 200 for load balancers."""

    def outside(environ: WSGIEnvironment, start_response: StartResponse):
        status = "200 OK" if environ.get("PATH_INFO", "/") == "/" else "404 Not Found"
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return [b""]

    return DispatcherMiddleware(outside, {prefix: wsgi_app})


def _render_registry_error(error: errors.RegistryError) -> Response:
    return error_response(error)


def _render_http_error(error: HTTPException) -> Response:
    """Routing and protocol errors also answer in OCI JSON, never an HTML page."""
    status = error.code or 500
    code = errors.Unsupported if status in (404, 405) else errors.Unknown
    response = error_response(code(error.description))
    response.status_code = status
    if isinstance(error, MethodNotAllowed) and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _render_storage_error(error: StorageDriverError) -> Response:
    """A storage back-end that failed (down, throttling, timing out) is worth a retry: 503."""
    log.error("storage error handling %s %s: %s", request.method, request.path, error)
    return error_response(errors.Unavailable("storage back-end unavailable"))


def _render_unexpected(error: Exception) -> Response:
    # At Go's panic level: what Go's panicHandler logs, and what ``log.hooks`` mail on panic.
    log.critical("unexpected error handling %s %s", request.method, request.path, exc_info=error)
    return error_response(errors.Unknown())
