"""Content for the garbage collection tests, pushed through the registry's HTTP API.

:class:`Api` speaks to a Flask test client or to a real server with ``requests``, so the same
scenario runs in-process and against ``registry serve``. :func:`push_scenario` builds what GC
has to tell apart: layers shared by images and repositories, a multi-arch index (whose
children are untagged), a referrer of a tagged image and one of an untagged image, an image
that lost its tag, a deleted manifest, and a blob nobody references.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
SIGNATURE = "application/vnd.example.signature.v1"
BLOBS = "docker/registry/v2/blobs"

#: ``send(method, path, body, headers) -> (status, headers, body)``.
Send = Callable[[str, str, bytes, dict[str, str]], tuple[int, dict[str, str], bytes]]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def flask_send(client) -> Send:
    def send(method: str, path: str, body: bytes, headers: dict[str, str]):
        response = client.open(path, method=method, data=body, headers=headers)
        return response.status_code, dict(response.headers), response.get_data()

    return send


def http_send(base_url: str) -> Send:
    session = requests.Session()

    def send(method: str, path: str, body: bytes, headers: dict[str, str]):
        response = session.request(method, base_url + path, data=body, headers=headers, timeout=30)
        return response.status_code, dict(response.headers), response.content

    return send


@dataclass
class Api:
    send: Send

    def upload(self, repo: str, data: bytes) -> dict:
        """A monolithic upload (POST then PUT with the digest); the blob's descriptor."""
        status, headers, body = self.send("POST", f"/v2/{repo}/blobs/uploads/", b"", {})
        assert status == 202, (status, body)
        location = headers["Location"]
        location = location[location.index("/v2/") :]
        separator = "&" if "?" in location else "?"
        digest = sha256(data)
        status, _, body = self.send(
            "PUT",
            f"{location}{separator}digest={digest}",
            data,
            {"Content-Type": "application/octet-stream"},
        )
        assert status == 201, (status, body)
        return {"digest": digest, "size": len(data)}

    def put_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> tuple[int, bytes]:
        status, _, response = self.send(
            "PUT", f"/v2/{repo}/manifests/{ref}", body, {"Content-Type": media_type}
        )
        return status, response

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str = OCI_MANIFEST):
        status, response = self.put_manifest(repo, ref, body, media_type)
        assert status == 201, (status, response)
        return sha256(body)

    def delete_manifest(self, repo: str, ref: str) -> None:
        status, _, body = self.send("DELETE", f"/v2/{repo}/manifests/{ref}", b"", {})
        assert status == 202, (status, body)

    def blob_status(self, repo: str, digest: str) -> int:
        return self.send("HEAD", f"/v2/{repo}/blobs/{digest}", b"", {})[0]

    def get_blob(self, repo: str, digest: str) -> tuple[int, bytes]:
        status, _, body = self.send("GET", f"/v2/{repo}/blobs/{digest}", b"", {})
        return status, body

    def get_manifest(self, repo: str, ref: str) -> tuple[int, bytes]:
        accept = ", ".join([OCI_MANIFEST, OCI_INDEX])
        status, _, body = self.send("GET", f"/v2/{repo}/manifests/{ref}", b"", {"Accept": accept})
        return status, body

    def image(self, repo: str, layers: list[bytes], seed: str, **extra) -> tuple[bytes, list[str]]:
        """Upload a config and ``layers``; the manifest (not pushed) and its blob digests."""
        config = self.upload(repo, json.dumps({"os": "linux", "seed": seed}).encode())
        descriptors = [self.upload(repo, layer) for layer in layers]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER, **d} for d in descriptors],
            **extra,
        }
        return dumps(doc), [config["digest"], *(d["digest"] for d in descriptors)]

    def referrer(self, repo: str, subject: bytes, seed: str) -> tuple[bytes, list[str]]:
        """An artifact (a signature) whose ``subject`` is ``subject``; not pushed."""
        config = self.upload(repo, b"{}")
        payload = self.upload(repo, f"signature {seed}".encode())
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": SIGNATURE,
            "config": {"mediaType": EMPTY_CONFIG, **config},
            "layers": [{"mediaType": SIGNATURE, **payload}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(subject), "size": len(subject)},
        }
        return dumps(doc), [config["digest"], payload["digest"]]


def dumps(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()


def layer(name: str, size: int = 2048) -> bytes:
    """Distinct, reproducible layer bytes."""
    seed = hashlib.sha256(name.encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


@dataclass
class Scenario:
    """Digests pushed by :func:`push_scenario`, grouped by what GC should do with them."""

    #: Manifests and blobs every mode keeps (tagged images, the index and its children).
    kept: set[str] = field(default_factory=set)
    #: Kept by our ``--delete-untagged`` (a referrer of a tagged image), deleted by Go's.
    referrer: set[str] = field(default_factory=set)
    #: Blobs of the index's children only: Go 2.8.2's ``--delete-untagged`` deletes them.
    index_children_blobs: set[str] = field(default_factory=set)
    #: The index's child manifests (untagged).
    children: set[str] = field(default_factory=set)
    #: Garbage in every mode: a deleted manifest's own blobs and a stray upload.
    garbage: set[str] = field(default_factory=set)
    #: Deleted only with ``--delete-untagged``: an image that lost its tag and its referrer.
    untagged: set[str] = field(default_factory=set)
    untagged_manifests: dict[str, str] = field(default_factory=dict)
    #: ``repo -> {ref: manifest bytes}`` of what must still pull after any GC.
    pullable: dict[str, dict[str, bytes]] = field(default_factory=dict)
    stray: str = ""
    #: The image that lost its tag.
    old_image: str = ""


def push_scenario(api: Api) -> Scenario:
    s = Scenario()
    shared = layer("shared")
    # app: "latest" moves from old to new; new has a signature; old had one too.
    old, old_blobs = api.image("app", [shared, layer("app-old")], "old")
    old_digest = api.push_manifest("app", "latest", old)
    old_sig, old_sig_blobs = api.referrer("app", old, "old")
    old_sig_digest = api.push_manifest("app", sha256(old_sig), old_sig)
    new, new_blobs = api.image("app", [shared, layer("app-new")], "new")
    new_digest = api.push_manifest("app", "latest", new)
    api.push_manifest("app", "stable", new)
    sig, sig_blobs = api.referrer("app", new, "new")
    sig_digest = api.push_manifest("app", sha256(sig), sig)
    s.stray = api.upload("app", layer("stray"))["digest"]
    # multi: an index of two images sharing a base layer (and the cross-repo shared layer).
    base = layer("base")
    children = []
    for arch in ("amd64", "arm64"):
        body, blobs = api.image("multi", [shared, base, layer(f"multi-{arch}")], arch)
        digest = api.push_manifest("multi", sha256(body), body)
        children.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)})
        s.children.add(digest)
        s.index_children_blobs.update(blobs)
        s.pullable.setdefault("multi", {})[digest] = body
    for entry, arch in zip(children, ("amd64", "arm64"), strict=True):
        entry["platform"] = {"architecture": arch, "os": "linux"}
    index = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
    index_digest = api.push_manifest("multi", "multi", index, OCI_INDEX)
    # other: an image deleted by digest; its shared layer stays (app uses it), the rest goes.
    gone, gone_blobs = api.image("other", [shared, layer("other")], "other")
    gone_digest = api.push_manifest("other", "gone", gone)
    api.delete_manifest("other", gone_digest)
    kept_image, kept_blobs = api.image("other", [shared], "kept")
    kept_digest = api.push_manifest("other", "kept", kept_image)

    s.kept = {new_digest, *new_blobs, index_digest, *kept_blobs, kept_digest, *s.children}
    s.kept |= {d for d in s.index_children_blobs if d == sha256(shared)}
    s.index_children_blobs -= s.kept
    s.referrer = {sig_digest, *sig_blobs} - s.kept
    s.garbage = {gone_digest, *gone_blobs, s.stray} - s.kept
    s.untagged = {old_digest, *old_blobs, old_sig_digest, *old_sig_blobs} - s.kept - s.referrer
    s.untagged_manifests = {old_digest: "app", old_sig_digest: "app"}
    s.old_image = old_digest
    s.pullable.setdefault("app", {}).update(latest=new, stable=new)
    s.pullable["app"][sig_digest] = sig
    s.pullable["multi"]["multi"] = index
    s.pullable["other"] = {"kept": kept_image}
    return s


def stored_blobs(root: Path) -> dict[str, int]:
    """Blobs with data in a filesystem root, with their sizes."""
    found = {}
    for data in (root / BLOBS).glob("*/*/*/data"):
        found[f"{data.parts[-4]}:{data.parts[-2]}"] = data.stat().st_size
    return found


def disk_usage(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def references(body: bytes) -> set[str]:
    """The config and layer digests of an image manifest."""
    doc = json.loads(body)
    return {d["digest"] for d in [doc["config"], *doc["layers"]]}


def check_pullable(api: Api, scenario: Scenario) -> None:
    """Every kept manifest, and every blob it reaches, reads back with its digest."""
    for repo, refs in scenario.pullable.items():
        for ref, body in refs.items():
            status, got = api.get_manifest(repo, ref)
            assert (status, got) == (200, body), (repo, ref, status)
            doc = json.loads(body)
            for descriptor in [doc.get("config"), *doc.get("layers", [])]:
                if descriptor:
                    status, data = api.get_blob(repo, descriptor["digest"])
                    assert status == 200 and sha256(data) == descriptor["digest"], (repo, ref)
