"""Manifests as documents: parsing, validation and content negotiation, with no I/O.

The rules are distribution v3's (``manifest/*`` and ``registry/handlers/manifests.go``):

* A pushed manifest is read as the type its ``Content-Type`` names; its ``mediaType`` field
  must then agree (required for Docker types, optional for OCI ones). Schema 1 and any other
  type are refused with ``MANIFEST_INVALID``, as v3 has no default type to fall back on.
* A stored manifest is classified by ``schemaVersion`` and ``mediaType`` as v3's manifest store
  does, plus schema 1 (signed or not) so data migrated from old registries can still be read.

Where Go answers a bad document with a 500 (a wrong ``schemaVersion``, a layer whose ``urls`` the
policy refuses, a foreign layer without them) we answer 400 with the matching OCI code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any
from urllib.parse import urlsplit

from distribution import errors
from distribution.digest import Digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

#: Types a client may push, as v3 registers them.
PUSHABLE = frozenset({OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST})
INDEXES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_NONDISTRIBUTABLE = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDISTRIBUTABLE_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

#: The OCI layer types whose ``urls`` v3 checks against the URL policy in an OCI manifest.
_OCI_URL_LAYERS = frozenset(
    {OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_NONDISTRIBUTABLE, OCI_LAYER_NONDISTRIBUTABLE_GZIP}
)
#: Of those, the ones the registry must hold even when they carry ``urls``.
_DISTRIBUTABLE_OCI_LAYERS = frozenset({OCI_LAYER, OCI_LAYER_GZIP})

#: Largest manifest body accepted, as in distribution (``maxManifestBodySize``).
MAX_SIZE = 4 * 1024 * 1024

#: The platform a manifest list is resolved to for clients that do not accept lists.
DEFAULT_PLATFORM = ("amd64", "linux")


@dataclass(frozen=True)
class Descriptor:
    """A reference from a manifest to content: a config, a layer, a child or a subject."""

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    platform: tuple[str, str] | None = None


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; ``media_type`` is the type it is served as (its ``Content-Type``)."""

    media_type: str
    schema_version: int
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES

    @property
    def referrer_artifact_type(self) -> str | None:
        """What the referrers API reports: ``artifactType``, else the config's media type."""
        if self.artifact_type:
            return self.artifact_type
        if self.media_type == OCI_MANIFEST and self.config is not None:
            return self.config.media_type
        return None


@dataclass(frozen=True)
class URLPolicy:
    """Which layer ``urls`` are acceptable: ``validation.manifests.urls`` as Go applies it.

    A URL must be http or https without a fragment, match one ``allow`` regex (unless
    ``allow`` is None) and no ``deny`` regex; regexes match anywhere in the URL, unanchored.
    The default permits any such URL, as Go does with validation disabled; see
    :meth:`from_config` for Go's default, which permits none.
    """

    allow: tuple[str, ...] | None = None
    deny: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, allow: tuple[str, ...], deny: tuple[str, ...], active: bool) -> URLPolicy:
        """Go's ``NewApp``: with validation active and neither list set, only ``^$`` is
        allowed, so no URL passes (distribution#2795); with validation off, any does."""
        if not active:
            return cls()
        if not allow and not deny:
            return cls(allow=("^$",))
        return cls(allow=allow or None, deny=deny)

    def permits(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or parts.fragment:
            return False
        if self._allow is not None and not self._allow.search(url):
            return False
        return self._deny is None or not self._deny.search(url)

    @cached_property
    def _allow(self) -> re.Pattern[str] | None:
        return None if self.allow is None else _any_of(self.allow)

    @cached_property
    def _deny(self) -> re.Pattern[str] | None:
        return _any_of(self.deny)


def parse(content_type: str | None, body: bytes) -> Manifest:
    """Parse a pushed manifest as the type ``content_type`` names, or raise its OCI error.

    Raises :class:`~distribution.errors.ManifestInvalid` for anything that is not a valid
    manifest of that type, and :class:`~distribution.errors.DigestInvalid` for a descriptor
    whose digest is malformed (Go's first error for one).
    """
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type not in PUSHABLE:
        raise errors.ManifestInvalid(
            detail=f"unsupported manifest media type and no default available: {media_type}"
        )
    doc = _load(body, strict=True)
    declared = doc.get("mediaType")
    if media_type in (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST):
        if declared != media_type:
            noun = "manifest list" if media_type == DOCKER_MANIFEST_LIST else "manifest"
            raise errors.ManifestInvalid(
                detail=f"mediaType in {noun} should be '{media_type}' not '{declared or ''}'"
            )
    elif media_type == OCI_MANIFEST:
        if doc.get("manifests") is not None:
            raise errors.ManifestInvalid(detail="oci manifest: expected manifest but found index")
        if declared is not None and declared != OCI_MANIFEST:
            raise errors.ManifestInvalid(
                detail=f"if present, mediaType in manifest should be '{OCI_MANIFEST}' "
                f"not '{declared}'"
            )
    else:
        if doc.get("config") is not None or doc.get("layers") is not None:
            raise errors.ManifestInvalid(detail="index: expected index but found manifest")
        if declared is not None and declared != OCI_INDEX:
            raise errors.ManifestInvalid(
                detail=f"if present, mediaType in image index should be '{OCI_INDEX}' "
                f"not '{declared}'"
            )
    manifest = _build(media_type, doc)
    if manifest.schema_version != 2:
        raise errors.ManifestInvalid(
            detail=f"unrecognized manifest schema version {manifest.schema_version}"
        )
    return manifest


def classify(body: bytes) -> str:
    """The media type a stored manifest is served as, decided as v3's manifest store does.

    Raises :class:`~distribution.errors.Unknown` for content that is no manifest: that is
    damaged storage, not a bad request.
    """
    return load_stored(body)[0]


def classify_stored(digest: Digest, body: bytes) -> str:
    """:func:`classify` for the manifest stored under ``digest``, once per process: a blob's
    content is its digest's, so its media type never changes (a hot tag is read often)."""
    media_type = _STORED_TYPES.get(digest)
    if media_type is None:
        media_type = classify(body)
        if len(_STORED_TYPES) >= STORED_TYPES_MAX:
            _STORED_TYPES.clear()
        _STORED_TYPES[digest] = media_type
    return media_type


#: Manifests whose media type :func:`classify_stored` keeps, at most.
STORED_TYPES_MAX = 4096
_STORED_TYPES: dict[Digest, str] = {}


def load_stored(body: bytes) -> tuple[str, dict[str, Any]]:
    """A stored manifest's media type (see :func:`classify`) and its JSON document."""
    try:
        doc = _load(body)
    except errors.ManifestInvalid as exc:
        raise errors.Unknown("stored manifest is not valid JSON", detail=exc.detail) from None
    return _classify(doc), doc


def _classify(doc: dict[str, Any]) -> str:
    version = doc.get("schemaVersion")
    declared = doc.get("mediaType")
    if version == 1 and not isinstance(version, bool):
        return SCHEMA1_SIGNED if "signatures" in doc else SCHEMA1
    if version == 2 and not isinstance(version, bool):
        if declared in PUSHABLE:
            return declared
        if declared is None:
            return OCI_INDEX if doc.get("manifests") is not None else OCI_MANIFEST
        raise errors.Unknown("unrecognized manifest content type", detail=str(declared))
    raise errors.Unknown("unrecognized manifest schema version", detail=str(version))


def parse_stored(body: bytes) -> Manifest:
    """Parse a stored manifest of a version 2 type (schema 1 has no references we use)."""
    media_type, doc = load_stored(body)
    return parse_stored_doc(media_type, doc)


def parse_stored_doc(media_type: str, doc: dict[str, Any]) -> Manifest:
    """:func:`parse_stored` of a document :func:`load_stored` gave."""
    try:
        return _build(media_type, doc)
    except (errors.ManifestInvalid, errors.DigestInvalid) as exc:
        raise errors.Unknown("stored manifest is malformed", detail=exc.detail) from None


@lru_cache(maxsize=64)
def accepted_types(header: str) -> frozenset[str]:
    """The media types an ``Accept`` header lists, read as Go's manifest handler reads them:
    each comma-separated entry's type before its parameters, lower-cased; ``q`` and ``*/*``
    mean nothing. Clients send the same few headers, so each is parsed once per process.
    """
    entries = (entry.partition(";")[0].strip().lower() for entry in header.split(","))
    return frozenset(entry for entry in entries if entry)


def check_acceptable(media_type: str, accepted: frozenset[str]) -> None:
    """Refuse OCI content to a client that did not ask for OCI, as v3 does.

    Docker schema 2 manifests and schema 1 documents are served whatever the client accepts.
    An index stored without a ``mediaType`` field is checked as an OCI index here, where v3
    lets it through unchecked (it falls to its schema 2 default).
    """
    if media_type == OCI_MANIFEST and OCI_MANIFEST not in accepted:
        raise errors.ManifestUnknown(
            "OCI manifest found, but accept header does not support OCI manifests"
        )
    if media_type == OCI_INDEX and OCI_INDEX not in accepted:
        raise errors.ManifestUnknown(
            "OCI index found, but accept header does not support OCI indexes"
        )


def needs_list_fallback(media_type: str, accepted: frozenset[str], by_tag: bool) -> bool:
    """Whether a Docker manifest list fetched by tag must be replaced by one of its images.

    v3 serves an old client that does not accept lists the linux/amd64 image instead.
    """
    return by_tag and media_type == DOCKER_MANIFEST_LIST and DOCKER_MANIFEST_LIST not in accepted


def default_platform_child(manifest: Manifest) -> Digest:
    """The linux/amd64 entry of a manifest list, or ``MANIFEST_UNKNOWN`` without one."""
    for child in manifest.manifests:
        if child.platform == DEFAULT_PLATFORM:
            return child.digest
    raise errors.ManifestUnknown()


def check_fallback_child(media_type: str, accepted: frozenset[str]) -> None:
    """A list's image replaces it only if the client accepts that image's type."""
    if media_type == DOCKER_MANIFEST and DOCKER_MANIFEST not in accepted:
        raise errors.ManifestInvalid("Schema 2 manifest not supported by client")


#: ``policy.repository.classes``: the class of an image by its config's media type, as Go's.
CONFIG_CLASSES = {
    DOCKER_MANIFEST: {
        "application/vnd.docker.container.image.v1+json": "image",
        "application/vnd.docker.plugin.v1+json": "plugin",
    },
    OCI_MANIFEST: {"application/vnd.oci.image.config.v1+json": "image"},
}


def check_class(parsed: Manifest, allowed: tuple[str, ...]) -> None:
    """Go's ``applyResourcePolicy`` with ``policy.repository.classes`` set: an image whose
    config names no known class, or a class not ``allowed``, is ``DENIED``. Indexes have no
    class and pass."""
    if not allowed or parsed.config is None or parsed.media_type not in CONFIG_CLASSES:
        return
    kind = CONFIG_CLASSES[parsed.media_type].get(parsed.config.media_type)
    if kind is None:
        raise errors.Denied(f"unknown manifest class for {parsed.config.media_type}")
    if kind not in allowed:
        raise errors.Denied(f"registry does not allow {kind} manifest")


def layer_needs_blob(manifest_type: str, layer: Descriptor, policy: URLPolicy) -> bool:
    """Whether ``layer`` of a manifest of ``manifest_type`` must be a blob of the repository.

    distribution v3's manifest handlers, exactly: in a Docker image a foreign layer must
    carry ``urls``, all acceptable, and is never looked for; in an OCI image the ``urls`` of
    every OCI layer type must all be acceptable, and a non-distributable layer with ``urls``
    is not looked for. Every other layer must be held, whatever ``urls`` it carries. Raises
    ``MANIFEST_INVALID`` for a layer Go refuses (Go answers 500 ``UNKNOWN`` with
    ``MANIFEST_BLOB_UNKNOWN``).
    """
    if manifest_type == DOCKER_MANIFEST and layer.media_type == DOCKER_FOREIGN_LAYER:
        if not layer.urls:
            raise errors.ManifestInvalid(detail=f"missing URL on layer {layer.digest}")
        _check_urls(layer, policy)
        return False
    if manifest_type == OCI_MANIFEST and layer.media_type in _OCI_URL_LAYERS:
        _check_urls(layer, policy)
        return not layer.urls or layer.media_type in _DISTRIBUTABLE_OCI_LAYERS
    return True


def _check_urls(layer: Descriptor, policy: URLPolicy) -> None:
    if not all(policy.permits(url) for url in layer.urls):
        raise errors.ManifestInvalid(detail=f"invalid URL on layer {layer.digest}")


def referrer_descriptor(manifest: Manifest, digest: Digest, size: int) -> dict[str, Any]:
    """The descriptor of a referrer as the referrers API lists it."""
    descriptor: dict[str, Any] = {
        "mediaType": manifest.media_type,
        "digest": str(digest),
        "size": size,
    }
    artifact_type = manifest.referrer_artifact_type
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if manifest.annotations:
        descriptor["annotations"] = dict(manifest.annotations)
    return descriptor


def image_index(descriptors: list[dict[str, Any]]) -> dict[str, Any]:
    """An OCI image index holding ``descriptors``: the referrers API's answer."""
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}


def _any_of(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex matching any of ``patterns``, as Go joins them; None for no patterns."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{pattern})" for pattern in patterns))


def _load(body: bytes, strict: bool = False) -> dict[str, Any]:
    """``body`` as a JSON object. ``strict`` (a push) takes JSON as Go's ``encoding/json``
    does: UTF-8 without a byte order mark, no ``NaN``/``Infinity``. ``json.loads`` alone also
    takes UTF-16 and UTF-32, a BOM and those literals; stored, such a manifest is served to
    clients whose JSON decoder refuses it. What is stored already (by an older version, a Go
    registry, a script) is read leniently. Either way a string's bytes that are not UTF-8
    read as U+FFFD, as Go reads them, instead of failing the whole manifest."""
    try:
        if strict:
            doc = json.loads(body.decode("utf-8", "replace"), parse_constant=_no_constant)
        else:
            doc = json.loads(body.decode(json.detect_encoding(body), "replace"))
    except (ValueError, RecursionError) as exc:
        raise errors.ManifestInvalid(detail=f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise errors.ManifestInvalid(detail="manifest must be a JSON object")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _build(media_type: str, doc: dict[str, Any]) -> Manifest:
    """Read the fields of a version 2 manifest of ``media_type``, checking their JSON types."""
    schema_version = _integer(doc, "schemaVersion", "manifest", default=0)
    _string(doc, "mediaType", "manifest")
    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    common = {
        "media_type": media_type,
        "schema_version": schema_version,
        "subject": subject,
        "artifact_type": _string(doc, "artifactType", "manifest"),
        "annotations": _annotations(doc, "manifest"),
    }
    if media_type in INDEXES:
        children = _list(doc, "manifests")
        return Manifest(
            **common,
            manifests=tuple(
                _descriptor(child, f"manifests[{i}]") for i, child in enumerate(children)
            ),
        )
    if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        return Manifest(**common)
    layers = _list(doc, "layers")
    config = doc.get("config")
    return Manifest(
        **common,
        # A missing config is a descriptor with no digest, DIGEST_INVALID as in Go.
        config=_descriptor({} if config is None else config, "config"),
        layers=tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
    )


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise errors.ManifestInvalid(detail=f"{where} must be a JSON object")
    digest_text = _string(value, "digest", where) or ""
    try:
        digest = Digest.parse(digest_text)
    except errors.DigestInvalid as exc:
        raise errors.DigestInvalid(exc.message, detail=f"{where}: {digest_text!r}") from None
    urls = _list(value, "urls", where)
    if not all(isinstance(url, str) for url in urls):
        raise errors.ManifestInvalid(detail=f"{where}.urls must be a list of strings")
    return Descriptor(
        media_type=_string(value, "mediaType", where) or "",
        digest=digest,
        size=_integer(value, "size", where, default=0),
        urls=tuple(urls),
        artifact_type=_string(value, "artifactType", where),
        annotations=_annotations(value, where),
        platform=_platform(value, where),
    )


def _platform(value: dict[str, Any], where: str) -> tuple[str, str] | None:
    platform = value.get("platform")
    if platform is None:
        return None
    if not isinstance(platform, dict):
        raise errors.ManifestInvalid(detail=f"{where}.platform must be a JSON object")
    where = f"{where}.platform"
    return (_string(platform, "architecture", where) or "", _string(platform, "os", where) or "")


def _string(value: dict[str, Any], key: str, where: str) -> str | None:
    item = value.get(key)
    if item is not None and not isinstance(item, str):
        raise errors.ManifestInvalid(detail=f"{where}.{key} must be a string")
    return item


def _integer(value: dict[str, Any], key: str, where: str, default: int) -> int:
    """A count (a size, a schema version): an integer, never negative."""
    item = value.get(key)
    if item is None:
        return default
    if isinstance(item, bool) or not isinstance(item, int):
        raise errors.ManifestInvalid(detail=f"{where}.{key} must be an integer")
    if item < 0:
        raise errors.ManifestInvalid(detail=f"{where}.{key} must not be negative")
    return item


def _list(value: dict[str, Any], key: str, where: str = "manifest") -> list[Any]:
    item = value.get(key)
    if item is None:
        return []
    if not isinstance(item, list):
        raise errors.ManifestInvalid(detail=f"{where}.{key} must be a list")
    return item


def _annotations(value: dict[str, Any], where: str) -> dict[str, str]:
    item = value.get("annotations")
    if item is None:
        return {}
    if not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values()):
        raise errors.ManifestInvalid(detail=f"{where}.annotations must map strings to strings")
    return item
