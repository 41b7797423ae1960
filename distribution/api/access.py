"""What each ``/v2/`` request needs from the access controller, and the hook that asks it.

:func:`required` is the pure part, Go's ``appendAccessRecords``: reads (``GET``, ``HEAD``)
need ``pull`` on the repository, writes (``POST``, ``PUT``, ``PATCH``) ``pull`` and ``push``,
``DELETE`` needs ``delete``; a cross-repository mount (``?from=``) also needs ``pull`` on the
source; the catalog needs ``registry:catalog:*``; ``GET /v2/`` needs credentials and nothing
more. :func:`authorize` is the ``before_request`` hook that applies it: with ``access:`` rules
(:mod:`distribution.access`) the controller says who asks and the rules decide; without, the
controller decides alone. Handlers ask :func:`allows` and :func:`visibility` for what a
request's path does not say (a mount's source, the repositories a catalog may list).
"""

from __future__ import annotations

import logging

from flask import current_app, g, request

from distribution import access as rules
from distribution import errors, instrumentation, metrics, reference
from distribution import log as log_module
from distribution.access import ANONYMOUS
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
    """The ``before_request`` hook: check ``/v2/`` requests, set ``g.user`` and ``g.identity``.

    Runs after the repository name is validated. ``GET /`` and anything outside ``/v2`` stays
    open (load balancers probe ``/``). With access rules, the controller only says who asks
    (:func:`_authorize_by_rules`); without, it decides alone, as in Go.
    """
    # Flask's proxies are looked up once each: a look costs half a microsecond.
    ctx, req = g._get_current_object(), request._get_current_object()
    extensions = current_app.extensions
    ctx.user = None
    ctx.identity = ANONYMOUS
    if not (req.path == "/v2" or req.path.startswith("/v2/")):
        return
    ctx.access_policy = current = extensions[rules.EXTENSION].current()
    controller: AccessController | None = extensions.get(EXTENSION)
    if controller is None:
        return
    name = (req.view_args or {}).get("name")
    if current.mode is rules.Mode.RULES:
        _authorize_by_rules(controller, current, name)
        return
    needed = required(req.method, req.endpoint, name, req.args.get("from"))
    try:
        grant = controller.authorized(req.headers, needed)
    except Unauthenticated as refusal:
        raise _unauthorized(refusal, needed) from None
    except Forbidden as refusal:
        _audit(refusal.user, needed, refusal.reason, True)
        headers = {"WWW-Authenticate": refusal.challenge} if refusal.challenge else None
        raise errors.Denied(detail=_detail(needed) or [], headers=headers) from None
    ctx.user = req.environ[USER_ENVIRON] = grant.user
    ctx.identity = rules.Identity(grant.user)


def policy() -> rules.Policy:
    """The policy the current request is decided with (read once per request)."""
    found = g.get("access_policy")
    if found is None:
        found = g.access_policy = current_app.extensions[rules.EXTENSION].current()
    return found


def identity() -> rules.Identity:
    """Who makes the current request (anonymous when nobody signed in, or without auth)."""
    return g.get("identity") or ANONYMOUS


def allows(repository: str, action: str) -> bool:
    """Whether the current caller may also do ``action`` on ``repository`` (a mount's source).

    Without rules the controller has checked everything the request needs already. A refusal
    is logged and counted as any other.
    """
    current = policy()
    if current.mode is not rules.Mode.RULES:
        return True
    decision = current.decide(identity(), repository, action)
    _count(action, decision)
    if not decision.allowed:
        _refused(identity(), Access("repository", repository, action), decision)
    return decision.allowed


def visibility() -> rules.Visibility:
    """Which repositories the current caller sees in lists: those it may pull."""
    return policy().visibility(identity())


def _authorize_by_rules(
    controller: AccessController, current: rules.Policy, name: str | None
) -> None:
    """Who asks comes from the controller; what they may do, from the rules.

    No credentials (or the empty ones podman and skopeo send after a Basic challenge) is the
    anonymous identity: allowed what the rules give anonymous, else the usual 401 challenge,
    so that clients then sign in. ``GET /v2/`` always challenges an anonymous caller: it is
    where docker, podman and skopeo learn that they must send credentials at all.
    Wrong credentials are 401; a signed-in user refused is 403 ``DENIED``.
    """
    needed = required(request.method, request.endpoint, name)
    try:
        caller = rules.Identity(controller.authorized(request.headers, needed).user)
        challenge = None
    except Unauthenticated as refusal:
        if refusal.presented:
            raise _unauthorized(refusal, needed) from None
        caller, challenge = ANONYMOUS, refusal.challenge
    decision, refused = _decide(current, caller, needed)
    _count(_action(refused or (needed[-1] if needed else None)), decision)
    if decision.allowed:
        g.user = request.environ[USER_ENVIRON] = caller.user
        g.identity = caller
        return
    _refused(caller, refused, decision)
    if challenge is not None:
        raise errors.Unauthorized(detail=_detail(needed), headers={"WWW-Authenticate": challenge})
    assert refused is not None  # a signed-in caller is only refused an access item
    raise errors.Denied(_denied_message(refused), detail=_detail(needed))


def _unauthorized(refusal: Unauthenticated, needed: list[Access]) -> errors.RegistryError:
    """The 401 with the controller's challenge, audited."""
    _audit(refusal.user, needed, refusal.reason, refusal.presented)
    return errors.Unauthorized(
        detail=_detail(needed), headers={"WWW-Authenticate": refusal.challenge}
    )


def _detail(needed: list[Access]) -> list[dict[str, str]] | None:
    """The error ``detail``: the access items the request needed, as Go lists them."""
    return [access.to_dict() for access in needed] or None


def _decide(
    current: rules.Policy, caller: rules.Identity, needed: list[Access]
) -> tuple[rules.Decision, Access | None]:
    """The decision for every item ``needed``, and the item refused (None if allowed)."""
    if not needed:
        return rules.Decision(not caller.anonymous, "sign-in required"), None
    decision = rules.Decision(False, "nothing asked")
    for item in needed:
        if item.type == "repository":
            decision = current.decide(caller, item.name, item.action)
        else:
            decision = current.may_list(caller)
        if not decision.allowed:
            return decision, item
    return decision, None


def _denied_message(refused: Access) -> str:
    """Names the repository and the action; says nothing of whether the repository exists."""
    if refused.type == "repository":
        return f"{refused.action} access to repository {refused.name} is denied"
    return "access to the catalog is denied"


def _action(item: Access | None) -> str:
    """The ``action`` of the log and metrics: pull, push, delete, catalog, or base (/v2/)."""
    if item is None:
        return "base"
    return item.action if item.type == "repository" else "catalog"


def _count(action: str, decision: rules.Decision) -> None:
    result = "allowed" if decision.allowed else "denied"
    metrics.access_decisions.labels(action=action, result=result).inc()


def _refused(caller: rules.Identity, refused: Access | None, decision: rules.Decision) -> None:
    """One line per refusal by the rules: who, what, where, and the rule that decided.

    Info for an anonymous caller (the challenge every client's first request gets), a warning
    for a signed-in user.
    """
    fields = {
        "auth.user.name": caller.user or "",
        "auth.remoteaddr": instrumentation.remote_addr(request.environ),
        "access.repository": refused.name if refused and refused.type == "repository" else "",
        "access.action": _action(refused),
        "access.rule": decision.rule,
    }
    level = logging.INFO if caller.anonymous else logging.WARNING
    log.log(level, "access denied", extra={log_module.FIELDS: fields})


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
