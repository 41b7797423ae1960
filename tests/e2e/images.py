"""Test images built in Python: OCI and Docker schema 2 manifests with random gzip layers.

An :class:`Image` holds its manifest (or index) and every blob it reaches, so a test knows each
digest before a client touches it. Layouts are written to disk in two forms skopeo reads
without converting anything: ``oci:`` (OCI image layout) for the OCI images, and ``dir:``
(containers/image's directory transport, which keeps any manifest as it is) for the Docker ones.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"

#: The ``version`` file of containers/image's ``dir:`` transport (multi-image capable).
DIR_TRANSPORT_VERSION = "Directory Transport Version: 1.1\n"

KiB = 1024
MiB = 1024 * KiB


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Layer:
    """A gzip-compressed tar layer and the digest of its uncompressed tar (the diff ID)."""

    data: bytes
    diff_id: str

    @property
    def digest(self) -> str:
        return sha256(self.data)


@dataclass
class Image:
    """A manifest or an index, with every blob (and child manifest) it reaches, by digest."""

    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    children: list[Image] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    @property
    def parsed(self) -> dict:
        return json.loads(self.manifest)

    @property
    def layer_digests(self) -> list[str]:
        return [layer["digest"] for layer in self.parsed.get("layers", [])]

    def all_manifests(self) -> dict[str, bytes]:
        """This manifest and every child manifest, by digest."""
        manifests = {self.digest: self.manifest}
        for child in self.children:
            manifests.update(child.all_manifests())
        return manifests

    def all_blobs(self) -> dict[str, bytes]:
        """Every config and layer blob reached from here, children included."""
        blobs = dict(self.blobs)
        for child in self.children:
            blobs.update(child.all_blobs())
        return blobs


def random_layer(size: int, seed: int) -> Layer:
    """A tar holding one file of ``size`` random bytes (reproducible from ``seed``), gzipped."""
    content = random.Random(seed).randbytes(size)
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layer-{seed}.bin")
        info.size = size
        info.mtime = 0
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = tar_buffer.getvalue()
    return Layer(gzip.compress(tar_bytes, compresslevel=1, mtime=0), sha256(tar_bytes))


def image(layers: list[Layer], arch: str = "amd64", docker: bool = False) -> Image:
    """A single-platform image manifest (OCI, or Docker schema 2 with ``docker``)."""
    config = _json(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
    )
    layer_type = DOCKER_LAYER if docker else OCI_LAYER
    manifest = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
        "config": _descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [_descriptor(layer_type, layer.data) for layer in layers],
    }
    blobs = {sha256(config): config} | {layer.digest: layer.data for layer in layers}
    return Image(_json(manifest), manifest["mediaType"], blobs)


def index(images: list[Image], docker: bool = False) -> Image:
    """A multi-platform OCI index (or Docker manifest list with ``docker``) of ``images``."""
    entries = []
    for child in images:
        config = json.loads(child.blobs[child.parsed["config"]["digest"]])
        entry = _descriptor(child.media_type, child.manifest)
        entry["platform"] = {"architecture": config["architecture"], "os": config["os"]}
        entries.append(entry)
    media_type = DOCKER_LIST if docker else OCI_INDEX
    manifest = {"schemaVersion": 2, "mediaType": media_type, "manifests": entries}
    return Image(_json(manifest), media_type, children=list(images))


def multi_layer_image(seed: int = 1, docker: bool = False) -> Image:
    """Three gzip layers, the largest above 1 MiB so clients push it in more than one piece."""
    sizes = [300 * KiB, 700 * KiB, 2 * MiB]
    return image(
        [random_layer(size, seed * 100 + i) for i, size in enumerate(sizes)], docker=docker
    )


def multi_arch_index(seed: int = 2, docker: bool = False) -> Image:
    """Two platforms sharing a base layer, each with one layer of its own."""
    base = random_layer(400 * KiB, seed * 100)
    platforms = [
        image([base, random_layer((200 + 100 * i) * KiB, seed * 100 + 1 + i)], arch, docker)
        for i, arch in enumerate(["amd64", "arm64"])
    ]
    return index(platforms, docker=docker)


def write_oci_layout(directory: Path, tagged: dict[str, Image]) -> None:
    """An OCI image layout: ``skopeo copy oci:DIRECTORY:TAG`` reads each tag of ``tagged``."""
    blob_dir = directory / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    refs = []
    for tag, img in tagged.items():
        for digest, data in img.all_manifests().items() | img.all_blobs().items():
            (blob_dir / digest.removeprefix("sha256:")).write_bytes(data)
        ref = _descriptor(img.media_type, img.manifest)
        ref["annotations"] = {"org.opencontainers.image.ref.name": tag}
        refs.append(ref)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (directory / "index.json").write_bytes(_json({"schemaVersion": 2, "manifests": refs}))


def read_oci_layout(directory: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    """``(tag -> manifest digest, digest -> blob)`` of a layout, each blob's digest checked."""
    index_json = json.loads((directory / "index.json").read_text())
    tags = {
        ref["annotations"]["org.opencontainers.image.ref.name"]: ref["digest"]
        for ref in index_json["manifests"]
    }
    return tags, _read_blobs(directory / "blobs" / "sha256", lambda name: name)


def write_dir_layout(directory: Path, img: Image) -> None:
    """A ``dir:`` transport directory: ``manifest.json``, child manifests, blobs by hex digest."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "version").write_text(DIR_TRANSPORT_VERSION)
    (directory / "manifest.json").write_bytes(img.manifest)
    for digest, data in img.all_manifests().items():
        if digest != img.digest:
            (directory / f"{digest.removeprefix('sha256:')}.manifest.json").write_bytes(data)
    for digest, data in img.all_blobs().items():
        (directory / digest.removeprefix("sha256:")).write_bytes(data)


def read_dir_layout(directory: Path) -> tuple[bytes, dict[str, bytes]]:
    """``(top-level manifest, digest -> blob or child manifest)``, each digest checked."""
    blobs = _read_blobs(directory, lambda name: name.removesuffix(".manifest.json"))
    return (directory / "manifest.json").read_bytes(), blobs


def _read_blobs(directory: Path, hex_of: Callable[[str], str]) -> dict[str, bytes]:
    blobs = {}
    for path in directory.iterdir():
        if path.name in ("version", "manifest.json"):
            continue
        data = path.read_bytes()
        digest = "sha256:" + hex_of(path.name)
        assert sha256(data) == digest, f"{path} does not hash to its name"
        blobs[digest] = data
    return blobs


def _descriptor(media_type: str, data: bytes) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def _json(value: object) -> bytes:
    return json.dumps(value, indent=2).encode()
