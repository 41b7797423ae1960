"""Notification events and envelopes as the Go registry's ``notifications`` package makes them.

Pure functions, no I/O: what a request did becomes a JSON-ready ``dict`` with Go's field names
and omissions (``omitempty``), checked against the events Debian's ``docker-registry`` 2.8.2
posts for the same requests:

* blobs: ``push`` (an upload committed), ``pull`` (GET or HEAD, as in Go), ``mount``
  (with ``fromRepository``), ``delete`` (repository and digest only);
* manifests: ``push`` and ``pull`` with the manifest's media type, its URL by digest and the
  ``tag`` when addressed by tag, ``references`` with ``notifications.events.includereferences``;
  ``delete`` by digest (repository and digest), then one tag ``delete`` (repository and tag)
  per tag that pointed at it, and a tag ``delete`` for a delete by tag.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: The envelope's media type (distribution v3; 2.8.2 sends the same body as ``v1+json``).
EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v2+json"

PUSH = "push"
PULL = "pull"
MOUNT = "mount"
DELETE = "delete"
#: Our extension: a quota crossed 80 % or 100 % (see :func:`quota_event`).
QUOTA = "quota"

#: Descriptor keys a reference keeps, as Go's ``distribution.Descriptor`` re-encodes it.
_REFERENCE_KEYS = ("mediaType", "digest", "size", "urls", "annotations", "platform")


@dataclass(frozen=True)
class RequestRecord:
    """The request that caused an event; ``id``, ``method`` and ``useragent`` are always sent."""

    id: str
    addr: str
    host: str
    method: str
    useragent: str

    def to_dict(self) -> dict[str, str]:
        record = {"id": self.id}
        if self.addr:
            record["addr"] = self.addr
        if self.host:
            record["host"] = self.host
        record["method"] = self.method
        record["useragent"] = self.useragent
        return record


@dataclass(frozen=True)
class SourceRecord:
    """The registry process that generated an event: ``host:port`` and a per-process id."""

    addr: str
    instance_id: str

    def to_dict(self) -> dict[str, str]:
        return _omit_empty({"addr": self.addr, "instanceID": self.instance_id})


@dataclass(frozen=True)
class Origin:
    """Everything an event says about who caused it, taken once per request."""

    request: RequestRecord
    actor: str | None
    source: SourceRecord


def source_record(http_addr: str, hostname: str | None = None) -> SourceRecord:
    """Go's source: the host name joined with ``http.addr``'s port, and a fresh instance id."""
    name = hostname if hostname is not None else socket.gethostname()
    _host, sep, port = http_addr.rpartition(":")
    addr = f"{name}:{port}" if sep and port.isdigit() else (name or http_addr)
    return SourceRecord(addr, str(uuid.uuid4()))


def actor_name(user: str | None, authorization: Any = None) -> str | None:
    """The authenticated user, else the user name of a ``Basic`` header, as Go's
    ``getUserName`` falls back to it."""
    if user:
        return user
    if authorization is not None and getattr(authorization, "type", None) == "basic":
        return authorization.username or None
    return None


def blob_event(
    action: str,
    origin: Origin,
    repository: str,
    media_type: str,
    digest: str,
    size: int,
    url: str,
    from_repository: str | None = None,
) -> dict[str, Any]:
    """A ``push``, ``pull`` or ``mount`` of a blob."""
    target = _descriptor(media_type, size, digest)
    target["length"] = size
    target["repository"] = repository
    if from_repository:
        target["fromRepository"] = from_repository
    target["url"] = url
    return _event(action, origin, _omit_empty(target))


def manifest_event(
    action: str,
    origin: Origin,
    repository: str,
    media_type: str,
    digest: str,
    size: int,
    url: str,
    tag: str | None = None,
    references: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``push`` or ``pull`` of a manifest; ``url`` is the manifest's URL by digest."""
    target = _descriptor(media_type, size, digest)
    target.update(length=size, repository=repository, url=url, tag=tag, references=references)
    return _event(action, origin, _omit_empty(target))


def delete_event(
    origin: Origin, repository: str, digest: str | None = None, tag: str | None = None
) -> dict[str, Any]:
    """A ``delete`` of a manifest or blob (``digest``) or of a tag (``tag``)."""
    target = _omit_empty({"digest": digest, "repository": repository, "tag": tag})
    return _event(DELETE, origin, target)


def quota_event(
    source: SourceRecord, repositories: str, limit: int, used: int, threshold: int
) -> dict[str, Any]:
    """Our extension, from the usage job rather than a request: the quota of
    ``repositories`` crossed ``threshold`` percent (80 or 100) of ``limit`` going up, or went
    back under 100 % (``threshold`` 0)."""
    target = {"repositories": repositories, "limit": limit, "used": used, "threshold": threshold}
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp(datetime.now(UTC)),
        "action": QUOTA,
        "target": target,
        "source": source.to_dict(),
    }


def references(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What a manifest references, as Go's ``Manifest.References``: an image's config then its
    layers, an index's manifests."""
    found: Iterable[Any]
    if isinstance(document.get("manifests"), list):
        found = document["manifests"]
    else:
        config = document.get("config")
        layers = document.get("layers")
        found = ([config] if isinstance(config, dict) else []) + (
            layers if isinstance(layers, list) else []
        )
    return [
        _omit_empty({key: item.get(key) for key in _REFERENCE_KEYS})
        for item in found
        if isinstance(item, dict)
    ]


def ignored(event: Mapping[str, Any], media_types: Iterable[str], actions: Iterable[str]) -> bool:
    """Whether an endpoint's ``ignoredmediatypes``/``ignore`` rules drop ``event``.

    As Go's ``ignoredSink``: the target's media type (empty for deletes) or the action.
    """
    media_type = event.get("target", {}).get("mediaType", "")
    return media_type in set(media_types) or event.get("action") in set(actions)


def envelope(events: list[Mapping[str, Any]]) -> bytes:
    """The body posted to an endpoint, indented with three spaces as Go's ``MarshalIndent``."""
    return json.dumps({"events": events}, indent=3).encode()


def timestamp(moment: datetime) -> str:
    """RFC 3339 with the fraction's trailing zeros dropped, as Go's ``time.Time`` marshals."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{utc.microsecond:06d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def _event(action: str, origin: Origin, target: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "timestamp": timestamp(datetime.now(UTC)),
        "action": action,
        "target": target,
        "request": origin.request.to_dict(),
        "actor": _omit_empty({"name": origin.actor}),
        "source": origin.source.to_dict(),
    }


def _descriptor(media_type: str, size: int, digest: str) -> dict[str, Any]:
    return {"mediaType": media_type, "size": size, "digest": digest}


def _omit_empty(values: Mapping[str, Any]) -> dict[str, Any]:
    """Go's ``omitempty``: no empty strings, zeros, empty lists or maps, or nils."""
    return {key: value for key, value in values.items() if value not in (None, "", 0, [], {})}
