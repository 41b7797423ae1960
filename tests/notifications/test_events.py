"""Events and envelopes as pure functions, compared with what Go 2.8.2 posts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

from distribution.notifications import events

ORIGIN = events.Origin(
    events.RequestRecord("req-1", "10.1.2.3", "registry.example:5000", "GET", "skopeo/1.9.3"),
    None,
    events.SourceRecord("vm:5000", "instance-1"),
)
DIGEST = "sha256:" + "a" * 64


def test_blob_event_has_go_fields_in_go_order() -> None:
    event = events.blob_event(
        events.PUSH, ORIGIN, "probe/app", "application/octet-stream", DIGEST, 413, "http://x/b"
    )
    assert list(event) == ["id", "timestamp", "action", "target", "request", "actor", "source"]
    assert event["action"] == "push"
    assert event["target"] == {
        "mediaType": "application/octet-stream",
        "size": 413,
        "digest": DIGEST,
        "length": 413,
        "repository": "probe/app",
        "url": "http://x/b",
    }
    assert list(event["target"]) == ["mediaType", "size", "digest", "length", "repository", "url"]
    assert event["request"] == {
        "id": "req-1",
        "addr": "10.1.2.3",
        "host": "registry.example:5000",
        "method": "GET",
        "useragent": "skopeo/1.9.3",
    }
    assert event["actor"] == {}
    assert event["source"] == {"addr": "vm:5000", "instanceID": "instance-1"}


def test_mount_names_the_source_repository() -> None:
    event = events.blob_event(
        events.MOUNT, ORIGIN, "b", "application/octet-stream", DIGEST, 5, "u", from_repository="a"
    )
    assert event["target"]["fromRepository"] == "a"
    assert list(event["target"]).index("fromRepository") < list(event["target"]).index("url")


def test_manifest_event_carries_tag_and_references_only_when_given() -> None:
    media_type = "application/vnd.oci.image.manifest.v1+json"
    plain = events.manifest_event(events.PULL, ORIGIN, "r", media_type, DIGEST, 862, "u")
    assert "tag" not in plain["target"] and "references" not in plain["target"]
    refs = [{"mediaType": "m", "digest": DIGEST, "size": 1}]
    tagged = events.manifest_event(
        events.PUSH, ORIGIN, "r", media_type, DIGEST, 862, "u", tag="v1", references=refs
    )
    assert tagged["target"]["tag"] == "v1"
    assert tagged["target"]["references"] == refs
    assert tagged["target"]["length"] == tagged["target"]["size"] == 862


def test_delete_events_carry_only_repository_and_digest_or_tag() -> None:
    by_digest = events.delete_event(ORIGIN, "r", digest=DIGEST)
    assert by_digest["action"] == "delete"
    assert by_digest["target"] == {"digest": DIGEST, "repository": "r"}
    assert events.delete_event(ORIGIN, "r", tag="v1")["target"] == {"repository": "r", "tag": "v1"}


def test_request_record_always_has_id_method_and_useragent() -> None:
    record = events.RequestRecord("", "", "", "PUT", "")
    assert record.to_dict() == {"id": "", "method": "PUT", "useragent": ""}


def test_actor_is_the_user_else_the_basic_auth_user() -> None:
    basic = SimpleNamespace(type="basic", username="bob")
    bearer = SimpleNamespace(type="bearer", username=None)
    assert events.actor_name("alice", basic) == "alice"
    assert events.actor_name(None, basic) == "bob"
    assert events.actor_name(None, bearer) is None
    assert events.actor_name(None) is None
    named = events.Origin(ORIGIN.request, "alice", ORIGIN.source)
    assert events.delete_event(named, "r", tag="t")["actor"] == {"name": "alice"}


def test_source_is_hostname_with_the_configured_port() -> None:
    assert events.source_record(":5000", "vm").addr == "vm:5000"
    assert events.source_record("127.0.0.1:5001", "vm").addr == "vm:5001"
    assert events.source_record("/run/registry.sock", "vm").addr == "vm"
    first, second = events.source_record(":5000", "vm"), events.source_record(":5000", "vm")
    assert first.instance_id != second.instance_id


def test_timestamps_are_rfc3339_utc_without_trailing_zeros() -> None:
    moment = datetime(2026, 11, 22, 20, 34, 50, 517900, tzinfo=UTC)
    assert events.timestamp(moment) == "2026-11-22T20:34:50.5179Z"
    assert events.timestamp(moment.replace(microsecond=0)) == "2026-11-22T20:34:50Z"
    local = datetime(2026, 11, 22, 21, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert events.timestamp(local) == "2026-11-22T20:00:00Z"


def test_envelope_is_go_indented_json_of_events() -> None:
    event = events.delete_event(ORIGIN, "r", tag="t")
    body = events.envelope([event])
    assert json.loads(body) == {"events": [event]}
    assert body.startswith(b'{\n   "events": [\n      {')
    assert events.EVENTS_MEDIA_TYPE == "application/vnd.docker.distribution.events.v2+json"


def test_ignore_rules_match_media_type_or_action() -> None:
    layer = events.blob_event(events.PULL, ORIGIN, "r", "application/octet-stream", DIGEST, 1, "u")
    deleted = events.delete_event(ORIGIN, "r", digest=DIGEST)
    assert events.ignored(layer, ["application/octet-stream"], [])
    assert not events.ignored(layer, ["application/vnd.oci.image.manifest.v1+json"], [])
    assert events.ignored(layer, [], ["pull"])
    assert not events.ignored(deleted, ["application/octet-stream"], ["pull"])
    assert events.ignored(deleted, [], ["delete"])


def test_references_are_config_and_layers_or_child_manifests() -> None:
    config = {"mediaType": "c", "digest": DIGEST, "size": 2, "data": "e30="}
    layer = {"mediaType": "l", "digest": DIGEST, "size": 3, "urls": ["http://u"]}
    image = {"schemaVersion": 2, "config": config, "layers": [layer]}
    assert events.references(image) == [
        {"mediaType": "c", "digest": DIGEST, "size": 2},
        {"mediaType": "l", "digest": DIGEST, "size": 3, "urls": ["http://u"]},
    ]
    child = {"mediaType": "m", "digest": DIGEST, "size": 4, "platform": {"os": "linux"}}
    assert events.references({"schemaVersion": 2, "manifests": [child]}) == [child]
    assert events.references({}) == []
