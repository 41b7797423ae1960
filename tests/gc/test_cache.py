"""The blob descriptor cache after a collection: what the collection deleted is no longer
answered from the cache, so a client that asks whether a blob exists uploads it again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from distribution import config as config_module
from distribution import maintenance
from distribution.digest import Digest
from distribution.storage.driver import create
from tests.conftest import make_app
from tests.gc.content import (
    OCI_LAYER,
    OCI_MANIFEST,
    Api,
    dumps,
    flask_send,
    layer,
    stored_blobs,
)
from tests.gc.test_collect import age_everything
from tests.redis_server import RedisServer

CONFIG = """
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
  cache: {{blobdescriptor: {cache}}}
  maintenance:
    uploadpurging: {{enabled: false}}
    gc: {{enabled: true, age: 1s, deleteuntagged: true}}
{redis}
http:
  secret: test-secret
"""


@pytest.fixture(params=["redis", "inmemory"])
def cache_section(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The cache, Redis or each process's own memory (deletes off, as it requires)."""
    if request.param == "inmemory":
        yield {"cache": "inmemory", "redis": ""}
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield {"cache": "redis", "redis": f"redis: {{addr: '{server.addr}'}}"}
    finally:
        server.stop()


def test_scheduled_collection_leaves_no_cached_answer_for_what_it_deleted(
    tmp_path: Path, cache_section: dict[str, str]
) -> None:
    """The collection runs in a process of its own: it clears Redis, and it cannot reach a
    worker's memory, so the in-process cache stays off while collections run."""
    root = tmp_path / "root"
    text = CONFIG.format(root=root, **cache_section)
    api = Api(flask_send(make_app(text).test_client()))
    # An image whose tag moves on: with deleteuntagged, its own layer becomes garbage.
    old, old_blobs = api.image("app", [layer("old-only")], "old")
    api.push_manifest("app", "latest", old)
    new, _ = api.image("app", [layer("new")], "new")
    api.push_manifest("app", "latest", new)
    doomed = old_blobs[1]
    assert api.blob_status("app", doomed) == 200  # now in the cache
    age_everything(root)
    config = config_module.parse(text, {})
    driver = create("filesystem", {"rootdirectory": str(root)})
    (job,) = [job for job in maintenance.jobs(config, driver) if job.name == "gc"]
    job.run(lambda: True)
    assert str(Digest.parse(doomed)) not in stored_blobs(root)
    # A client pushing that layer again asks first, as docker does, and uploads what is missing.
    assert api.blob_status("app", doomed) == 404
    again, _ = api.image("app", [], "again")
    doc = json.loads(again)
    doc["layers"] = [{"mediaType": OCI_LAYER, "digest": doomed, "size": len(layer("old-only"))}]
    if api.blob_status("app", doomed) != 200:
        api.upload("app", layer("old-only"))
    api.push_manifest("app", "again", dumps(doc), OCI_MANIFEST)
