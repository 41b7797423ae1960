"""The Flask application factory: blueprints, response headers, error rendering."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from distribution import errors
from distribution.api import base
from distribution.config import Configuration

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"

log = logging.getLogger(__name__)


def create_app(config: Configuration) -> Flask:
    """Build the registry's WSGI application for ``config``."""
    app = Flask("distribution")
    app.extensions["registry.config"] = config
    app.register_blueprint(base.bp)
    app.register_error_handler(errors.RegistryError, _render_registry_error)
    app.register_error_handler(HTTPException, _render_http_error)
    app.register_error_handler(Exception, _render_unexpected)

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


def error_response(error: errors.RegistryError) -> Response:
    """Render ``error`` as the OCI error body with the code's status."""
    response = jsonify({"errors": [error.to_dict()]})
    response.status_code = error.status
    return response


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


def _render_unexpected(error: Exception) -> Response:
    log.exception("unexpected error handling %s %s", request.method, request.path)
    return error_response(errors.Unknown())
