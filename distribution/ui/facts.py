"""What the UI shows of a manifest and of an image config, read leniently and with no I/O.

Everything here comes from content that anybody with push rights wrote: it is read as data,
never trusted. A field of the wrong JSON type is shown as its JSON text or left out, never
raises; only the templates turn it into HTML, and they escape it. Sizes are the sizes the
manifest declares (a layer's descriptor), which the registry checked when it was pushed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from distribution import manifest

IMAGE = "image"
INDEX = "index"
ARTIFACT = "artifact"
#: A document the UI cannot read as a manifest (damaged storage, an unknown schema).
UNKNOWN = "unknown"

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
#: The config types of images a container runtime runs; anything else is an artifact.
IMAGE_CONFIGS = frozenset({OCI_CONFIG, DOCKER_CONFIG})

_FILESYSTEM_LAYERS = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")
_RFC3339 = re.compile(
    r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?", re.IGNORECASE
)


@dataclass(frozen=True)
class Platform:
    os: str = ""
    architecture: str = ""
    variant: str = ""
    os_version: str = ""

    def __str__(self) -> str:
        text = "/".join(part for part in (self.os, self.architecture, self.variant) if part)
        return f"{text} ({self.os_version})" if self.os_version else text or "unknown"


@dataclass(frozen=True)
class Blob:
    """A config or a layer as the manifest describes it."""

    digest: str
    size: int
    media_type: str
    annotations: tuple[tuple[str, str], ...] = ()
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Child:
    """A manifest an index lists."""

    digest: str
    size: int
    media_type: str
    platform: Platform | None
    artifact_type: str = ""
    annotations: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ManifestFacts:
    """One manifest: its kind, what it references, and its own annotations."""

    media_type: str
    kind: str
    size: int
    artifact_type: str = ""
    config: Blob | None = None
    layers: tuple[Blob, ...] = ()
    children: tuple[Child, ...] = ()
    subject: str | None = None
    annotations: tuple[tuple[str, str], ...] = ()
    #: Why the document could not be read, for an ``UNKNOWN`` one.
    problem: str = ""

    @property
    def content_size(self) -> int:
        """An image's size: its config and layers (what a pull downloads at most)."""
        config = self.config.size if self.config else 0
        return config + sum(layer.size for layer in self.layers)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return ((self.config,) if self.config else ()) + self.layers


@dataclass(frozen=True)
class HistoryEntry:
    created: datetime | None
    created_by: str
    comment: str
    empty_layer: bool


@dataclass(frozen=True)
class ConfigFacts:
    """An image config: what runs, how, on which platform, and how it was built."""

    platform: Platform | None = None
    created: datetime | None = None
    author: str = ""
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    user: str = ""
    workdir: str = ""
    stop_signal: str = ""
    history: tuple[HistoryEntry, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class PlatformSize:
    """One platform of a tag's image or index, with that platform's size."""

    platform: str
    size: int
    digest: str


@dataclass(frozen=True)
class Summary:
    """A manifest as the tag table shows it: kind, platforms with sizes, creation time, and
    every blob it reaches (for a repository's de-duplicated size)."""

    kind: str
    media_type: str
    artifact_type: str = ""
    platforms: tuple[PlatformSize, ...] = ()
    created: datetime | None = None
    blobs: tuple[tuple[str, int], ...] = field(default=(), repr=False)

    @property
    def size(self) -> int:
        """Bytes of the distinct blobs reached (one platform for an image)."""
        return sum(size for _, size in self.blobs)


def read_manifest(body: bytes) -> ManifestFacts:
    """The facts of a stored manifest (any schema); ``UNKNOWN`` kind for what is no manifest."""
    doc = _document(body)
    if doc is None:
        return ManifestFacts("", UNKNOWN, len(body), problem="not a JSON object")
    media_type = _media_type(doc)
    if media_type is None:
        problem = (
            f"not a manifest of a known schema (schemaVersion {_text(doc.get('schemaVersion'))})"
        )
        return ManifestFacts(_text(doc.get("mediaType")), UNKNOWN, len(body), problem=problem)
    common: dict[str, Any] = {
        "media_type": media_type,
        "size": len(body),
        "artifact_type": _string(doc.get("artifactType")),
        "subject": _digest_of(doc.get("subject")),
        "annotations": _pairs(doc.get("annotations")),
    }
    if media_type in manifest.INDEXES:
        children = tuple(_child(entry) for entry in _list(doc.get("manifests")))
        return ManifestFacts(kind=INDEX, children=tuple(c for c in children if c), **common)
    if media_type in (manifest.SCHEMA1, manifest.SCHEMA1_SIGNED):
        layers = tuple(
            Blob(_string(layer.get("blobSum")), 0, "")
            for layer in _list(doc.get("fsLayers"))
            if isinstance(layer, dict)
        )
        return ManifestFacts(kind=IMAGE, layers=layers, **common)
    config = _blob(doc.get("config"))
    layers = tuple(blob for blob in map(_blob, _list(doc.get("layers"))) if blob)
    return ManifestFacts(kind=_kind(common["artifact_type"], config, layers), config=config,
                         layers=layers, **common)  # fmt: skip


def artifact_type(facts: ManifestFacts) -> str:
    """What kind of artifact: ``artifactType``, else the config's type, else the first layer's
    (old cosign signatures carry an image config and a signature layer)."""
    if facts.artifact_type:
        return facts.artifact_type
    if facts.config and facts.config.media_type not in IMAGE_CONFIGS:
        return facts.config.media_type
    return facts.layers[0].media_type if facts.layers else ""


def read_config(body: bytes) -> ConfigFacts:
    """The facts of an image config; a ``problem`` for one that is not a JSON object."""
    doc = _document(body)
    if doc is None:
        return ConfigFacts(problem="not a JSON object")
    run = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    return ConfigFacts(
        platform=_platform(doc),
        created=parse_time(doc.get("created")),
        author=_text(doc.get("author")),
        entrypoint=_command(run.get("Entrypoint")),
        cmd=_command(run.get("Cmd")),
        env=tuple(_variable(item) for item in _list(run.get("Env"))),
        labels=_pairs(run.get("Labels")),
        exposed_ports=tuple(sorted(_keys(run.get("ExposedPorts")))),
        volumes=tuple(sorted(_keys(run.get("Volumes")))),
        user=_text(run.get("User")),
        workdir=_text(run.get("WorkingDir")),
        stop_signal=_text(run.get("StopSignal")),
        history=tuple(
            HistoryEntry(
                created=parse_time(item.get("created")),
                created_by=_text(item.get("created_by")),
                comment=_text(item.get("comment")),
                empty_layer=item.get("empty_layer") is True,
            )
            for item in _list(doc.get("history"))
            if isinstance(item, dict)
        ),
    )


def summarise(
    facts: ManifestFacts,
    config: ConfigFacts | None,
    children: list[tuple[Child, ManifestFacts, ConfigFacts | None]] = (),  # type: ignore[assignment]
) -> Summary:
    """The tag table's view of a manifest; an index's from its children's facts."""
    if facts.kind == INDEX:
        platforms, blobs, created = [], {}, None
        for child, child_facts, child_config in children:
            platform = child.platform or (child_config.platform if child_config else None)
            label = str(platform) if platform else artifact_type(child_facts) or child.media_type
            platforms.append(PlatformSize(label, child_facts.content_size, child.digest))
            blobs.update((blob.digest, blob.size) for blob in child_facts.blobs)
            if child_config and child_config.created:
                created = max(created, child_config.created) if created else child_config.created
        return Summary(INDEX, facts.media_type, facts.artifact_type, tuple(platforms), created,
                       tuple(blobs.items()))  # fmt: skip
    blobs = tuple({blob.digest: blob.size for blob in facts.blobs}.items())
    if facts.kind == IMAGE:
        platform = str(config.platform) if config and config.platform else ""
        sizes = (PlatformSize(platform, facts.content_size, ""),)
        return Summary(IMAGE, facts.media_type, "", sizes, config.created if config else None,
                       blobs)  # fmt: skip
    return Summary(facts.kind, facts.media_type, artifact_type(facts), (), None, blobs)


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time (Go writes nanoseconds) as an aware UTC datetime; None if unreadable
    or beyond what a UTC datetime holds (year 1 at +01:00, year 9999 at -01:00)."""
    if not isinstance(value, str):
        return None
    found = _RFC3339.fullmatch(value.strip())
    if not found:
        return None
    base, fraction, zone = found.groups()
    text = base + (f".{fraction[:6]:0<6}" if fraction else "") + _zone(zone)
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def pretty_json(body: bytes) -> str:
    """The document indented for reading, or its text as stored if it is not JSON."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


def _media_type(doc: dict[str, Any]) -> str | None:
    """The type a stored manifest is served as, decided as :func:`manifest.classify` does
    (from the parsed document, which the UI has already)."""
    version, declared = doc.get("schemaVersion"), doc.get("mediaType")
    if isinstance(version, bool) or version not in (1, 2):
        return None
    if version == 1:
        return manifest.SCHEMA1_SIGNED if "signatures" in doc else manifest.SCHEMA1
    if declared in manifest.PUSHABLE:
        return declared
    if declared is None:
        return manifest.OCI_INDEX if doc.get("manifests") is not None else manifest.OCI_MANIFEST
    return None


def _kind(artifact: str, config: Blob | None, layers: tuple[Blob, ...]) -> str:
    if artifact or (config is not None and config.media_type not in IMAGE_CONFIGS):
        return ARTIFACT
    if layers and not any(layer.media_type.startswith(_FILESYSTEM_LAYERS) for layer in layers):
        return ARTIFACT
    return IMAGE


def _document(body: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def _blob(value: Any) -> Blob | None:
    if not isinstance(value, dict):
        return None
    return Blob(
        digest=_string(value.get("digest")),
        size=_size(value.get("size")),
        media_type=_string(value.get("mediaType")),
        annotations=_pairs(value.get("annotations")),
        urls=tuple(_text(url) for url in _list(value.get("urls"))),
    )


def _child(value: Any) -> Child | None:
    if not isinstance(value, dict):
        return None
    platform = _platform(value["platform"]) if isinstance(value.get("platform"), dict) else None
    return Child(
        digest=_string(value.get("digest")),
        size=_size(value.get("size")),
        media_type=_string(value.get("mediaType")),
        platform=platform,
        artifact_type=_string(value.get("artifactType")),
        annotations=_pairs(value.get("annotations")),
    )


def _platform(value: dict[str, Any]) -> Platform | None:
    found = Platform(
        os=_string(value.get("os")),
        architecture=_string(value.get("architecture")),
        variant=_string(value.get("variant")),
        os_version=_string(value.get("os.version")),
    )
    return found if found.os or found.architecture else None


def _digest_of(value: Any) -> str | None:
    return _string(value.get("digest")) or None if isinstance(value, dict) else None


def _command(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(_text(item) for item in value)
    return (_text(value),)


def _variable(value: Any) -> tuple[str, str]:
    name, _, content = _text(value).partition("=")
    return name, content


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        return ()
    return tuple(sorted((str(key), _text(item)) for key, item in value.items()))


def _keys(value: Any) -> list[str]:
    return [str(key) for key in value] if isinstance(value, dict) else []


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _size(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _text(value: Any) -> str:
    """Any JSON value as text: strings as they are, anything else as its JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _zone(zone: str | None) -> str:
    if not zone or zone.upper() == "Z":
        return "+00:00"
    return zone
