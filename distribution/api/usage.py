"""Usage for admins (``GET /v2/_usage``), and the hooks through which requests feed usage and
quotas: pulls and changes noted in the journal, pushes refused over a quota, and the
whole-repository delete the web UI's admin action calls.

``GET /v2/_usage`` answers the usage job's last figures as JSON (see
:mod:`distribution.usage.figures`); it never reads the repositories themselves:

* an admin (any signed-in user without access rules; with rules, one of ``access.admins``;
  with token auth, a token granting ``registry:catalog:*``; anyone on a registry without
  auth) gets the totals, namespaces, quotas and repositories;
* any other signed-in user gets the repositories they may pull, and no totals;
* ``?repository=NAME`` answers that repository only (404 ``NAME_UNKNOWN`` if the figures do
  not have it), ``?namespace=NS`` one namespace and its repositories (admins), and ``n`` and
  ``last`` page through the repositories as the catalog does, with a ``Link`` header.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from distribution import access as access_rules
from distribution import errors, notifications, quotas, usage
from distribution.api import access, context, pagination
from distribution.auth import EXTENSION as AUTH_EXTENSION
from distribution.auth import Access, Forbidden, Unauthenticated
from distribution.config import Configuration
from distribution.quotas.guard import QuotaGuard
from distribution.storage import repositories
from distribution.storage.catalog import path_key

bp = Blueprint("usage", __name__)

#: The ``app.extensions`` key of the application's :class:`QuotaGuard` (none without quotas).
QUOTAS_EXTENSION = "distribution.quotas"
#: The largest ``n`` a page of repositories may ask for.
MAX_PAGE = 10000


def init_app(app: Flask, config: Configuration) -> None:
    """The journal, the usage gauges and the quota guard of this application."""
    driver = app.extensions[context.EXTENSION].driver
    usage.init_app(app, config, driver)
    limits = quotas.parse(config)
    app.extensions[QUOTAS_EXTENSION] = QuotaGuard(driver, limits) if limits else None


def pulled(name: str, tag: str | None, digest: object) -> None:
    """A manifest was fetched: noted in memory, written with the next batch."""
    journal = current_app.extensions.get(usage.EXTENSION)
    if journal is not None:
        journal.pulled(name, tag, digest)


def changed(name: str) -> None:
    """A manifest or a tag of ``name`` was pushed or deleted: its figures need a new look."""
    journal = current_app.extensions.get(usage.EXTENSION)
    if journal is not None:
        journal.changed(name)


def check_quota(name: str) -> None:
    """403 ``DENIED`` when a quota covering ``name`` is used up (before any byte is stored)."""
    guard: QuotaGuard | None = current_app.extensions.get(QUOTAS_EXTENSION)
    if guard is not None:
        guard.check(name)


@bp.route("/v2/_usage", methods=["GET"])
def usage_report() -> Response:
    """The usage job's figures, as much of them as the caller may see."""
    admin, visible = _scope()
    report = usage.load_report(context.registry().driver)
    if report is None:
        raise errors.Unavailable(
            "usage figures are not ready: the maintenance job computes them "
            "(storage.maintenance.usage)"
        )
    rows = [row for row in report["repositories"] if visible(row["name"])]
    wanted = request.args.get("repository")
    if wanted is not None:
        found = next((row for row in rows if row["name"] == wanted), None)
        if found is None:
            raise errors.NameUnknown(detail={"name": wanted})
        return jsonify({**_times(report), "repository": found})
    answer: dict[str, Any] = _times(report)
    namespace = request.args.get("namespace")
    if admin and namespace is None:
        answer.update(total=report["total"], namespaces=report["namespaces"])
        answer["quotas"] = report["quotas"]
    elif admin:
        found = next((ns for ns in report["namespaces"] if ns["name"] == namespace), None)
        if found is None:
            raise errors.NameUnknown(detail={"namespace": namespace})
        answer["namespace"] = found
        rows = [row for row in rows if row["name"].split("/", 1)[0] == namespace]
    rows, more = _page(rows)
    answer["repositories"] = rows
    response = jsonify(answer)
    if more:
        path = request.script_root + request.path
        response.headers["Link"] = pagination.next_link(path, len(rows), rows[-1]["name"])
    return response


def delete_repository(
    name: str, identity: access_rules.Identity | None = None
) -> repositories.Contents:
    """Delete repository ``name`` as ``identity`` (default: the request's caller): for the web
    UI's admin action, inside a request.

    Needs ``storage.delete.enabled`` (405 ``UNSUPPORTED``) and the ``delete`` action on the
    repository (403 ``DENIED``); refused (403) while an immutable tag is in it;
    ``NAME_UNKNOWN`` if there is no such repository. The blobs go at the next collection.
    """
    context.require_delete_enabled()
    policy = access.policy()
    who = identity or access.identity()
    decision = policy.decide(who, name, "delete")
    if not decision.allowed:
        raise errors.Denied(f"delete access to repository {name} is denied")
    registry = context.registry()
    held = repositories.contents(registry.driver, name)
    frozen = [(tag, rule) for tag in held.tags if (rule := policy.immutable(name, tag))]
    if frozen:
        named = ", ".join(f"{tag} ({rule})" for tag, rule in frozen)
        raise errors.Denied(f"repository {name} holds immutable tags: {named}")
    deleted = repositories.delete(registry.driver, name, registry.cache)
    changed(name)
    notifications.repository_deleted(name)
    return deleted


def _scope() -> tuple[bool, Any]:
    """Whether the caller is an admin, and which repositories it may see."""
    policy = access.policy()
    if policy.mode is access_rules.Mode.TOKEN:
        controller = current_app.extensions[AUTH_EXTENSION]
        try:
            controller.authorized(request.headers, [Access("registry", "catalog", "*")])
        except (Unauthenticated, Forbidden):
            raise errors.Denied("usage figures need registry:catalog:* access") from None
        return True, lambda name: True
    visible = access.visibility()
    if visible.everything:
        return True, lambda name: True
    if visible.nothing:
        raise errors.Denied("no repository is visible to you")
    return False, visible.includes


def _page(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    raw = request.args.get("n")
    last = request.args.get("last", "")
    if last:
        rows = [row for row in rows if path_key(row["name"]) > path_key(last)]
    if not raw:
        return rows, False
    limit = pagination.catalog_limit(raw, MAX_PAGE)
    if limit == 0:
        return [], False  # nothing asked, and so no next page: as pagination.page answers
    return rows[:limit], len(rows) > limit


def _times(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report.get(key) for key in ("generated", "full_scan", "pulls_since")}
