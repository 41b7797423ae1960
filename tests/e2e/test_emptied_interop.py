"""Notes of emptied repositories on a volume the Go registry reads.

Our registry notes a repository a deletion left with nothing in the repository's own folder
(``_emptied``). Go's catalog walk and its garbage collection must still see every repository,
one nested under a noted repository included: a collection that missed it would delete the
blobs it holds. And ``registry serve`` sweeps a volume it never swept, by itself.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from tests.e2e.harness import GO_REGISTRY, StartServer, config_text
from tests.gc.content import Api, http_send, layer

V2 = "docker/registry/v2"


def catalog(api: Api) -> list[str]:
    status, _, body = api.send("GET", "/v2/_catalog", b"", {})
    assert status == 200, body
    return json.loads(body)["repositories"]


def test_go_sees_every_repository_beside_the_notes(
    start_server: StartServer, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    ours = start_server("python", root)
    api = Api(http_send(ours.url))
    swept = root / V2 / "_maintenance/catalog/emptied-noted"
    deadline = time.monotonic() + 30
    while not swept.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert swept.exists(), "the maintenance job did not sweep the new volume"

    pushed = {}
    for name in ("a", "a/sub", "c"):
        body, blobs = api.image(name, [layer(name)], name)
        pushed[name] = (api.push_manifest(name, "v1", body), blobs)
    api.delete_manifest("a", pushed["a"][0])
    assert (root / V2 / "repositories/a/_emptied/at").exists()
    assert catalog(api) == ["a/sub", "c"]
    ours.stop()

    go = start_server("go", root)
    go_api = Api(http_send(go.url))
    assert catalog(go_api) == ["a", "a/sub", "c"]  # Go lists the emptied one, as it always has
    assert go_api.get_manifest("a/sub", "v1")[0] == 200
    go.stop()

    config = tmp_path / "go-gc.yml"
    config.write_text(config_text(root, 5000))
    result = subprocess.run(
        [GO_REGISTRY, "garbage-collect", str(config)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    again = Api(http_send(start_server("python", root).url))
    for name in ("a/sub", "c"):
        digest, blobs = pushed[name]
        assert again.get_manifest(name, digest)[0] == 200
        for blob in blobs:
            assert again.blob_status(name, blob) == 200, (name, blob)
    for blob in pushed["a"][1]:
        assert not (root / V2 / "blobs/sha256" / blob[7:9] / blob[7:] / "data").exists()
    assert catalog(again) == ["a/sub", "c"]
