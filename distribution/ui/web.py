"""The UI's blueprint under ``/ui/`` and what every page shares: the session of the request,
security headers, rendering, access checks, errors, static files.

The pages are in :mod:`.browse` (repositories, tags, images), :mod:`.account` (sign-in and
sign-out) and :mod:`.deletes` (deleting tags):

=======================================  =============================================
``GET /ui/``                              repositories: filter, namespaces, pages
``GET /ui/r/<name>``                      a repository's tags; sort, filter, pages
``GET /ui/r/<name>/-/manifests/<ref>``    an image, an index or an artifact
``GET /ui/r/<name>/-/manifests/<d>/raw``  the manifest as stored (``/config``: its config)
``POST /ui/r/<name>/-/delete``            delete tags (a confirmation first)
``GET|POST /ui/sign-in``, ``POST /ui/sign-out``
``GET /ui/static/<file>``                 the stylesheet, the script, the icon
=======================================  =============================================

What a visitor may see and do is what the API would let them: ``policy.decide`` for pull
(seeing a repository) and delete (deleting its tags), with the identity of the session.
A repository the visitor may not pull answers 404 as one that does not exist.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.exceptions import HTTPException, NotFound

from distribution import access as rules
from distribution import errors, instrumentation, proxy
from distribution.api import access as request_access
from distribution.api import urls
from distribution.api.base import ROOT_HEADERS
from distribution.config import Configuration
from distribution.storage.driver import StorageDriverError
from distribution.ui import cache, pages, session, signin
from distribution.wrappers import Response

bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")

#: The ``app.extensions`` key of the UI's state.
EXTENSION = "distribution.ui"

#: Every page forbids what it does not need: scripts and styles from the UI's own files only,
#: no frames, no plugins, forms posting only here.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}

log = logging.getLogger(__name__)


@dataclass
class WebUI:
    """The UI's state in one process: storage view, sessions, sign-in, static files."""

    config: Configuration
    view: cache.StorageView
    sessions: session.Sessions
    signin: signin.SignIn
    static: dict[str, tuple[bytes, str, str]]
    #: The repository names each (list version, policy, identity) may see, remembered.
    visible: dict[tuple[int, int, rules.Identity], tuple[rules.Policy, list[str]]] = field(
        default_factory=dict
    )


def static_files() -> dict[str, tuple[bytes, str, str]]:
    """The static files, by name: their bytes, type and a digest for cache-busting URLs."""
    types = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
    found = {}
    for item in (resources.files(__package__) / "static").iterdir():
        suffix = item.name[item.name.rfind(".") :]
        if suffix in types:
            data = item.read_bytes()
            found[item.name] = (data, types[suffix], hashlib.sha256(data).hexdigest()[:12])
    return found


def state() -> WebUI:
    return current_app.extensions[EXTENSION]


# Every request -----------------------------------------------------------------------------------


@bp.before_request
def load_session() -> Response | None:
    """Who asks (from the cookie), and the page about token auth where the UI cannot work."""
    g.ui_started = time.perf_counter()
    ui = state()
    found = ui.sessions.load(request.cookies.get(session.COOKIE))
    if found is not None and found.user is not None and ui.signin.entry(found.user) != found.entry:
        found = None  # the password changed or the user went: sign in again
    g.ui_session = found
    g.ui_cookie = None
    g.identity = rules.Identity(found.user) if found and found.user else rules.ANONYMOUS
    if found and found.user:  # for the access log, and the actor of notification events
        g.user = request.environ[request_access.USER_ENVIRON] = found.user
    if request.endpoint == "ui.static":
        return None
    if ui.signin.mode == signin.UNSUPPORTED:
        return page("ui/unsupported.html", 501, title="Web UI not available")
    if _arrived_from_elsewhere():
        return page("ui/reload.html", 200, title="Loading")
    return None


@bp.after_request
def finish(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if g.get("ui_started") is not None:  # the server's time, in the browser's devtools too
        elapsed = (time.perf_counter() - g.ui_started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed:.1f}"
    if request.endpoint != "ui.static":
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
    if g.get("ui_cookie") is not None:
        response.set_cookie(
            session.COOKIE,
            state().sessions.dump(g.ui_cookie),
            max_age=state().sessions.left(g.ui_cookie),
            path=_cookie_path(),
            secure=_over_tls(),
            httponly=True,
            samesite="Strict",
        )
    return response


@bp.app_template_global()
def csrf_token() -> str:
    """The token every form of the page carries; starts a session if there is none."""
    return state().sessions.csrf_token(current_session())


@bp.app_template_global()
def static(name: str) -> str:
    return url_for("ui.static", filename=name, v=state().static[name][2])


for _name, _filter in (
    ("size", pages.human_size),
    ("ago", pages.ago),
    ("timestamp", pages.timestamp),
    ("short", pages.short_digest),
    ("command", pages.command_line),
    ("number", pages.number),
):
    bp.add_app_template_filter(_filter, _name)


@bp.route("/static/<filename>", methods=["GET"], endpoint="static")
def static_file(filename: str) -> Response:
    found = state().static.get(filename)
    if found is None:
        raise NotFound()
    data, mimetype, version = found
    response = Response(data, mimetype=mimetype)
    response.set_etag(version)
    if request.args.get("v") == version:
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response.make_conditional(request)


@bp.route("/<path:rest>", methods=["GET"])
def unknown(rest: str) -> Response:
    raise NotFound()


def link_from_root(original: Callable[[], Response]) -> Callable[[], Response]:
    """``GET /`` as before (an empty 200 for load balancers), but a browser asking for a page
    gets one that links to the UI."""

    def root() -> Response:
        response = original()
        if request.method == "GET" and "text/html" in (v for v, _ in request.accept_mimetypes):
            href = url_for("ui.repositories")
            body = (
                '<!doctype html><meta charset="utf-8"><title>Registry</title>'
                f'<p>This is a container registry. <a href="{href}">Browse it</a>.</p>'
            )
            response = Response(body, status=200, mimetype="text/html")
            response.headers.update(SECURITY_HEADERS)
            response.headers.update(ROOT_HEADERS)
        return response

    return root


@bp.errorhandler(Exception)
def render_error(error: Exception) -> Response:
    """Errors of UI pages are pages too (the API's are OCI JSON)."""
    if isinstance(error, HTTPException) and error.response is not None:
        return error.response  # abort(response): a redirect to the sign-in
    if isinstance(error, HTTPException):
        status, message = error.code or 500, error.description or error.name
    elif isinstance(error, errors.RegistryError):
        status, message = error.status, _registry_message(error)
    elif isinstance(error, StorageDriverError):
        log.error("ui: storage error on %s %s: %s", request.method, request.path, error)
        status, message = 503, "The storage back-end is unavailable. Try again shortly."
    else:
        log.exception("ui: unexpected error on %s %s", request.method, request.path)
        status, message = 500, "Something went wrong; the registry's log says what."
    titles = {403: "Not allowed", 404: "Not found", 503: "Unavailable"}
    return page("ui/message.html", status, title=titles.get(status, "Error"), message=message)


# Shared by the pages -----------------------------------------------------------------------------


#: Invisible characters that reorder or hide text (bidi controls, zero-width characters):
#: an image's author could make ``http://x/\u202etxt.exe`` read as ``http://x/exe.txt``.
_HIDDEN = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def reveal_hidden(value: Any) -> Any:
    """Jinja's ``finalize``: every value a page shows, with its hidden characters spelled
    out (``[U+202E]``), so that text always reads as it is. Markup (macros) is left alone:
    the values inside it went through here already."""
    if isinstance(value, str) and not isinstance(value, Markup) and _HIDDEN.search(value):
        return _HIDDEN.sub(lambda found: f"[U+{ord(found.group()):04X}]", value)
    return value


def page(template: str, status: int = 200, **values: Any) -> Response:
    ui_session = g.get("ui_session")
    notices: tuple[str, ...] = ()
    if ui_session is not None and ui_session.notices and g.get("ui_cookie") is None:
        notices = ui_session.notices
        g.ui_cookie = g.ui_session = ui_session.without_notices()
    values.setdefault("title", "")
    body = render_template(
        template,
        user=(g.get("identity") or rules.ANONYMOUS).user,
        signin_mode=state().signin.mode,
        notices=notices,
        host=registry_host(),
        **values,
    )
    return Response(body, status=status, mimetype="text/html")


def plain(body: bytes | None) -> Response:
    if body is None:
        raise NotFound("the content is missing or too large to show")
    return Response(body, mimetype="text/plain", headers={"Content-Disposition": "inline"})


def require_pull(name: str) -> None:
    """Go on if the visitor may see ``name``; else to the sign-in (anonymous) or a 404."""
    if request_access.policy().decide(g.identity, name, "pull").allowed:
        return
    if g.identity.anonymous:
        abort(to_sign_in())
    raise NotFound(f"There is no repository {name}, or you may not see it.")


def delete_note(name: str) -> str | None:
    """Why the visitor may not delete tags of ``name`` (None: they may). A pull-through cache
    deletes nothing, as its API answers ``UNSUPPORTED`` (as Go's does)."""
    config = state().config
    if proxy.enabled(config):
        return "This registry is a pull-through cache: what it holds is the upstream's to delete."
    if not config.storage.delete.enabled:
        return "Deleting is off on this registry (storage.delete.enabled)."
    if config.storage.maintenance.readonly.enabled:
        return "The registry is in read-only mode."
    decision = request_access.policy().decide(g.identity, name, "delete")
    if not decision.allowed:
        return "You may not delete tags here." if not g.identity.anonymous else "Sign in to delete."
    return None


def immutable(name: str, tag: str) -> str | None:
    return request_access.policy().immutable(name, tag)


def check_csrf() -> None:
    if request.headers.get("Sec-Fetch-Site") == "cross-site" or not state().sessions.csrf_valid(
        g.get("ui_session"), request.form.get("csrf")
    ):
        raise _CsrfRefused()


class _CsrfRefused(HTTPException):
    code = 403
    description = (
        "This form has expired or did not come from this site. Go back, reload the page and "
        "try again (the UI needs cookies)."
    )


def current_session() -> session.Session:
    """The visitor's session, started (and sent as a cookie) if there is none yet."""
    found = g.get("ui_cookie") or g.get("ui_session")
    if found is None:
        found = g.ui_cookie = g.ui_session = session.Session.new()
    return found


def to_sign_in() -> Response:
    if state().signin.mode == signin.OPEN:
        raise NotFound()
    return redirect(url_for("ui.sign_in", next=request.full_path.rstrip("?")), 303)


def _arrived_from_elsewhere() -> bool:
    """A GET from another site's link carries no ``SameSite=Strict`` cookie: such a visitor
    gets a page that reloads itself, and the reload (from this site) brings the cookie."""
    return (
        request.method == "GET"
        and session.COOKIE not in request.cookies
        and request.headers.get("Sec-Fetch-Site") == "cross-site"
        and request.headers.get("Sec-Fetch-Mode") == "navigate"
    )


def _cookie_path() -> str:
    return (request.script_root or "") + "/ui/"


def _over_tls() -> bool:
    return urls.base_url(None).startswith("https://")


def registry_host() -> str:
    """The host (and port) clients pull from, as the client reached it."""
    base = urls.base_url(state().config.http.host)
    return base.split("://", 1)[-1]


def peer() -> str:
    return instrumentation.remote_addr(request.environ)


def _registry_message(error: errors.RegistryError) -> str:
    if isinstance(error, errors.NameUnknown):
        return "This repository has no tags."
    return error.message
