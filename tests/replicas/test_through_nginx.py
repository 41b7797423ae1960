"""Replicas behind a real nginx round robin: skopeo pushes and pulls in parallel, Redis dies.

Every client request may land on either replica, so an upload's requests, a push's manifest
check and a pull's blob reads cross between them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e import checks
from tests.e2e.checks import ImageSet
from tests.e2e.harness import Skopeo
from tests.redis_server import RedisServer
from tests.replicas import blobs
from tests.replicas.cluster import GoReplica, Replica, redis_hits, replica_config

#: Seconds to wait for the cache to be used again once Redis is back (its back-off is 3 s).
RECOVERY_TIMEOUT = 30.0


@dataclass(frozen=True)
class Front:
    """nginx, in the shape tests/e2e/checks.py addresses a registry."""

    netloc: str

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"


def pushes(image_set: ImageSet, prefix: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(source, repo:tag, flags) for each test image."""
    return [
        (image_set.oci("image"), f"{prefix}/oci-image:1.0", ()),
        (image_set.oci("index"), f"{prefix}/oci-index:multi", ("--all",)),
        (f"dir:{image_set.docker_image_dir}", f"{prefix}/docker-image:v2s2", ()),
        (f"dir:{image_set.docker_list_dir}", f"{prefix}/docker-list:multi", ("--all",)),
    ]


def pull_and_check(front: Front, image_set: ImageSet, prefix: str, work: Path, home: Path) -> None:
    """Pull every image back in parallel; each matches what was pushed, byte for byte."""
    jobs: list[Callable[[], None]] = []
    for i, (puller, ref, img) in enumerate(
        [
            (checks.pull_oci, f"{prefix}/oci-image:1.0", image_set.oci_image),
            (checks.pull_oci, f"{prefix}/oci-index:multi", image_set.oci_index),
            (checks.pull_dir, f"{prefix}/docker-image:v2s2", image_set.docker_image),
            (checks.pull_dir, f"{prefix}/docker-list:multi", image_set.docker_list),
        ]
    ):
        skopeo = Skopeo(home / f"pull-{i}")
        jobs.append(
            lambda p=puller, s=skopeo, r=ref, m=img, i=i: p(s, front, r, m, work / f"out-{i}")
        )
        jobs.append(lambda s=skopeo, r=ref, m=img: checks.check_manifest(s, front, r, m))
    with ThreadPoolExecutor(len(jobs)) as pool:
        for future in [pool.submit(job) for job in jobs]:
            future.result()


def start(kind: str, config: str, start_registry: Callable, start_go: Callable) -> Replica:
    return start_go(config) if kind == "go" else start_registry(config)


@pytest.mark.parametrize("kinds", [("python", "python"), ("python", "go")], ids="-".join)
def test_parallel_pushes_and_pulls_through_nginx(
    kinds: tuple[str, str],
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
    start_nginx: Callable[[list[Replica]], str],
    image_set: ImageSet,
) -> None:
    config = replica_config(tmp_path / "root", redis_server.addr)
    replicas = [start(kind, config, start_registry, start_go) for kind in kinds]
    front = Front(start_nginx(replicas))
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(
                Skopeo(tmp_path / f"push-{i}").copy, source, checks.docker_ref(front, ref), *flags
            )
            for i, (source, ref, flags) in enumerate(pushes(image_set, "parallel"))
        ]
        for future in futures:
            future.result()
    pull_and_check(front, image_set, "parallel", tmp_path / "pulled", tmp_path)
    raw = redis_server.client()
    layers = {d.encode() for d in image_set.oci_image.layer_digests}
    assert layers <= raw.smembers("repository::parallel/oci-image::blobs")
    for replica in replicas:  # each replica serves everything, whichever took the push
        for digest, data in image_set.oci_image.blobs.items():
            assert blobs.get_blob(replica.url, "parallel/oci-image", digest).content == data


def test_redis_killed_mid_push_then_back(
    tmp_path: Path,
    redis_server: RedisServer,
    start_registry: Callable,
    start_nginx: Callable[[list[Replica]], str],
    image_set: ImageSet,
) -> None:
    config = replica_config(tmp_path / "root", redis_server.addr)
    replicas = [start_registry(config) for _ in range(2)]
    front = Front(start_nginx(replicas))
    skopeo = Skopeo(tmp_path / "push")
    first_done = threading.Event()
    failures: list[BaseException] = []

    def push_all() -> None:
        try:
            for i, (source, ref, flags) in enumerate(pushes(image_set, "outage")):
                skopeo.copy(source, checks.docker_ref(front, ref), *flags)
                if i == 0:
                    first_done.set()
        except BaseException as error:  # surfaced below
            failures.append(error)
            first_done.set()

    pusher = threading.Thread(target=push_all)
    pusher.start()
    assert first_done.wait(timeout=120)
    redis_server.stop()  # while the other three images are being pushed
    pusher.join(timeout=300)
    assert not pusher.is_alive()
    assert failures == []
    pull_and_check(front, image_set, "outage", tmp_path / "pulled", tmp_path)

    redis_server.start()  # empty: it kept nothing
    raw = redis_server.client()
    digest = image_set.oci_image.layer_digests[0]
    known = "repository::outage/oci-image::blobs"
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    # A miss refills the cache once the back-off is over. Waited for as such: other keys (the
    # maintenance job's lease) count in the server's hits too.
    while not raw.sismember(known, digest) and time.monotonic() < deadline:
        assert blobs.head_blob(front.url, "outage/oci-image", digest).status_code == 200
        time.sleep(0.2)
    assert raw.sismember(known, digest)
    hits = redis_hits(raw)  # then lookups of the same blob hit (each worker after its back-off)
    while redis_hits(raw) == hits and time.monotonic() < deadline:
        assert blobs.head_blob(front.url, "outage/oci-image", digest).status_code == 200
        time.sleep(0.2)
    assert redis_hits(raw) > hits

    for replica in replicas:
        log = replica.stderr
        assert "Traceback" not in log
        # Once per worker (2), never once per request.
        assert 1 <= log.count("blob descriptor cache (redis) unavailable") <= 2, log
