"""The ``_state`` token, checked against tokens the Go registry (Debian 2.8.2) issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from distribution import errors
from distribution.uploadstate import UploadState, format_time, pack, parse_time, resume, unpack

GO_SECRET = "bench-not-a-secret"
GO_UUID = "a9a01cbf-70ca-4a8b-bb71-782d72cc9633"
#: From ``GET`` upload status (StartedAt read back from the ``startedat`` file).
GO_STATUS_TOKEN = (
    "qskQnjVJhN9cEU9MqfuSA_lz7fCM8hz3e7G8RDi0H9h7Ik5hbWUiOiJmb28vYmFyIiwiVVVJRCI6ImE5YTAxY2JmLTcw"
    "Y2EtNGE4Yi1iYjcxLTc4MmQ3MmNjOTYzMyIsIk9mZnNldCI6MCwiU3RhcnRlZEF0IjoiMjAyNi0xMS0yMlQxMzozMzo0"
    "NVoifQ=="
)
#: From a ``PATCH`` of 5 bytes.
GO_PATCH_TOKEN = (
    "lWmyvAxpX-wTlwf03l1l-Mwt0TM4apwmIaYAU6UUFJV7Ik5hbWUiOiJmb28vYmFyIiwiVVVJRCI6ImE5YTAxY2JmLTcw"
    "Y2EtNGE4Yi1iYjcxLTc4MmQ3MmNjOTYzMyIsIk9mZnNldCI6NSwiU3RhcnRlZEF0IjoiMjAyNi0xMS0yMlQxMzozMzo0"
    "NVoifQ=="
)
#: From ``POST``: StartedAt has Go's nanoseconds, trailing zero trimmed.
GO_POST_TOKEN = (
    "e3qqSaopRgKziD0Cj1lUVX9A_8-8BPYDMOrLvQg2B0R7Ik5hbWUiOiJmb28vYmFyIiwiVVVJRCI6ImE5YTAxY2JmLTcw"
    "Y2EtNGE4Yi1iYjcxLTc4MmQ3MmNjOTYzMyIsIk9mZnNldCI6MCwiU3RhcnRlZEF0IjoiMjAyNi0xMS0yMlQxMzozMzo0"
    "NS45MDc5MzMzMloifQ=="
)
STARTED = datetime(2026, 11, 22, 13, 33, 45, tzinfo=UTC)
STAMP = "2026-11-22T13:33:45Z"


def test_packs_byte_for_byte_as_go() -> None:
    assert pack(UploadState("foo/bar", GO_UUID, 0, STARTED), GO_SECRET) == GO_STATUS_TOKEN
    assert pack(UploadState("foo/bar", GO_UUID, 5, STARTED), GO_SECRET) == GO_PATCH_TOKEN


def test_unpacks_gos_tokens() -> None:
    assert unpack(GO_PATCH_TOKEN, GO_SECRET) == UploadState("foo/bar", GO_UUID, 5, STARTED)
    state = unpack(GO_POST_TOKEN, GO_SECRET)
    assert state.started_at == STARTED.replace(microsecond=907933)
    assert state.offset == 0


def test_round_trip_keeps_microseconds() -> None:
    state = UploadState("a/b", GO_UUID, 123, datetime(2024, 1, 2, 3, 4, 5, 120000, tzinfo=UTC))
    token = pack(state, "s")
    assert unpack(token, "s") == state
    assert b'"StartedAt":"2024-01-02T03:04:05.12Z"' in base64.urlsafe_b64decode(token)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 500000, tzinfo=UTC), "2026-01-02T03:04:05.5Z"),
        (datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC), "2026-01-02T03:04:05.000001Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T03:04:05Z",
        ),
    ],
)
def test_format_time_is_rfc3339nano_in_utc(moment: datetime, text: str) -> None:
    assert format_time(moment) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-22T13:33:45Z", STARTED),
        ("2026-11-22T13:33:45.90793332Z", STARTED.replace(microsecond=907933)),
        ("2026-11-22T13:33:45.792040304Z", STARTED.replace(microsecond=792040)),
        ("2026-11-22T15:33:45+02:00", STARTED),
        ("2026-11-22T08:03:45.5-05:30", STARTED.replace(microsecond=500000)),
    ],
)
def test_parse_time_accepts_any_rfc3339_offset(text: str, moment: datetime) -> None:
    assert parse_time(text) == moment


@pytest.mark.parametrize(
    "text", ["2026-11-22", "2026-11-22 13:33:45Z", "2026-11-22T13:33:45", "2026-13-22T13:33:45Z"]
)
def test_parse_time_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_time(text)


def _tampered(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-3] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode()


def _json(**fields: object) -> str:
    return _signed(json.dumps(fields).encode())


def _signed(message: bytes, secret: str = GO_SECRET) -> str:
    mac = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac + message).decode()


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not base64!",
        "é",
        GO_PATCH_TOKEN.rstrip("="),
        GO_PATCH_TOKEN[:40],
        _tampered(GO_PATCH_TOKEN),
        pack(UploadState("foo/bar", GO_UUID, 5, STARTED), "another secret"),
        _signed(b"not json"),
        _signed(b"[1, 2]"),
        _signed(b'{"Name": "foo/bar", "UUID": "u", "Offset": 1}'),
        _json(Name="foo/bar", UUID="u", Offset="1", StartedAt=STAMP),
        _json(Name="foo/bar", UUID="u", Offset=-1, StartedAt=STAMP),
        _json(Name="foo/bar", UUID="u", Offset=1.5, StartedAt=STAMP),
        _json(Name=7, UUID="u", Offset=1, StartedAt=STAMP),
        _signed(b'{"Name": "foo/bar", "UUID": "u", "Offset": 1, "StartedAt": "yesterday"}'),
        _signed(b"\xff\xfe"),
    ],
)
def test_bad_tokens_are_blob_upload_invalid(token: str) -> None:
    with pytest.raises(errors.BlobUploadInvalid):
        unpack(token, GO_SECRET)


def test_signed_json_with_extra_keys_is_accepted_as_go_does() -> None:
    message = {
        "Name": "a",
        "UUID": "u",
        "Offset": 3,
        "StartedAt": "2026-11-22T13:33:45Z",
        "DigestAlgorithm": "sha512",
    }
    state = unpack(_signed(json.dumps(message).encode()), GO_SECRET)
    assert state == UploadState("a", "u", 3, STARTED)


def test_resume_checks_repository_and_upload() -> None:
    assert resume(GO_PATCH_TOKEN, GO_SECRET, "foo/bar", GO_UUID).offset == 5
    for token, name, uuid in [
        (None, "foo/bar", GO_UUID),
        ("", "foo/bar", GO_UUID),
        (GO_PATCH_TOKEN, "foo/other", GO_UUID),
        (GO_PATCH_TOKEN, "foo", GO_UUID),
        (GO_PATCH_TOKEN, "foo/bar", "0b5fdb4e-0f4b-4b48-9b5c-0b0a4b1c1a11"),
    ]:
        with pytest.raises(errors.BlobUploadInvalid) as info:
            resume(token, GO_SECRET, name, uuid)
        assert info.value.status == 404
