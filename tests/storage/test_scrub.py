"""``registry verify``: a scrub that re-hashes stored blobs, on a tree pushed through the API."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from distribution.cache.memory import InMemoryCache
from distribution.digest import Digest
from distribution.storage import paths, scrub
from distribution.storage.blobs import Descriptor
from distribution.storage.driver import create
from tests.conftest import make_app

CONFIG = """\
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
http: {{secret: scrub-test}}
"""


def push(client, name: str, data: bytes) -> Digest:
    digest = Digest.of(data)
    response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest}", data=data)
    assert response.status_code == 201, response.data
    return digest


def push_image(client, name: str, seed: str) -> tuple[Digest, Digest, Digest]:
    """A config, a layer and a manifest tagged ``seed``; their digests."""
    config = push(client, name, json.dumps({"os": "linux", "seed": seed}).encode())
    layer = push(client, name, f"layer of {seed}".encode() * 100)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": str(config),
            "size": len(json.dumps({"os": "linux", "seed": seed})),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": str(layer),
                "size": len(f"layer of {seed}".encode() * 100),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    response = client.put(
        f"/v2/{name}/manifests/{seed}",
        data=body,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert response.status_code == 201, response.data
    return config, layer, Digest.of(body)


def blob_file(root: Path, digest: Digest) -> Path:
    return root / paths.blob_data(digest).lstrip("/")


def run(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "distribution", "verify", *flags, str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path, object]:
    root = tmp_path / "root"
    text = CONFIG.format(root=root)
    config = tmp_path / "config.yml"
    config.write_text(text)
    return root, config, make_app(text).test_client()


def test_damaged_blobs_are_reported_moved_out_and_pushed_again(tree) -> None:
    root, config, client = tree
    _, layer, manifest = push_image(client, "app", "v1")
    push_image(client, "other/app", "v2")

    clean = run(config)
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.startswith("verified 6 blobs") and ", 0 damaged in " in clean.stdout

    good_layer = blob_file(root, layer).read_bytes()
    blob_file(root, layer).write_bytes(b"tampered " + good_layer[9:])  # same size
    blob_file(root, manifest).write_bytes(blob_file(root, manifest).read_bytes()[:-1])

    found = run(config)
    assert found.returncode == 2
    damaged = found.stdout.splitlines()[:-1]
    assert sorted(line.split(":", 2)[0] + ":" + line.split(":", 2)[1] for line in damaged) == (
        sorted([str(layer), str(manifest)])
    )
    assert all("content hashes to sha256:" in line for line in damaged)
    assert ", 2 damaged in " in found.stdout.splitlines()[-1]
    assert blob_file(root, layer).exists()  # reporting changes nothing

    repaired = run(config, "--repair")
    assert repaired.returncode == 2
    assert "2 moved to quarantine" in repaired.stdout
    assert not blob_file(root, layer).exists() and not blob_file(root, manifest).exists()
    assert (root / paths.quarantine_data(layer).lstrip("/")).exists()
    assert run(config).returncode == 0

    assert client.head(f"/v2/app/blobs/{layer}").status_code == 404
    push(client, "app", good_layer)  # a later push brings it back
    assert client.head(f"/v2/app/blobs/{layer}").status_code == 200
    assert run(config).returncode == 0


def test_repair_clears_the_blob_descriptor_cache_and_rebuilds_referrers(tree) -> None:
    root, _, client = tree
    _, layer, _ = push_image(client, "app", "v1")
    blob_file(root, layer).write_bytes(b"damaged")
    driver = create("filesystem", {"rootdirectory": str(root)})
    cache = InMemoryCache(100)
    cache.set(layer, Descriptor(layer, 1500))
    seen = []

    report = scrub.verify(driver, repair=True, jobs=2, cache=cache, found=seen.append)

    assert [damage.digest for damage in seen] == [layer]
    assert cache.stat(layer) is None
    assert (report.quarantined, report.reindexed) == (1, 1)
    driver.stat(paths.referrers_indexed("app"))


def test_a_missing_config_or_bad_flags_are_one_line(tmp_path: Path) -> None:
    missing = run(tmp_path / "nope.yml")
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.format(root=tmp_path))
    bad = run(config, "--jobs", "0")
    assert (bad.returncode, bad.stderr) == (1, "registry verify: --jobs must be at least 1\n")
