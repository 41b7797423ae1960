"""Webhook notifications (``notifications.endpoints``), as the Go registry sends them.

Blueprints call the one-line hooks below after a push, pull, mount or delete succeeded; each
builds the event from the current request (:mod:`.events`) and queues it (:mod:`.dispatcher`),
never waiting on an endpoint. A failure here is logged and never fails the request.

Without ``redis`` events wait in memory per worker process, as in Go, and are lost when it
exits; with ``redis`` they wait in Redis streams shared by every replica and are delivered at
least once across restarts (:mod:`.queues`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, g, request

from distribution import instrumentation, redisconn
from distribution.api import urls
from distribution.config import ConfigError, Configuration
from distribution.notifications import delivery, events
from distribution.notifications.dispatcher import (
    Dispatcher,
    endpoint_name,
    flush_all,
    queue_redis,
    running,
)
from distribution.notifications.queues import stream_key
from distribution.storage.blobs import Descriptor

__all__ = [
    "EXTENSION",
    "blob_deleted",
    "blob_mounted",
    "blob_pull_pending",
    "blob_pulled",
    "blob_pushed",
    "check",
    "check_eviction",
    "init_app",
    "install",
    "manifest_deleted",
    "manifest_pulled",
    "manifest_pushed",
    "quota_crossed",
    "repository_deleted",
    "tag_deleted",
]

EXTENSION = "distribution.notifications"
#: Seconds a gunicorn worker gives its queued events to reach Redis when it exits.
EXIT_FLUSH_TIMEOUT = 5.0

log = logging.getLogger(__name__)


def check(config: Configuration) -> None:
    """Refuse at start-up what could never be delivered: each enabled endpoint needs an http(s)
    ``url``, and with Redis (one queue per name) a name of its own."""
    seen: set[str] = set()
    for i, endpoint in enumerate(config.notifications.endpoints):
        if endpoint.disabled:
            continue
        key = f"notifications.endpoints[{i}]"
        try:
            delivery.check_url(endpoint.url or "")
        except ValueError as err:
            raise ConfigError(f"{key}.url", str(err)) from None
        try:
            delivery.check_headers(endpoint.headers)
        except ValueError as err:
            raise ConfigError(f"{key}.headers", str(err)) from None
        name = endpoint_name(endpoint)
        if name in seen and queue_redis(config) is not None:
            raise ConfigError(
                f"{key}.name", f"{name!r} is used by two endpoints; they would share one queue"
            )
        seen.add(name)


def check_eviction(config: Configuration) -> None:
    """Warn, once at start-up, when the Redis holding the queues may evict them.

    Go asks for ``allkeys-lru`` because its Redis holds only a cache; here the queues hold
    events that eviction would lose. A Redis whose policy cannot be read (unreachable, or
    ``CONFIG`` disabled as on managed services) is not judged.
    """
    settings = queue_redis(config)
    if settings is None or not any(not e.disabled for e in config.notifications.endpoints):
        return
    import redis  # a deployment with Redis queues has it

    try:
        found = redisconn.connect(settings).config_get("maxmemory*")
    except (redis.RedisError, OSError, ValueError) as err:  # we cannot tell: not judged
        log.info("notifications: could not read the queues' Redis maxmemory-policy: %s", err)
        return
    policy, limit = str(found.get("maxmemory-policy", "")), int(found.get("maxmemory", 0) or 0)
    if policy.startswith("allkeys-") and limit:
        where = "notifications.redis" if settings is config.notifications.redis else "redis"
        log.warning(
            "%s: maxmemory-policy %s may evict the notification queues (%s) and lose their "
            "events; give them a Redis database or server without eviction with "
            "notifications.redis (see the README's Notifications section)",
            where,
            policy,
            stream_key("<name>", settings.keyprefix),
        )


def init_app(app: Flask, config: Configuration, start: bool = True) -> None:
    """Create this app's dispatcher when an endpoint is enabled and, with ``start``, its
    threads (else they start with the first event or :meth:`Dispatcher.start`)."""
    dispatcher = Dispatcher.from_config(config)
    if dispatcher is not None:
        app.extensions[EXTENSION] = dispatcher
        if start:
            dispatcher.start()


def install(cfg: Any, config: Configuration) -> None:
    """Add a gunicorn ``worker_exit`` hook that hands queued events to Redis, keeping any hook
    already set."""
    if not config.notifications.endpoints:
        return
    previous_exit = cfg.worker_exit

    def worker_exit(server: Any, worker: Any) -> None:
        previous_exit(server, worker)
        flush_all(EXIT_FLUSH_TIMEOUT)

    cfg.set("worker_exit", worker_exit)


def manifest_pushed(name: str, digest: Any, media_type: str, body: bytes, tag: str | None) -> None:
    _emit(lambda d: _manifest_event(d, events.PUSH, name, digest, media_type, body, tag))


def manifest_pulled(
    name: str, digest: Any, media_type: str, body: bytes, tag: str | None = None
) -> None:
    _emit(lambda d: _manifest_event(d, events.PULL, name, digest, media_type, body, tag))


def manifest_deleted(name: str, digest: Any) -> None:
    _emit(lambda d: events.delete_event(_origin(d), name, digest=str(digest)))


def tag_deleted(name: str, tag: str) -> None:
    _emit(lambda d: events.delete_event(_origin(d), name, tag=tag))


def blob_pushed(name: str, descriptor: Descriptor) -> None:
    _emit(lambda d: _blob_event(d, events.PUSH, name, descriptor))


def blob_pulled(name: str, descriptor: Descriptor) -> None:
    _emit(lambda d: _blob_event(d, events.PULL, name, descriptor))


def blob_pull_pending(name: str, descriptor: Descriptor) -> Callable[[], None]:
    """The ``pull`` of a blob still on its way to the client: built now, from the request,
    and queued when the returned function is called, once the client has the blob (Go posts
    it after copying the blob, so a download that broke off posts nothing)."""
    dispatcher: Dispatcher | None = current_app.extensions.get(EXTENSION)
    if dispatcher is None:
        return _nothing
    try:
        event = _blob_event(dispatcher, events.PULL, name, descriptor)
    except Exception:  # a notification must never fail the request it reports
        log.exception(
            "notifications: cannot build the event of %s %s", request.method, request.path
        )
        return _nothing

    def queue() -> None:
        try:
            dispatcher.emit(event)
        except Exception:
            log.exception("notifications: cannot queue the pull of %s", descriptor.digest)

    return queue


def blob_mounted(name: str, descriptor: Descriptor, source: str | None) -> None:
    _emit(lambda d: _blob_event(d, events.MOUNT, name, descriptor, source))


def blob_deleted(name: str, digest: Any) -> None:
    _emit(lambda d: events.delete_event(_origin(d), name, digest=str(digest)))


def repository_deleted(name: str) -> None:
    """A whole repository went (distribution v3's event: a ``delete`` naming only it)."""
    _emit(lambda d: events.delete_event(_origin(d), name))


def quota_crossed(repositories: str, limit: int, used: int, threshold: int) -> bool:
    """Queue a ``quota`` event from outside a request (the usage job) on this process's
    dispatcher; False when the process has none (no endpoint configured)."""
    dispatcher = running()
    if dispatcher is None:
        return False
    dispatcher.emit(events.quota_event(dispatcher.source, repositories, limit, used, threshold))
    return True


def _emit(build: Callable[[Dispatcher], dict[str, Any]]) -> None:
    dispatcher: Dispatcher | None = current_app.extensions.get(EXTENSION)
    if dispatcher is None:
        return
    try:
        dispatcher.emit(build(dispatcher))
    except Exception:  # a notification must never fail the request it reports
        log.exception(
            "notifications: cannot queue the event of %s %s", request.method, request.path
        )


def _nothing() -> None:
    return None


def _origin(dispatcher: Dispatcher) -> events.Origin:
    record = events.RequestRecord(
        id=getattr(g, "request_id", None) or str(uuid.uuid4()),
        addr=instrumentation.remote_addr(request.environ),
        host=request.headers.get("Host", ""),
        method=request.method,
        useragent=request.headers.get("User-Agent", ""),
    )
    actor = events.actor_name(getattr(g, "user", None), request.authorization)
    return events.Origin(record, actor, dispatcher.source)


def _blob_event(
    dispatcher: Dispatcher,
    action: str,
    name: str,
    descriptor: Descriptor,
    source: str | None = None,
) -> dict[str, Any]:
    digest = str(descriptor.digest)
    return events.blob_event(
        action,
        _origin(dispatcher),
        name,
        descriptor.media_type,
        digest,
        descriptor.size,
        urls.external_url("blobs.get_blob", name=name, digest=digest),
        from_repository=source,
    )


def _manifest_event(
    dispatcher: Dispatcher,
    action: str,
    name: str,
    digest: Any,
    media_type: str,
    body: bytes,
    tag: str | None,
) -> dict[str, Any]:
    references = None
    if dispatcher.include_references:
        references = events.references(_json_object(body))
    return events.manifest_event(
        action,
        _origin(dispatcher),
        name,
        media_type,
        str(digest),
        len(body),
        urls.external_url("manifests.get_manifest", name=name, reference=str(digest)),
        tag=tag,
        references=references,
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}
