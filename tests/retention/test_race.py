"""A retention run racing a push loop never deletes a tag pushed during the run.

The registry serves under gunicorn; the run happens in the test's process, as ``registry
retention`` would, on the same storage (and the same Redis, for Redis locks). Thousands of old
tags are written straight into storage; while retention deletes them, threads push new
manifests to those very tags through the API. Every tag whose last push succeeded must be
there afterwards, pointing at what was pushed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from distribution import config as config_module
from distribution import retention
from distribution.digest import Digest
from distribution.storage import locks, paths
from distribution.storage.driver import create
from tests.gc.content import OCI_MANIFEST, Api, http_send, layer
from tests.redis_server import RedisServer

TAGS = 1500
PUSHERS = 3
OLD = time.time() - 1000 * 3600

CONFIG = """
version: 0.1
log: {{level: warn}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance:
    uploadpurging: {{enabled: false}}
    retention:
      policies:
        - repositories: ["race/app"]
          keep: [{{mostrecent: 1}}]
http:
  secret: race-secret
{redis}
"""


@pytest.fixture(params=["storage locks", "redis locks"])
def redis_section(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "storage locks":
        yield ""
        return
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield f"redis: {{addr: '{server.addr}'}}"
    finally:
        server.stop()


def test_a_push_during_the_run_always_wins(
    tmp_path: Path, start_registry, redis_section: str
) -> None:
    root = tmp_path / "root"
    text = CONFIG.format(root=root, redis=redis_section)
    registry = start_registry(text)
    api = Api(http_send(registry.url))
    body, _ = api.image("race/app", [layer("race")], "race")
    first = api.push_manifest("race/app", "seed", body)
    _old_tags(root, first)

    pushed: dict[str, tuple[str, float]] = {}
    stop = threading.Event()
    errors: list[str] = []

    def push_loop(worker: int) -> None:
        session = requests.Session()
        doc = json.loads(body)
        n = 0
        while not stop.is_set():
            tag = f"t{(n * PUSHERS + worker) * 7 % TAGS:04d}"
            n += 1
            doc["annotations"] = {"n": f"{worker}-{n}"}
            data = json.dumps(doc).encode()
            response = session.put(
                f"{registry.url}/v2/race/app/manifests/{tag}",
                data=data,
                headers={"Content-Type": OCI_MANIFEST},
                timeout=30,
            )
            if response.status_code != 201:
                errors.append(f"{tag}: {response.status_code} {response.text[:200]}")
                continue
            pushed[tag] = (str(Digest.of(data)), time.time())

    config = config_module.parse(text, {})
    driver = create("filesystem", {"rootdirectory": str(root)})
    threads = [threading.Thread(target=push_loop, args=(i,)) for i in range(PUSHERS)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        started = time.time()
        report, _ = retention.run_once(
            config, driver, dry_run=False, collect=False, locks=locks.from_config(config, driver)
        )
        finished = time.time()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert not errors, errors[:5]

    during = {tag for tag, (_, when) in pushed.items() if started <= when <= finished}
    assert len(during) > 20, "the pushes did not overlap the run"
    lost = []
    for tag, (digest, _) in pushed.items():
        link = root / paths.tag_current_link("race/app", tag).lstrip("/")
        if not link.exists() or link.read_text() != digest:
            lost.append(tag)
    assert not lost, f"{len(lost)} tags pushed during the run were lost: {lost[:10]}"
    (outcome,) = report.repositories
    assert len(outcome.deleted_tags) > TAGS // 4, "the run deleted too little to race"
    print(
        f"{len(outcome.deleted_tags)} tags deleted, {len(pushed)} tags pushed "
        f"({len(during)} during the run), {len(outcome.skipped)} deletions given up to a push"
    )


def _old_tags(root: Path, digest: str) -> None:
    """``TAGS`` tags pointing at ``digest``, pushed 1000 hours ago, written as Go writes them."""
    hex_part = digest.split(":", 1)[1]
    for i in range(TAGS):
        base = root / paths.tag("race/app", f"t{i:04d}").lstrip("/")
        for path in (base / "current" / "link", base / "index" / "sha256" / hex_part / "link"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(digest)
            os.utime(path, (OLD, OLD))
