"""What each ``/v2/`` request needs from the access controller, and the hook that asks it.

:func:`required` is the pure part, Go's ``appendAccessRecords``: reads (``GET``, ``HEAD``)
need ``pull`` on the repository, writes (``POST``, ``PUT``, ``PATCH``) ``pull`` and ``push``,
``DELETE`` needs ``delete``; a cross-repository mount (``?from=``) also needs ``pull`` on the
source; the catalog needs ``registry:catalog:*``; ``GET /v2/`` needs credentials and nothing
more. :func:`authorize` is the ``before_request`` hook that applies it.
"""

from __future__ import annotations

import logging

from flask import current_app, g, request

from distribution import errors, instrumentation, reference
from distribution import log as log_module
from distribution.auth import EXTENSION, Access, AccessController, Forbidden, Unauthenticated

#: The ``environ`` key of the authenticated user's name, for the access log.
USER_ENVIRON = "distribution.user"
#: The catalog's endpoint, the one route without a repository that needs a grant.
CATALOG_ENDPOINT = "catalog.list_repositories"

_READ = frozenset({"GET", "HEAD"})
_WRITE = frozenset({"POST", "PUT", "PATCH"})

log = logging.getLogger(__name__)


def required(
    method: str, endpoint: str | None, name: str | None, mount_from: str | None = None
) -> list[Access]:
    """The access items a request needs, from its method, route and repository name.

    A ``from`` that is no repository name mounts nothing (the upload is an ordinary one, as in
    Go) and needs nothing; Go would put it, control characters and all, in a token scope.
    """
    if name:
        needed = _repository(method, name)
        if mount_from and reference.is_name(mount_from):
            needed += _repository("GET", mount_from)
        return needed
    if endpoint == CATALOG_ENDPOINT:
        return [Access("registry", "catalog", "*")]
    return []


def authorize() -> None:
    """The ``before_request`` hook: check ``/v2/`` requests, set ``g.user``.

    Runs after the repository name is validated. ``GET /`` and anything outside ``/v2`` stays
    open (load balancers probe ``/``).
    """
    g.user = None
    controller: AccessController | None = current_app.extensions.get(EXTENSION)
    if controller is None or not (request.path == "/v2" or request.path.startswith("/v2/")):
        return
    name = (request.view_args or {}).get("name")
    needed = required(request.method, request.endpoint, name, request.args.get("from"))
    try:
        grant = controller.authorized(request.headers, needed)
    except Unauthenticated as refusal:
        _audit(refusal.user, needed, refusal.reason, refusal.presented)
        raise errors.Unauthorized(
            detail=[access.to_dict() for access in needed] or None,
            headers={"WWW-Authenticate": refusal.challenge},
        ) from None
    except Forbidden as refusal:
        _audit(refusal.user, needed, refusal.reason, True)
        headers = {"WWW-Authenticate": refusal.challenge} if refusal.challenge else None
        raise errors.Denied(
            detail=[access.to_dict() for access in needed], headers=headers
        ) from None
    g.user = request.environ[USER_ENVIRON] = grant.user


def _repository(method: str, name: str) -> list[Access]:
    if method in _READ:
        return [Access("repository", name, "pull")]
    if method in _WRITE:
        return [Access("repository", name, "pull"), Access("repository", name, "push")]
    if method == "DELETE":
        return [Access("repository", name, "delete")]
    return []


def _audit(user: str | None, needed: list[Access], reason: str, presented: bool) -> None:
    """One line per refusal: who, from where, for what, why; never the credentials.

    A warning when credentials were presented and refused; info for the challenge a client
    gets before it sends any, which every login and pull starts with.
    """
    resource = " ".join(f"{a.type}:{a.name}:{a.action}" for a in needed) or request.path
    fields = {
        "auth.user.name": user or "",
        "auth.remoteaddr": instrumentation.remote_addr(request.environ),
        "auth.resource": resource,
        "auth.reason": reason,
    }
    level = logging.WARNING if presented else logging.INFO
    log.log(level, "authorization failed", extra={log_module.FIELDS: fields})
