"""The pull-through cache's pure parts: challenges, tokens, Go's scheduler state format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from distribution.config import ConfigError, parse
from distribution.digest import Digest
from distribution.proxy import check
from distribution.proxy.challenge import (
    Challenge,
    bearer,
    parse_challenges,
    parse_token,
    pull_scope,
    realm_allowed,
)
from distribution.proxy.schedule import BLOB, MANIFEST, Entry, decode, encode, interval

DIGEST = Digest.of(b"x")


def test_docker_hub_challenge() -> None:
    header = (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/alpine:pull"'
    )
    assert parse_challenges(header) == [
        Challenge(
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/alpine:pull",
            },
        )
    ]


def test_several_challenges_in_one_header() -> None:
    found = parse_challenges('Basic realm="r", Bearer realm="https://t/x", service=reg')
    assert [c.scheme for c in found] == ["basic", "bearer"]
    assert bearer(found) == Challenge("bearer", {"realm": "https://t/x", "service": "reg"})
    assert bearer(parse_challenges('Basic realm="Registry Realm"')) is None
    assert parse_challenges('Bearer realm="a \\"quoted\\" realm"')[0].params == {
        "realm": 'a "quoted" realm'
    }
    assert parse_challenges("") == []


@pytest.mark.parametrize(
    ("upstream", "realm", "allowed"),
    [
        ("https://registry-1.docker.io", "https://auth.docker.io/token", True),
        ("https://registry-1.docker.io", "http://auth.docker.io/token", False),
        ("https://registry.example.com", "https://registry.example.com:5001/token", True),
        ("https://registry.example.com", "http://registry.example.com/token", False),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", True),
        ("http://127.0.0.1:5000", "https://localhost/token", False),
        ("https://registry.example.com", "https://10.0.0.1/token", False),
        ("https://registry.example.com", "https://localhost/token", False),
        ("https://registry.example.com", "https://example.org/token", False),
        ("https://registry.example.co.uk", "https://evil.co.uk/token", False),
        ("https://registry.example.co.uk", "https://auth.example.co.uk/token", True),
        ("https://a.github.io", "https://b.github.io/token", False),
        ("https://registry.example.com", "ftp://registry.example.com/token", False),
        ("https://registry.example.com", "https://registry.example.com:x/token", False),
        ("https://registry.example.com", "/token", False),
    ],
)
def test_where_the_credentials_may_go(upstream: str, realm: str, allowed: bool) -> None:
    assert realm_allowed(upstream, realm) is allowed


def test_token_lifetime() -> None:
    token = parse_token({"token": "t", "expires_in": 300}, now=1000.0)
    assert token.value == "t" and token.valid(now=1290.0) and not token.valid(now=1296.0)
    assert parse_token({"access_token": "a"}, now=0.0).expires == 55.0  # 60 s by default
    assert parse_token({"token": "t", "expires_in": -1}, now=0.0).expires == 55.0
    for bad in ([], {}, {"token": ""}, {"token": 3}):
        with pytest.raises(ValueError):
            parse_token(bad)
    assert pull_scope("library/app") == "repository:library/app:pull"


def test_state_round_trips_in_gos_format() -> None:
    expiry = datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)
    entries = [Entry(f"a/b@{DIGEST}", expiry, BLOB), Entry(f"c@{DIGEST}", expiry, MANIFEST)]
    document = json.loads(encode(entries))
    assert document[f"a/b@{DIGEST}"] == {
        "Key": f"a/b@{DIGEST}",
        "ExpiryData": "2026-01-02T03:04:05.12Z",
        "EntryType": 0,
    }
    assert list(decode(encode(entries)).values()) == entries
    assert entries[0].repository == "a/b" and entries[0].digest == DIGEST


def test_reads_what_go_writes() -> None:
    go = {
        f"r@{DIGEST}": {
            "Key": f"r@{DIGEST}",
            "ExpiryData": "2026-11-22T21:03:04.123456789+01:00",
            "EntryType": 1,
        }
    }
    (entry,) = decode(json.dumps(go).encode()).values()
    assert entry.expiry == datetime(2026, 11, 22, 20, 3, 4, 123456, tzinfo=UTC)
    assert entry.kind == MANIFEST
    for bad in (
        b"[]",
        b'{"k": {"Key": "k"}}',
        b'{"k": {"Key": "k", "ExpiryData": "x", "EntryType": 0}}',
        b"not json",
    ):
        with pytest.raises(ValueError):
            decode(bad)


def test_entry_expires_after_ttl() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert Entry.make("r", DIGEST, BLOB, 2.5, now).expiry == now + timedelta(seconds=2.5)
    assert interval(2) == 1.0 and interval(30) == 3.0 and interval(7 * 24 * 3600) == 60.0


def test_config_check() -> None:
    check(parse("version: 0.1\nstorage: inmemory\n", {}))
    check(parse("version: 0.1\nstorage: inmemory\nproxy: {remoteurl: https://r.io}\n", {}))
    with pytest.raises(ConfigError) as raised:
        check(parse("version: 0.1\nstorage: inmemory\nproxy: {remoteurl: r.io}\n", {}))
    assert raised.value.key == "proxy.remoteurl"
