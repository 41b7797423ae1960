"""Deleting from the UI: the tags chosen (never their manifests or other tags), or a whole
repository (the admin action of :func:`distribution.api.usage.delete_repository`)."""

from __future__ import annotations

import logging

from flask import Response, g, redirect, request, url_for

from distribution import errors, reference
from distribution import log as log_module
from distribution.api import context
from distribution.api import manifests as api_manifests
from distribution.api import usage as api_usage
from distribution.digest import Digest
from distribution.storage.tags import TagStore
from distribution.ui import pages, web
from distribution.ui.web import bp, state

log = logging.getLogger(__name__)

#: A delete's notice names at most this many tags, in at most about this many characters, and
#: counts the rest: it travels in the session cookie, which must stay well under the 4 KB a
#: browser keeps and a proxy's header buffer (nginx's ``proxy_buffer_size``, 4 KB by default).
NOTICE_TAGS = 10
NOTICE_CHARS = 500


@bp.route("/r/<path:name>/-/delete", methods=["POST"])
def delete_tags(name: str) -> Response:
    """Delete the tags chosen, after a confirmation; only the tags, never their manifests.

    Each tag is sent with the digest it showed: a tag that moved since is kept, as is one that
    an ``immutable`` rule protects.
    """
    web.check_csrf()
    web.require_pull(name)
    note = web.delete_note(name)
    if note is not None:
        return web.page("ui/message.html", 403, title="Cannot delete", message=note)
    chosen = _chosen_tags(request.form.getlist("tag"))
    if not chosen:
        g.ui_cookie = web.current_session().with_notices("No tags were selected.")
        return redirect(url_for("ui.repository", name=name), 303)
    if request.form.get("confirm") != "yes":
        return web.page("ui/confirm.html", title=f"Delete tags of {name}", name=name, chosen=chosen)
    deleted, kept = [], []
    view, store = state().view, TagStore(context.registry().driver, name)
    for tag, digest in chosen:
        immutable = web.immutable(name, tag)
        entry = view.tag(name, tag)
        if immutable:
            kept.append(f"{tag} (immutable)")
        elif entry is None:
            kept.append(f"{tag} (already gone)")
        elif entry.digest != digest:
            kept.append(f"{tag} (moved to {pages.short_digest(entry.digest)} since you looked)")
        else:
            try:
                api_manifests.delete_tag(name, tag, store)
            except errors.ManifestUnknown:
                kept.append(f"{tag} (already gone)")
                continue
            deleted.append(tag)
    view.forget(name)
    _audit("ui: tags deleted", name, deleted, kept)
    notices = []
    if deleted:
        notices.append(f"Deleted {len(deleted)} tag(s): {_some(deleted)}.")
    if kept:
        notices.append(f"Kept {len(kept)} tag(s): {_some(kept)}.")
    g.ui_cookie = web.current_session().with_notices(*notices)
    return redirect(url_for("ui.repository", name=name), 303)


@bp.route("/r/<path:name>/-/delete-repository", methods=["POST"])
def delete_repository(name: str) -> Response:
    """Delete the whole repository after a confirmation: its tags, manifests, links and
    uploads go at once, its blobs at the next garbage collection."""
    web.check_csrf()
    web.require_pull(name)
    note = web.delete_note(name)
    if note is not None:
        return web.page("ui/message.html", 403, title="Cannot delete", message=note)
    if request.form.get("confirm") != "yes":
        return web.page("ui/confirm-repository.html", title=f"Delete {name}", name=name)
    try:
        deleted = api_usage.delete_repository(name, g.identity)
    except errors.RegistryError as error:
        return web.page(
            "ui/message.html", error.status, title="Cannot delete", message=error.message
        )
    state().view.deleted(name)
    _audit("ui: repository deleted", name, list(deleted.tags), [])
    g.ui_cookie = web.current_session().with_notices(
        f"Deleted {name}: {len(deleted.tags)} tag(s) and {len(deleted.manifests)} manifest(s). "
        "Its blobs go at the next garbage collection."
    )
    return redirect(url_for("ui.repositories"), 303)


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


def _some(items: list[str]) -> str:
    """The first items, within :data:`NOTICE_TAGS` and :data:`NOTICE_CHARS`, then how many
    more (the audit log has them all)."""
    shown: list[str] = []
    length = 0
    for item in items[:NOTICE_TAGS]:
        length += len(item) + 2
        if shown and length > NOTICE_CHARS:
            break
        shown.append(item)
    rest = len(items) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


def _audit(message: str, name: str, deleted: list[str], kept: list[str]) -> None:
    fields = {
        "auth.user.name": g.identity.user or "",
        "auth.remoteaddr": web.peer(),
        "vars.name": name,
        "ui.deleted": ",".join(deleted),
        "ui.kept": ",".join(kept),
    }
    log.info(message, extra={log_module.FIELDS: fields})
