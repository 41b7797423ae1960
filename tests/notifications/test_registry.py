"""``registry serve`` under gunicorn posting to a real receiver: skopeo push and pull, the
endpoint down for a while, and (with Redis) a registry restart while it is down.

The Go registry (Debian's 2.8.2) runs the same push and pull with the same endpoint: both must
post the same events.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e import images
from tests.e2e.harness import GO_REGISTRY, Skopeo, children
from tests.notifications.receiver import Receiver, summary
from tests.process import ServerProcess
from tests.redis_server import RedisServer

REPOSITORY = "notify/app"


def config_text(
    root: Path, receiver: Receiver, redis_addr: str | None = None, timeout: str = "5s"
) -> str:
    """Our registry's config, Go's too without ``redis``; a short ``timeout`` makes a killed
    worker's events stale sooner, a long one keeps a loaded machine from causing retries."""
    redis = f"redis:\n  addr: {redis_addr}\n" if redis_addr else ""
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
http:
  addr: 127.0.0.1:5000
  secret: notifications-test
notifications:
  endpoints:
    - name: receiver
      url: {receiver.url}
      headers:
        Authorization: [Bearer hook-token]
      timeout: {timeout}
      threshold: 3
      backoff: 200ms
{redis}"""


@pytest.fixture
def image_layout(tmp_path: Path) -> tuple[images.Image, Path]:
    image = images.multi_layer_image(seed=7)
    layout = tmp_path / "layout"
    images.write_oci_layout(layout, {"v1": image})
    return image, layout


def push(skopeo: Skopeo, layout: Path, netloc: str) -> None:
    skopeo.copy(f"oci:{layout}:v1", f"docker://{netloc}/{REPOSITORY}:v1")


def pull(skopeo: Skopeo, netloc: str, into: Path) -> None:
    skopeo.copy(f"docker://{netloc}/{REPOSITORY}:v1", f"dir:{into}")


def pushed(image: images.Image) -> Counter:
    """The events of pushing ``image``: each blob, then the manifest."""
    blobs = [("push", REPOSITORY, digest) for digest in image.all_blobs()]
    return Counter([*blobs, ("push", REPOSITORY, image.digest)])


def pulled(image: images.Image) -> Counter:
    blobs = [("pull", REPOSITORY, digest) for digest in image.all_blobs()]
    return Counter([*blobs, ("pull", REPOSITORY, image.digest)])


def arrived(expected: Counter) -> Callable[[list[dict[str, Any]]], bool]:
    """Every expected event, at least once: a delivery that timed out on a busy machine may
    have reached the receiver and be sent again, as with Go."""
    return lambda events: Counter(summary(events)) >= expected


def test_skopeo_push_and_pull(
    start_registry, receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    image, layout = image_layout
    registry = start_registry(config_text(tmp_path / "data", receiver))
    netloc = registry.url.removeprefix("http://")
    skopeo = Skopeo(tmp_path / "skopeo")
    push(skopeo, layout, netloc)
    receiver.wait_for(arrived(pushed(image)))
    pull(skopeo, netloc, tmp_path / "pulled")
    expected = pushed(image) + pulled(image)
    received = receiver.wait_for(arrived(expected))
    assert set(summary(received)) == set(expected)

    port = netloc.rpartition(":")[2]
    for event in received:
        target, request = event["target"], event["request"]
        assert target["url"] == (
            f"http://{netloc}/v2/{REPOSITORY}/"
            f"{'manifests' if target['digest'] == image.digest else 'blobs'}/{target['digest']}"
        )
        assert target["length"] == target["size"]
        assert request["host"] == netloc
        assert request["useragent"].startswith("skopeo/")
        assert request["addr"].startswith("127.0.0.1:")
        assert request["method"] in {"PUT", "GET"}
        assert request["id"]
        assert event["actor"] == {}
        assert event["source"]["addr"] == f"{socket.gethostname()}:{port}"
    manifests = [e for e in received if e["target"]["digest"] == image.digest]
    assert {e["target"]["mediaType"] for e in manifests} == {images.OCI_MANIFEST}
    assert {e["target"].get("tag") for e in manifests} == {"v1"}
    layers = [e for e in received if e["target"]["digest"] != image.digest]
    assert {e["target"]["mediaType"] for e in layers} == {"application/octet-stream"}
    assert all(post.header("Authorization") == ["Bearer hook-token"] for post in receiver.posts)
    assert len({event["id"] for event in received}) == len(received)


def test_go_registry_sends_the_same_events(
    receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    """The reference: Go's events for the same push and pull, field for field."""
    image, layout = image_layout
    port = free_port()
    workdir = tmp_path / "go"
    workdir.mkdir()
    config = workdir / "config.yml"
    config.write_text(
        config_text(tmp_path / "go-data", receiver).replace("127.0.0.1:5000", f"127.0.0.1:{port}")
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    go = ServerProcess(
        [GO_REGISTRY, "serve", str(config)], workdir, env, f"http://127.0.0.1:{port}"
    )
    try:
        go.wait_ready()
        skopeo = Skopeo(tmp_path / "skopeo")
        push(skopeo, layout, f"127.0.0.1:{port}")
        pull(skopeo, f"127.0.0.1:{port}", tmp_path / "pulled")
        expected = pushed(image) + pulled(image)
        received = receiver.wait_for(arrived(expected))
    finally:
        go.stop()
    assert set(summary(received)) == set(expected)
    # The fields our events have (test_skopeo_push_and_pull) are exactly Go's.
    manifest = next(e for e in received if e["target"]["digest"] == image.digest)
    layer = next(e for e in received if e["target"]["digest"] != image.digest)
    assert list(manifest) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
    assert list(manifest["target"]) == [
        "mediaType",
        "size",
        "digest",
        "length",
        "repository",
        "url",
        "tag",
    ]
    assert list(layer["target"]) == ["mediaType", "size", "digest", "length", "repository", "url"]
    assert layer["target"]["mediaType"] == "application/octet-stream"
    assert list(layer["request"]) == ["id", "addr", "host", "method", "useragent"]
    assert manifest["actor"] == {}
    assert manifest["source"]["addr"] == f"{socket.gethostname()}:{port}"


def test_events_wait_while_the_endpoint_is_down(
    start_registry, receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    image, layout = image_layout
    registry = start_registry(config_text(tmp_path / "data", receiver))
    receiver.stop()
    push(Skopeo(tmp_path / "skopeo"), layout, registry.url.removeprefix("http://"))
    receiver.wait_for(lambda events: "retrying" in registry.log, timeout=30)
    assert receiver.events() == []
    receiver.start()
    received = receiver.wait_for(arrived(pushed(image)))
    assert set(summary(received)) == set(pushed(image))


def test_with_redis_a_restart_loses_nothing(
    start_registry, receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    image, layout = image_layout
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        config = config_text(tmp_path / "data", receiver, redis_server.addr, timeout="1s")
        registry = start_registry(config)
        receiver.stop()
        push(Skopeo(tmp_path / "skopeo"), layout, registry.url.removeprefix("http://"))
        stream = "notifications::receiver::events"
        expected = sum(pushed(image).values())
        raw = redis_server.client()
        receiver.wait_for(lambda events: raw.xlen(stream) == expected, timeout=30)
        registry.stop(strict=True)
        assert raw.xlen(stream) == expected

        start_registry(config)
        receiver.start()
        received = receiver.wait_for(arrived(pushed(image)))  # at least once
        assert set(summary(received)) == set(pushed(image))
        receiver.wait_for(lambda events: raw.xlen(stream) == 0, timeout=30)
    finally:
        redis_server.stop()


def test_with_redis_killed_workers_lose_nothing(
    start_registry, receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    """SIGKILL, no exit hook: the events the dead workers held are taken over once stale."""
    image, layout = image_layout
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        config = config_text(tmp_path / "data", receiver, redis_server.addr, timeout="1s")
        registry = start_registry(config)
        receiver.stop()
        push(Skopeo(tmp_path / "skopeo"), layout, registry.url.removeprefix("http://"))
        stream = "notifications::receiver::events"
        raw = redis_server.client()
        expected = sum(pushed(image).values())
        receiver.wait_for(lambda events: raw.xlen(stream) == expected, timeout=30)
        receiver.wait_for(lambda events: raw.xpending(stream, "registry")["pending"] > 0)
        workers = children(registry.proc.pid)
        registry.proc.kill()
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        registry.proc.wait(30)

        start_registry(config)
        receiver.start()
        received = receiver.wait_for(arrived(pushed(image)))
        assert set(summary(received)) == set(pushed(image))
        receiver.wait_for(lambda events: raw.xlen(stream) == 0, timeout=30)
    finally:
        redis_server.stop()


def test_a_short_redis_read_timeout_does_not_cut_off_waiting_for_events(
    start_registry, receiver: Receiver, image_layout, tmp_path: Path
) -> None:
    """``readtimeout: 10ms`` is shorter than the consumers' wait for new events, which must
    not end in timeouts and reconnects."""
    image, layout = image_layout
    redis_server = RedisServer(tmp_path / "redis").start()
    try:
        config = config_text(tmp_path / "data", receiver, redis_server.addr)
        registry = start_registry(config.replace("redis:\n", "redis:\n  readtimeout: 10ms\n"))
        time.sleep(2)  # consumers wait for events: past the read timeout, many times over
        push(Skopeo(tmp_path / "skopeo"), layout, registry.url.removeprefix("http://"))
        received = receiver.wait_for(arrived(pushed(image)))
        assert set(summary(received)) == set(pushed(image))
        assert "cannot read events from Redis" not in registry.log
    finally:
        redis_server.stop()
