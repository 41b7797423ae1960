"""The blueprints' hooks, through Flask's test client, delivered to a real HTTP receiver."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from distribution import metrics, notifications
from distribution.notifications.dispatcher import Dispatcher
from tests.conftest import make_app
from tests.notifications.receiver import Receiver, summary
from tests.observability.test_metrics import scrape, value

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCTET = "application/octet-stream"


def config(receiver: Receiver, endpoint: str = "", events: str = "") -> str:
    return f"""
version: 0.1
storage:
  inmemory: {{}}
  delete: {{enabled: true}}
http:
  addr: :5000
  secret: test-secret
notifications:
  {events}
  endpoints:
    - name: test
      url: {receiver.url}
      headers:
        Authorization: [Bearer token]
        X-Several: [one, two]
      timeout: 10s
      threshold: 2
      backoff: 100ms
      {endpoint}
"""


@pytest.fixture
def make(receiver: Receiver) -> Iterator:
    apps: list[Flask] = []

    def build(endpoint: str = "", events: str = "") -> FlaskClient:
        app = make_app(config(receiver, endpoint, events))
        apps.append(app)
        return app.test_client()

    yield build
    for app in apps:
        dispatcher: Dispatcher = app.extensions[notifications.EXTENSION]
        dispatcher.stop()


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(client: FlaskClient, name: str, tag: str) -> tuple[str, str, bytes]:
    """A config blob, then an OCI manifest by tag: ``(config digest, manifest digest, body)``."""
    blob = b'{"architecture":"amd64","os":"linux"}'
    response = client.post(f"/v2/{name}/blobs/uploads/?digest={digest(blob)}", data=blob)
    assert response.status_code == 201
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(blob),
                "size": len(blob),
            },
            "layers": [],
        }
    ).encode()
    response = client.put(
        f"/v2/{name}/manifests/{tag}", data=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201
    return digest(blob), digest(manifest), manifest


def test_push_pull_delete_give_gos_events(make, receiver: Receiver) -> None:
    client = make()
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    headers = {"User-Agent": "tester/1", "X-Forwarded-For": "10.9.8.7", "Authorization": auth}
    blob, manifest, body = push_image(client, "team/app", "v1")
    assert (
        client.get(
            "/v2/team/app/manifests/v1", headers={**headers, "Accept": OCI_MANIFEST}
        ).status_code
        == 200
    )
    assert client.head(f"/v2/team/app/blobs/{blob}").status_code == 200
    assert (
        client.post(f"/v2/team/other/blobs/uploads/?mount={blob}&from=team/app").status_code == 201
    )
    assert client.delete(f"/v2/team/app/blobs/{blob}").status_code == 202
    assert client.delete(f"/v2/team/app/manifests/{manifest}").status_code == 202

    received = receiver.wait_for(lambda events: len(events) >= 8)
    assert summary(received) == [
        ("push", "team/app", blob),
        ("push", "team/app", manifest),
        ("pull", "team/app", manifest),
        ("pull", "team/app", blob),
        ("mount", "team/other", blob),
        ("delete", "team/app", blob),
        ("delete", "team/app", manifest),
        ("delete", "team/app", "v1"),
    ]
    pushed, pulled, mounted = received[1], received[2], received[4]
    assert pushed["target"] == {
        "mediaType": OCI_MANIFEST,
        "size": len(body),
        "digest": manifest,
        "length": len(body),
        "repository": "team/app",
        "url": f"http://localhost/v2/team/app/manifests/{manifest}",
        "tag": "v1",
    }
    assert received[0]["target"]["mediaType"] == OCTET
    assert received[0]["target"]["url"] == f"http://localhost/v2/team/app/blobs/{blob}"
    assert pulled["request"]["addr"] == "10.9.8.7"
    assert pulled["request"]["useragent"] == "tester/1"
    assert pulled["request"]["method"] == "GET"
    assert pulled["actor"] == {"name": "alice"}
    assert pushed["actor"] == {}
    assert pushed["request"]["method"] == "PUT"
    assert mounted["target"]["fromRepository"] == "team/app"
    assert received[7]["target"] == {"repository": "team/app", "tag": "v1"}
    assert {e["source"]["addr"].rpartition(":")[2] for e in received} == {"5000"}
    assert len({e["id"] for e in received}) == 8

    post = receiver.posts[0]
    assert post.path == "/events"
    assert post.header("Content-Type") == ["application/vnd.docker.distribution.events.v2+json"]
    assert post.header("Authorization") == ["Bearer token"]
    assert post.header("X-Several") == ["one", "two"]
    assert all(len(p.body["events"]) == 1 for p in receiver.posts)


def test_request_id_is_the_logged_one(make, receiver: Receiver) -> None:
    client = make()
    push_image(client, "r", "t")
    received = receiver.wait_for(lambda events: len(events) >= 2)
    ids = [event["request"]["id"] for event in received]
    assert all(ids) and ids[0] != ids[1]


def test_tag_delete_and_failed_requests(make, receiver: Receiver) -> None:
    client = make()
    config, _, _ = push_image(client, "r", "t")
    assert client.get("/v2/r/manifests/missing").status_code == 404
    assert client.get(f"/v2/r/blobs/{digest(b'missing')}").status_code == 404
    assert client.delete("/v2/r/manifests/t").status_code == 202
    assert client.get(f"/v2/r/blobs/{config}").status_code == 200
    # Events arrive in order: one for a failed request would come before the last pull.
    received = receiver.wait_for(lambda events: len(events) >= 4)
    assert summary(received)[2:] == [("delete", "r", "t"), ("pull", "r", config)]


def test_ignored_media_types_and_actions_are_not_sent(make, receiver: Receiver) -> None:
    client = make(
        endpoint="ignoredmediatypes: [application/octet-stream]\n      ignore: {actions: [pull]}"
    )
    _, manifest, _ = push_image(client, "r", "t")
    client.get("/v2/r/manifests/t", headers={"Accept": OCI_MANIFEST})
    client.delete("/v2/r/manifests/t")
    received = receiver.wait_for(lambda events: len(events) >= 2)
    assert summary(received) == [("push", "r", manifest), ("delete", "r", "t")]


def test_references_with_includereferences(make, receiver: Receiver) -> None:
    client = make(events="events: {includereferences: true}")
    blob, _, _ = push_image(client, "r", "t")
    received = receiver.wait_for(lambda events: len(events) >= 2)
    assert received[1]["target"]["references"] == [
        {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob, "size": 37}
    ]
    assert "references" not in received[0]["target"]


def test_disabled_endpoints_get_no_dispatcher(receiver: Receiver) -> None:
    app = make_app(config(receiver, endpoint="disabled: true"))
    assert notifications.EXTENSION not in app.extensions
    assert make_app().extensions.get(notifications.EXTENSION) is None


def test_actor_is_the_authenticated_user(receiver: Receiver) -> None:
    text = config(receiver).replace(
        "http:\n", "auth:\n  silly: {realm: test, service: test}\nhttp:\n", 1
    )
    app = make_app(text)
    try:
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = "Bearer anything"
        push_image(client, "r", "t")
        received = receiver.wait_for(lambda events: len(events) >= 2)
        assert [event["actor"] for event in received] == [{"name": "silly"}] * 2
    finally:
        app.extensions[notifications.EXTENSION].stop()


def test_gos_notification_metrics(make, receiver: Receiver) -> None:
    """``registry_notifications_*`` as Go names and labels them: two events queued, a refused
    answer (a failure, its status counted), then both delivered."""

    def count(name: str, **labels: str) -> float:
        return value(scrape(), f"registry_notifications_{name}", endpoint="test", **labels)

    def wait_until(check) -> None:
        deadline = time.monotonic() + 30
        while not check():
            assert time.monotonic() < deadline
            time.sleep(0.05)

    client = make()
    metrics.record(True)  # as an app whose debug server exposes metrics sets it
    events = {kind: count("events_total", type=kind) for kind in ("Events", "Successes")}
    failures = count("events_total", type="Failures")
    refused = count("status_total", code="500 Internal Server Error")
    accepted = count("status_total", code="200 OK")
    pending = count("pending_total")
    receiver.status = 500
    push_image(client, "team/metrics", "v1")
    wait_until(lambda: count("events_total", type="Failures") > failures)
    assert count("status_total", code="500 Internal Server Error") > refused
    assert count("pending_total") >= pending + 1
    receiver.status = 200
    wait_until(lambda: count("events_total", type="Successes") == events["Successes"] + 2)
    assert count("events_total", type="Events") == events["Events"] + 2
    assert count("status_total", code="200 OK") == accepted + 2
    assert count("pending_total") == pending
    metrics.record(False)
