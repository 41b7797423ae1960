"""Scheduled online GC in a real ``registry serve`` racing a bounded push loop.

GC runs every second with a one-second grace period and ``deleteuntagged``; the loop keeps
moving one tag (so the image it leaves becomes garbage a second later) and reuses layers from
a pool after various pauses, so new manifests keep needing *old, unreferenced* blobs: the case
a plain age check gets wrong. The client behaves like docker and skopeo: it skips blobs that
HEAD finds, and uploads again what a refused manifest lacked, then retries.

Afterwards: no manifest the registry still has references a missing blob, every image still
tagged pulls back whole, and GC did delete garbage while the loop ran.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from tests.gc.content import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    Api,
    dumps,
    http_send,
    layer,
    sha256,
)

#: Push iterations; bounded in time too.
ITERATIONS = 40
LOOP_SECONDS = 25.0
GC_SECONDS = 1.0


def config(root: Path) -> str:
    return f"""\
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    gc:
      enabled: true
      interval: 1s
      age: 1s
      deleteuntagged: true
http:
  secret: race-secret
"""


def push(api: Api, repo: str, tags: list[str], blobs: list[bytes], seed: str) -> tuple[str, bytes]:
    """Push like a real client: HEAD each blob, upload what is missing, PUT the manifest, and
    upload everything again if the registry refuses it for a missing blob."""
    cfg = json.dumps({"os": "linux", "seed": seed}).encode()
    descriptors = [{"digest": sha256(b), "size": len(b)} for b in [cfg, *blobs]]
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **descriptors[0]},
        "layers": [{"mediaType": OCI_LAYER, **d} for d in descriptors[1:]],
    }
    body = dumps(doc)
    for attempt in range(5):
        for data in [cfg, *blobs]:
            if attempt or api.blob_status(repo, sha256(data)) != 200:
                api.upload(repo, data)
        statuses = [api.put_manifest(repo, tag, body, OCI_MANIFEST) for tag in tags]
        if all(status == 201 for status, _ in statuses):
            return sha256(body), body
        for status, response in statuses:
            assert status == 201 or b"MANIFEST_BLOB_UNKNOWN" in response, (status, response)
    raise AssertionError("manifest refused five times")


def test_online_gc_never_deletes_a_blob_a_pushed_manifest_needs(tmp_path: Path, start_registry):
    root = tmp_path / "root"
    registry = start_registry(config(root))
    api = Api(http_send(registry.url))
    pushed: dict[str, bytes] = {}
    keep: dict[str, str] = {}
    deadline = time.monotonic() + LOOP_SECONDS
    for i in range(ITERATIONS):
        if time.monotonic() > deadline:
            break
        tags = ["moving"] + ([f"keep-{i}"] if i % 5 == 0 else [])
        # Pool layers come back after various pauses: some while GC is collecting them.
        pool = sorted({(i * 5 + k * 4) % 13 for k in range(3)})
        blobs = [layer(f"pool-{n}") for n in pool] + [layer(f"unique-{i}")]
        digest, body = push(api, "race", tags, blobs, seed=str(i))
        pushed[digest] = body
        for tag in tags:
            keep[tag] = digest
        time.sleep(0.15)
    # Let the runs in flight finish (interval + settle), then check as a client would.
    time.sleep(4 * GC_SECONDS + 1)
    for tag, digest in keep.items():
        status, body = api.get_manifest("race", tag)
        assert status == 200 and body == pushed[digest], tag
    still_there = 0
    for digest, body in pushed.items():
        status, _ = api.get_manifest("race", digest)
        if status != 200:
            continue  # untagged and collected: allowed
        still_there += 1
        for descriptor in [json.loads(body)["config"], *json.loads(body)["layers"]]:
            status, data = api.get_blob("race", descriptor["digest"])
            assert status == 200 and sha256(data) == descriptor["digest"], (digest, descriptor)
    registry.stop()
    log = registry.stderr
    assert "Traceback" not in log
    print("\n".join(line for line in log.splitlines() if "garbage collection" in line))
    runs = re.findall(r"garbage collection finished: .* (\d+) blobs deleted", log)
    assert len(runs) >= 3, log[-3000:]
    assert sum(int(n) for n in runs) > 0, "GC deleted nothing while the loop ran"
    assert still_there < len(pushed), "no untagged image was collected"
    assert len(set(re.findall(r"running gc in worker (\d+)", log))) == 1
