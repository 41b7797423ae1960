"""Signing in to the UI and out of it (see :mod:`.signin` for whose credentials count)."""

from __future__ import annotations

import logging

from flask import Response, g, redirect, request, url_for

from distribution import access as rules
from distribution import log as log_module
from distribution.ui import pages, session, signin, web
from distribution.ui.web import bp, state

log = logging.getLogger(__name__)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Response:
    ui = state()
    home = url_for("ui.repositories")
    target = pages.safe_next(request.values.get("next"), home, home)
    if ui.signin.mode == signin.OPEN:
        return redirect(target, 303)
    if request.method == "GET":
        return web.page("ui/sign-in.html", title="Sign in", next=target, error=None)
    web.check_csrf()
    user = request.form.get("username", "")
    signed = ui.signin.check(user, request.form.get("password", ""))
    if signed is None:
        log.warning(
            "ui: sign-in failed",
            extra={
                log_module.FIELDS: {"auth.user.name": user[:256], "auth.remoteaddr": web.peer()}
            },
        )
        error = "Wrong user name or password."
        return web.page(
            "ui/sign-in.html", 401, title="Sign in", next=target, error=error, typed=user
        )
    g.ui_cookie = session.Session.new(signed, ui.signin.entry(signed) or "")
    g.ui_session = g.ui_cookie
    g.identity = rules.Identity(signed)
    log.info(
        "ui: signed in",
        extra={log_module.FIELDS: {"auth.user.name": signed, "auth.remoteaddr": web.peer()}},
    )
    return redirect(target, 303)


@bp.route("/sign-out", methods=["POST"])
def sign_out() -> Response:
    web.check_csrf()
    g.ui_cookie = session.Session.new().with_notices("You are signed out.")
    return redirect(url_for("ui.repositories"), 303)
