"""A registry tree built by pushes through the API, with push and pull times set by the test.

Pushes go through the Flask app (the real handlers, on the filesystem driver); then the link
files' times are moved back (``os.utime``), which is exactly what "pushed" reads, and pulls
are written as a journal batch with chosen times, which is what the request hook would write.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from distribution import config as config_module
from distribution import usage
from distribution.config import Configuration
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import StorageDriver, create
from distribution.usage import journal, state
from tests.conftest import make_app
from tests.gc.content import OCI_INDEX, OCI_MANIFEST, Api, dumps, flask_send, layer

H = 3600.0

CONFIG = """
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance:
    uploadpurging: {{enabled: false}}
    gc: {{age: 1s}}
{extra}
http:
  secret: test-secret
"""


@dataclass
class Tree:
    root: Path
    config_text: str
    api: Api
    now: float = field(default_factory=time.time)

    @classmethod
    def make(cls, root: Path, extra: str = "") -> Tree:
        text = CONFIG.format(root=root, extra=extra)
        app = make_app(text)
        # The API's own reads are not pulls: a test sets every pull and its time (``pulled``).
        app.extensions[usage.EXTENSION].record_pulls = False
        return cls(root, text, Api(flask_send(app.test_client())))

    @property
    def config(self) -> Configuration:
        return config_module.parse(self.config_text, {})

    @property
    def driver(self) -> StorageDriver:
        return create("filesystem", {"rootdirectory": str(self.root)})

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def image(
        self, repo: str, seed: str, shared: bytes | None = None, **extra
    ) -> tuple[bytes, str]:
        """Push an image by digest (untagged); its manifest and digest."""
        layers = [layer(f"{repo}-{seed}")] + ([shared] if shared else [])
        body, _ = self.api.image(repo, layers, seed, **extra)
        return body, self.api.push_manifest(repo, _sha(body), body)

    def tagged(self, repo: str, tag: str, seed: str, hours_ago: float, **extra) -> str:
        """An image pushed as ``tag``, ``hours_ago`` hours ago."""
        body, _ = self.api.image(repo, [layer(f"{repo}-{seed}")], seed, **extra)
        digest = self.api.push_manifest(repo, tag, body)
        self.age_manifest(repo, digest, hours_ago)
        self.age_tag(repo, tag, hours_ago)
        return digest

    def tag(self, repo: str, tag: str, digest: str, hours_ago: float) -> None:
        """Point ``tag`` at a manifest already pushed."""
        status, body = self.api.get_manifest(repo, digest)
        assert status == 200
        media_type = json.loads(body).get("mediaType", OCI_MANIFEST)
        self.api.push_manifest(repo, tag, body, media_type)
        self.age_tag(repo, tag, hours_ago)

    def index(
        self, repo: str, tag: str, children: list[tuple[bytes, str]], hours_ago: float
    ) -> str:
        """An index of ``children`` pushed as ``tag``, ``hours_ago`` hours ago, the children
        with it: its push wrote their links again (retention covers every test repository)."""
        entries = [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "platform": {"architecture": f"arch{i}", "os": "linux"},
            }
            for i, (body, digest) in enumerate(children)
        ]
        body = dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        digest = self.api.push_manifest(repo, tag, body, OCI_INDEX)
        for child in [digest] + [child for _, child in children]:
            self.age_manifest(repo, child, hours_ago)
        self.age_tag(repo, tag, hours_ago)
        return digest

    def referrer(self, repo: str, subject: bytes, seed: str, hours_ago: float) -> str:
        body, _ = self.api.referrer(repo, subject, seed)
        digest = self.api.push_manifest(repo, _sha(body), body)
        self.age_manifest(repo, digest, hours_ago)
        return digest

    def age_tag(self, repo: str, tag: str, hours_ago: float) -> None:
        _touch(self.file(paths.tag_current_link(repo, tag)), self.now - hours_ago * H)

    def age_manifest(self, repo: str, digest: str, hours_ago: float) -> None:
        link = paths.manifest_revision_link(repo, Digest.parse(digest))
        _touch(self.file(link), self.now - hours_ago * H)

    def age_blobs(self, hours_ago: float = 24) -> None:
        """Every blob and layer link old, so a collection may take what nothing references."""
        then = self.now - hours_ago * H
        for folder in ("docker/registry/v2/blobs", "docker/registry/v2/repositories"):
            for path in (self.root / folder).rglob("*"):
                if path.name in ("data",) or "_layers" in path.parts:
                    _touch(path, then)

    def pulled(self, repo: str, refs: dict[str, float]) -> None:
        """Record pulls of ``refs`` (tags or digests), each ``hours ago``."""
        batch = journal.Batch(pulls={repo: {r: self.now - h * H for r, h in refs.items()}})
        journal.StorageSink(self.driver).write(batch.encode())

    def pulls_recorded_since(self, hours_ago: float) -> None:
        """Start the pull record ``hours_ago`` hours ago (as a registry running that long)."""
        saved = state.load(self.driver) or state.State()
        saved.since = self.now - hours_ago * H
        state.save(self.driver, saved)

    def snapshot(self) -> dict[str, tuple[float, bytes]]:
        """Every file of the registry (journal batches aside), with its time and content."""
        found = {}
        for path in self.root.rglob("*"):
            if path.is_file() and "journal" not in path.parts:
                found[str(path.relative_to(self.root))] = (path.stat().st_mtime, path.read_bytes())
        return found

    def tags(self, repo: str) -> set[str]:
        status, _, body = self.api.send("GET", f"/v2/{repo}/tags/list", b"", {})
        return set(json.loads(body)["tags"] or []) if status == 200 else set()

    def has_manifest(self, repo: str, digest: str) -> bool:
        link = self.file(paths.manifest_revision_link(repo, Digest.parse(digest)))
        return link.exists()


def _touch(path: Path, when: float) -> None:
    assert path.exists(), path
    os.utime(path, (when, when))


def _sha(body: bytes) -> str:
    return Digest.of(body).__str__()
