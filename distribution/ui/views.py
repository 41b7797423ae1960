"""The UI's pages: one Flask blueprint under ``/ui/``.

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
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException, NotFound

from distribution import access as rules
from distribution import errors, instrumentation, notifications, reference
from distribution import log as log_module
from distribution.api import access as request_access
from distribution.api import context, urls
from distribution.config import Configuration
from distribution.digest import Digest
from distribution.storage import referrers as referrer_store
from distribution.storage.driver import StorageDriverError
from distribution.storage.manifests import ManifestStore
from distribution.storage.tags import TagStore
from distribution.ui import cache, facts, pages, session, signin, usage, versions

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
#: Cosign's tag scheme: signatures, attestations and SBOMs tagged ``sha256-<hex>.<suffix>``.
COSIGN_SUFFIXES = {".sig": "signature", ".att": "attestation", ".sbom": "SBOM"}
SORTS = ("-pushed", "pushed", "-name", "name")
#: Shown of the tags pointing at one manifest, on its page.
TAGS_SHOWN = 50

log = logging.getLogger(__name__)


@dataclass
class WebUI:
    """The UI's state in one process: storage view, sessions, sign-in, static files."""

    config: Configuration
    view: cache.StorageView
    sessions: session.Sessions
    signin: signin.SignIn
    static: dict[str, tuple[bytes, str, str]]


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


# Request set-up ----------------------------------------------------------------------------


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
    if request.endpoint == "ui.static":
        return None
    if ui.signin.mode == signin.UNSUPPORTED:
        return _page("ui/unsupported.html", 501, title="Web UI not available")
    if _arrived_from_elsewhere():
        return _page("ui/reload.html", 200, title="Loading")
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
            max_age=int(state().sessions.timeout),
            path=_cookie_path(),
            secure=_over_tls(),
            httponly=True,
            samesite="Strict",
        )
    return response


@bp.app_template_global()
def csrf_token() -> str:
    """The token every form of the page carries; starts a session if there is none."""
    return state().sessions.csrf_token(_current_session())


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


# Pages --------------------------------------------------------------------------------------


@bp.route("/", methods=["GET"])
def repositories() -> Response:
    policy, identity = request_access.policy(), g.identity
    visibility = policy.visibility(identity)
    if visibility.nothing and identity.anonymous:
        return _to_sign_in()
    names, version = state().view.repositories()
    visible = _visible_names(names, version, policy, identity, visibility)
    namespace = request.args.get("ns")
    shown = pages.matching(visible, request.args.get("q", ""), namespace)
    page = pages.paginate(
        shown, pages.page_number(request.args.get("page")), pages.REPOSITORIES_PER_PAGE
    )
    provider = usage.provider(current_app)
    rows = [
        (name, state().view.summarise(name), provider.repository(name) if provider else None)
        for name in page.items
    ]
    return _page(
        "ui/repositories.html",
        title="Repositories",
        page=page,
        rows=rows,
        visible=len(visible),
        namespaces=pages.namespaces(visible),
        namespace=namespace,
        query=request.args.get("q", ""),
        total=provider.total() if provider else None,
    )


@bp.route("/r/<path:name>", methods=["GET"])
def repository(name: str) -> Response:
    refusal = _refuse_pull(name)
    if refusal is not None:
        return refusal
    view = state().view
    table = view.tags(name)
    sort = request.args.get("sort", SORTS[0])
    sort = sort if sort in SORTS else SORTS[0]
    order = _order(table, sort)
    query = request.args.get("q", "")
    if query.strip():
        needle = query.strip().lower()
        order = [tag for tag in order if needle in tag.lower()]
    page = pages.paginate(order, pages.page_number(request.args.get("page")), pages.TAGS_PER_PAGE)
    rows = []
    for tag in page.items:
        entry = view.tag(name, tag)  # read now: a row shown is never stale
        if entry is not None:
            rows.append(_TagRow(tag, entry, view.summary(entry.digest), _immutable(name, tag)))
    deletable = _may_delete(name)
    summary = view.summarise(name, table)
    return _page(
        "ui/repository.html",
        title=name,
        name=name,
        page=page,
        rows=rows,
        sort=sort,
        query=query,
        summary=summary,
        deletable=deletable,
        delete_note=_delete_note(name),
        pull=f"docker pull {_registry_host()}/{name}",
        complete=table.complete,
    )


@bp.route("/r/<path:name>/-/manifests/<reference>", methods=["GET"])
def manifest(name: str, reference: str) -> Response:
    refusal = _refuse_pull(name)
    if refusal is not None:
        return refusal
    view = state().view
    digest, tag = _resolve(name, reference)
    found = view.manifest(digest)
    config = None
    if (
        found.kind == facts.IMAGE
        and found.config
        and found.config.media_type in facts.IMAGE_CONFIGS
    ):
        config = view.config(found.config.digest)
    try:
        table = view.tags(name)
        tags = sorted(view.tags_of(table, digest), key=versions.key)
    except errors.NameUnknown:
        table, tags = None, []
    children = [(child, view.summary(child.digest)) for child in found.children]
    body = view.read(digest)
    config_body = view.read(found.config.digest) if config is not None and found.config else None
    return _page(
        "ui/manifest.html",
        title=f"{name}:{tag}" if tag else f"{name}@{pages.short_digest(digest)}",
        name=name,
        digest=digest,
        tag=tag,
        manifest=found,
        summary=view.summary(digest),
        config=config,
        artifact_type=facts.artifact_type(found) if found.kind == facts.ARTIFACT else "",
        children=children,
        parent=_parent(request.args.get("index")),
        tags=tags[:TAGS_SHOWN],
        more_tags=max(0, len(tags) - TAGS_SHOWN),
        pushed=max((table.entries[t].pushed for t in tags), default=None) if table else None,
        referrers=_referrers(name, digest, table),
        raw=facts.pretty_json(body) if body is not None else None,
        raw_config=facts.pretty_json(config_body) if config_body is not None else None,
        pull=f"docker pull {_registry_host()}/{name}@{digest}",
        links=_links(found, config),
    )


@bp.route("/r/<path:name>/-/manifests/<reference>/raw", methods=["GET"])
def raw_manifest(name: str, reference: str) -> Response:
    """The manifest's bytes as stored, as plain text (never interpreted by the browser)."""
    refusal = _refuse_pull(name)
    if refusal is not None:
        return refusal
    digest, _ = _resolve(name, reference)
    return _plain(state().view.read(digest))


@bp.route("/r/<path:name>/-/manifests/<reference>/config", methods=["GET"])
def raw_config(name: str, reference: str) -> Response:
    """The config of an image or artifact manifest, as plain text."""
    refusal = _refuse_pull(name)
    if refusal is not None:
        return refusal
    digest, _ = _resolve(name, reference)
    found = state().view.manifest(digest)
    if found.config is None:
        raise NotFound("this manifest has no config")
    return _plain(state().view.read(found.config.digest))


@bp.route("/r/<path:name>/-/delete", methods=["POST"])
def delete_tags(name: str) -> Response:
    """Delete the tags chosen, after a confirmation; only the tags, never their manifests.

    Each tag is sent with the digest it showed: a tag that moved since is kept, as is one that
    an ``immutable`` rule protects.
    """
    _check_csrf()
    refusal = _refuse_pull(name)
    if refusal is not None:
        return refusal
    note = _delete_note(name)
    if note is not None:
        return _page("ui/message.html", 403, title="Cannot delete", message=note)
    chosen = _chosen_tags(request.form.getlist("tag"))
    if not chosen:
        g.ui_cookie = _current_session().with_notices("No tags were selected.")
        return redirect(url_for("ui.repository", name=name), 303)
    if request.form.get("confirm") != "yes":
        return _page("ui/confirm.html", title=f"Delete tags of {name}", name=name, chosen=chosen)
    deleted, kept = [], []
    view, store = state().view, TagStore(context.registry().driver, name)
    for tag, digest in chosen:
        immutable = _immutable(name, tag)
        entry = view.tag(name, tag)
        if immutable:
            kept.append(f"{tag} (immutable)")
        elif entry is None:
            kept.append(f"{tag} (already gone)")
        elif entry.digest != digest:
            kept.append(f"{tag} (moved to {pages.short_digest(entry.digest)} since you looked)")
        else:
            try:
                store.untag(tag)
            except errors.ManifestUnknown:
                kept.append(f"{tag} (already gone)")
                continue
            notifications.tag_deleted(name, tag)
            deleted.append(tag)
    view.forget(name)
    _audit("ui: tags deleted", name, deleted, kept)
    notices = []
    if deleted:
        notices.append(f"Deleted {len(deleted)} tag(s): {', '.join(deleted)}.")
    if kept:
        notices.append(f"Kept {len(kept)} tag(s): {', '.join(kept)}.")
    g.ui_cookie = _current_session().with_notices(*notices)
    return redirect(url_for("ui.repository", name=name), 303)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    ui = state()
    home = url_for("ui.repositories")
    target = pages.safe_next(request.values.get("next"), home, home)
    if ui.signin.mode == signin.OPEN:
        return redirect(target, 303)
    if request.method == "GET":
        return _page("ui/sign-in.html", title="Sign in", next=target, error=None)
    _check_csrf()
    user = request.form.get("username", "")
    signed = ui.signin.check(user, request.form.get("password", ""))
    if signed is None:
        log.warning(
            "ui: sign-in failed",
            extra={log_module.FIELDS: {"auth.user.name": user[:256], "auth.remoteaddr": _peer()}},
        )
        error = "Wrong user name or password."
        return _page("ui/sign-in.html", 401, title="Sign in", next=target, error=error, typed=user)
    g.ui_cookie = session.Session.new(signed, ui.signin.entry(signed) or "")
    g.ui_session = g.ui_cookie
    g.identity = rules.Identity(signed)
    log.info(
        "ui: signed in",
        extra={log_module.FIELDS: {"auth.user.name": signed, "auth.remoteaddr": _peer()}},
    )
    return redirect(target, 303)


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    _check_csrf()
    g.ui_cookie = session.Session.new().with_notices("You are signed out.")
    return redirect(url_for("ui.repositories"), 303)


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


# Errors -------------------------------------------------------------------------------------


@bp.errorhandler(Exception)
def render_error(error: Exception) -> Response:
    """Errors of UI pages are pages too (the API's are OCI JSON)."""
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
    return _page("ui/message.html", status, title=titles.get(status, "Error"), message=message)


# Helpers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TagRow:
    tag: str
    entry: cache.TagEntry
    summary: facts.Summary
    immutable: str | None


def _page(template: str, status: int = 200, **values: Any) -> Response:
    ui_session = g.get("ui_session")
    notices: tuple[str, ...] = ()
    if ui_session is not None and ui_session.notices and g.get("ui_cookie") is None:
        notices = ui_session.notices
        g.ui_cookie = g.ui_session = session.Session(
            ui_session.nonce, ui_session.user, ui_session.entry
        )
    values.setdefault("title", "")
    body = render_template(
        template,
        user=(g.get("identity") or rules.ANONYMOUS).user,
        signin_mode=state().signin.mode,
        notices=notices,
        host=_registry_host(),
        **values,
    )
    return Response(body, status=status, mimetype="text/html")


def _plain(body: bytes | None) -> Response:
    if body is None:
        raise NotFound("the content is missing or too large to show")
    return Response(body, mimetype="text/plain", headers={"Content-Disposition": "inline"})


def _visible_names(
    names: list[str],
    version: int,
    policy: rules.Policy,
    identity: rules.Identity,
    visibility: rules.Visibility,
) -> list[str]:
    """The names ``identity`` may pull, remembered per list version, policy and identity."""
    if visibility.everything:
        return names
    memo: dict[tuple[int, int, rules.Identity], tuple[rules.Policy, list[str]]]
    memo = current_app.extensions.setdefault(EXTENSION + ".visible", {})
    key = (version, id(policy), identity)
    found = memo.get(key)
    if found is not None and found[0] is policy:
        return found[1]
    visible = [name for name in names if visibility.includes(name)]
    if len(memo) > 64:
        memo.clear()
    memo[key] = (policy, visible)
    return visible


def _refuse_pull(name: str) -> Response | None:
    """None if the visitor may see ``name``; else the sign-in (anonymous) or a 404."""
    if request_access.policy().decide(g.identity, name, "pull").allowed:
        return None
    if g.identity.anonymous:
        return _to_sign_in()
    raise NotFound(f"There is no repository {name}, or you may not see it.")


def _may_delete(name: str) -> bool:
    return _delete_note(name) is None


def _delete_note(name: str) -> str | None:
    """Why the visitor may not delete tags of ``name`` (None: they may)."""
    config = state().config
    if not config.storage.delete.enabled:
        return "Deleting is off on this registry (storage.delete.enabled)."
    if config.storage.maintenance.readonly.enabled:
        return "The registry is in read-only mode."
    decision = request_access.policy().decide(g.identity, name, "delete")
    if not decision.allowed:
        return "You may not delete tags here." if not g.identity.anonymous else "Sign in to delete."
    return None


def _immutable(name: str, tag: str) -> str | None:
    return request_access.policy().immutable(name, tag)


def _order(table: cache.TagTable, sort: str) -> list[str]:
    entries = table.entries
    by = sort.lstrip("-")
    if by == "name":
        ascending = table.order("name", versions.key)
    else:
        ascending = table.order("pushed", lambda tag: (entries[tag].pushed, versions.key(tag)))
    if not sort.startswith("-"):
        return ascending
    descending = table._orders.get(sort)
    if descending is None:
        descending = table._orders[sort] = ascending[::-1]
    return descending


def _resolve(name: str, text: str) -> tuple[str, str | None]:
    """``(digest, tag)`` of a tag or digest of ``name``; 404 when the repository lacks it."""
    if reference.is_tag(text):
        entry = state().view.tag(name, text)
        if entry is None:
            raise NotFound(f"{name} has no tag {text}.")
        return entry.digest, text
    try:
        digest = Digest.parse(text)
    except errors.DigestInvalid:
        raise NotFound(f"{text} is neither a tag nor a digest.") from None
    if not ManifestStore(context.registry().blobs, name).exists(digest):
        raise NotFound(f"{name} has no manifest {digest}.")
    return str(digest), None


def _parent(text: str | None) -> str | None:
    """The index a platform's page was reached from (``?index=``), if it is a digest."""
    try:
        return str(Digest.parse(text)) if text else None
    except errors.DigestInvalid:
        return None


def _referrers(
    name: str, digest: str, table: cache.TagTable | None
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The referrers of ``digest`` by artifact type: from the referrers API's index, and
    tags of cosign's tag scheme (``sha256-<hex>.sig``)."""
    store = ManifestStore(context.registry().blobs, name)
    groups: dict[str, list[dict[str, Any]]] = {}
    for found in referrer_store.referrers(store, Digest.parse(digest)):
        kind = str(found.get("artifactType") or found.get("mediaType") or "unknown")
        groups.setdefault(kind, []).append(
            {
                "digest": str(found.get("digest", "")),
                "size": found.get("size") if isinstance(found.get("size"), int) else None,
                "annotations": sorted(
                    (str(k), str(v)) for k, v in (found.get("annotations") or {}).items()
                )
                if isinstance(found.get("annotations"), dict)
                else [],
                "tag": None,
            }
        )
    if table is not None:
        stem = digest.replace(":", "-")
        for suffix, label in COSIGN_SUFFIXES.items():
            entry = table.entries.get(stem + suffix)
            if entry is not None:
                groups.setdefault(f"cosign {label} (tag {stem + suffix})", []).append(
                    {"digest": entry.digest, "size": None, "annotations": [], "tag": stem + suffix}
                )
    return sorted(groups.items())


def _links(found: facts.ManifestFacts, config: facts.ConfigFacts | None) -> list[tuple[str, str]]:
    """Web links the image declares (source, documentation), if they are http(s) URLs."""
    keys = (
        "org.opencontainers.image.source",
        "org.opencontainers.image.url",
        "org.opencontainers.image.documentation",
    )
    found_links: dict[str, str] = {}
    for key, value in [*found.annotations, *(config.labels if config else ())]:
        if key in keys and value.startswith(("https://", "http://")) and len(value) < 2048:
            found_links.setdefault(key.rsplit(".", 1)[1], value)
    return sorted(found_links.items())


def _chosen_tags(values: list[str]) -> list[tuple[str, str]]:
    """The ``tag@digest`` values of the delete form (malformed ones are ignored)."""
    chosen = []
    for value in values[:1000]:
        tag, _, digest = value.partition("@")
        if reference.is_tag(tag):
            try:
                chosen.append((tag, str(Digest.parse(digest))))
            except errors.DigestInvalid:
                continue
    return list(dict.fromkeys(chosen))


def _check_csrf() -> None:
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


def _current_session() -> session.Session:
    """The visitor's session, started (and sent as a cookie) if there is none yet."""
    found = g.get("ui_cookie") or g.get("ui_session")
    if found is None:
        found = g.ui_cookie = g.ui_session = session.Session.new()
    return found


def _to_sign_in() -> Response:
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


def _registry_host() -> str:
    """The host (and port) clients pull from, as the client reached it."""
    base = urls.base_url(state().config.http.host)
    return base.split("://", 1)[-1]


def _peer() -> str:
    return instrumentation.remote_addr(request.environ)


def _audit(message: str, name: str, deleted: list[str], kept: list[str]) -> None:
    fields = {
        "auth.user.name": g.identity.user or "",
        "auth.remoteaddr": _peer(),
        "vars.name": name,
        "ui.deleted": ",".join(deleted),
        "ui.kept": ",".join(kept),
    }
    log.info(message, extra={log_module.FIELDS: fields})


def _registry_message(error: errors.RegistryError) -> str:
    if isinstance(error, errors.NameUnknown):
        return "This repository has no tags."
    return error.message
