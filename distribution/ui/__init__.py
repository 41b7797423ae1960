"""The web UI, served by the registry itself under ``/ui/`` (our extension ``ui.enabled``).

Server-rendered pages (Jinja2) that read storage directly, with the same users and the same
access decision as the API; a little plain JavaScript copies digests and confirms deletes,
and every page reads and works without it. The pieces:

* :mod:`.web`: the blueprint, what every page shares (sessions of requests, security headers,
  access checks, errors); its pages are in :mod:`.browse`, :mod:`.account`, :mod:`.deletes`;
* :mod:`.session` and :mod:`.signin`: the signed session cookie, CSRF tokens, and signing in
  against the configured access controller;
* :mod:`.cache`: what the UI remembers of storage and how it stays correct;
* :mod:`.facts`, :mod:`.versions`, :mod:`.pages`: reading manifests and configs, ordering
  tags, paging, with no I/O;
* :mod:`.usage`: stored bytes, from the usage job's last report.
"""

from __future__ import annotations

import secrets

from flask import Flask

from distribution.auth import EXTENSION as AUTH_EXTENSION
from distribution.config import Configuration
from distribution.storage.registry import Registry
from distribution.ui import account, browse, cache, deletes, session, signin, usage, web

EXTENSION = web.EXTENSION
#: The modules whose routes the blueprint serves (imported for that).
PAGES = (browse, account, deletes)

__all__ = ["EXTENSION", "init_app"]


def init_app(app: Flask, config: Configuration, registry: Registry) -> None:
    """Serve the UI from ``app`` unless ``ui.enabled`` is false (``/ui/`` is then a 404)."""
    if not config.ui.enabled:
        return
    app.extensions[EXTENSION] = web.WebUI(
        config=config,
        view=cache.StorageView(registry.driver, registry.blobs),
        # ``registry serve`` always has a secret (made up, with a warning, when unset).
        sessions=session.Sessions(
            config.http.secret or secrets.token_urlsafe(32), config.ui.sessiontimeout
        ),
        signin=signin.SignIn(app.extensions.get(AUTH_EXTENSION)),
        static=web.static_files(),
    )
    app.jinja_env.finalize = web.reveal_hidden  # only the UI renders templates
    usage.init_app(app, config, registry.driver)
    app.register_blueprint(web.bp)
    app.view_functions["base.root"] = web.link_from_root(app.view_functions["base.root"])
