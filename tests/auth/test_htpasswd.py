"""htpasswd parsing, reload on change, the credential cache and the start-up check."""

from __future__ import annotations

import base64
import logging
import os
import time
from pathlib import Path

import bcrypt
import pytest
from werkzeug.datastructures import Headers

from distribution.auth import Unauthenticated
from distribution.auth import htpasswd as module
from distribution.auth.htpasswd import HtpasswdController, basic_credentials, parse
from distribution.config import ConfigError


def hashed(password: str, prefix: bytes = b"$2b$") -> bytes:
    value = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4))
    return prefix + value[4:]


def write(path: Path, *lines: bytes) -> None:
    """Write and move the mtime on, so a rewrite within one clock tick is still seen."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_bytes(b"\n".join(lines) + b"\n")
    stat = path.stat()
    if stat.st_mtime_ns <= before:
        os.utime(path, ns=(stat.st_atime_ns, before + 1_000_000))


def basic(user: str, password: str) -> Headers:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return Headers({"Authorization": f"Basic {token}"})


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The real ``bcrypt.checkpw``, with each hash it was asked about recorded."""
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed_password: bytes) -> bool:
        calls.append(hashed_password)
        return real(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    return calls


def test_parse_keeps_bcrypt_entries_only():
    content = b"\n".join(
        [
            b"# comment",
            b"",
            b"alice:" + hashed("a", b"$2y$"),
            b"bob:" + hashed("b", b"$2a$"),
            b"carol:" + hashed("c", b"$2b$"),
            b"dave:{SHA}fDYHuOYbzxlE6ehQOmYPIfS28/E=",
            b"erin:$apr1$abc$defghijklmnopqrstuvwx",
            b"frank:plaintext",
            b"no colon here",
            b":" + hashed("x"),
            b"gina:$2y$10$tooshort",
            b"  henry:" + hashed("h") + b"  ",
            b"ivan:" + hashed("i", b"$2y$").replace(b"$04$", b"$32$"),
            b"judy:" + hashed("j", b"$2y$").replace(b"$04$", b"$03$"),
            b"kim:" + hashed("k", b"$2y$").replace(b"$04$", b"$31$"),
        ]
    )
    users, warnings = parse(content)
    assert sorted(users) == ["alice", "bob", "carol", "henry", "kim"]
    assert [w.split(":")[0] for w in warnings] == [
        "line 6",
        "line 7",
        "line 8",
        "line 9",
        "line 10",
        "line 11",
        "line 13",
        "line 14",
    ]
    assert "'dave' has no bcrypt hash" in warnings[0]
    assert "'ivan' has bcrypt cost 32, outside 4 to 31" in warnings[6]


def test_all_three_bcrypt_prefixes_verify(tmp_path):
    path = tmp_path / "htpasswd"
    write(
        path,
        *(f"u{i}:".encode() + hashed("pw", p) for i, p in enumerate([b"$2y$", b"$2a$", b"$2b$"])),
    )
    controller = HtpasswdController("r", str(path))
    for i in range(3):
        assert controller.authorized(basic(f"u{i}", "pw"), []).user == f"u{i}"


def test_non_bcrypt_entries_never_authenticate_and_are_warned_with_line(tmp_path, caplog):
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("pw"), b"dave:plain")
    controller = HtpasswdController("r", str(path))
    with (
        caplog.at_level(logging.WARNING, logger="distribution.auth.htpasswd"),
        pytest.raises(Unauthenticated),
    ):
        controller.authorized(basic("dave", "plain"), [])
    assert "line 2: user 'dave' has no bcrypt hash" in caplog.text


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!!",  # not base64
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b":password-only").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # user not UTF-8
        "Basic",
        "Bearer abc",
        "Digest username=alice",
        "Basic " + "QUFB" * 10000,  # oversized: 40 KB
    ],
)
def test_malformed_basic_headers(header):
    assert basic_credentials(Headers({"Authorization": header})) is None


def test_wrong_password_and_unknown_user_both_run_bcrypt(tmp_path, bcrypt_calls):
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("right"))
    controller = HtpasswdController("My Realm", str(path))
    for user, password in [("alice", "wrong"), ("mallory", "anything")]:
        with pytest.raises(Unauthenticated) as caught:
            controller.authorized(basic(user, password), [])
        assert caught.value.challenge == 'Basic realm="My Realm"'
        assert caught.value.user == user
    # alice's hash, then the first refusal timed a check of the decoy; then the decoy again:
    # the unknown user was checked against a hash of the same cost, not skipped.
    alice, decoy, unknown = bcrypt_calls
    assert (unknown, alice[:7]) == (decoy, decoy[:7]) and alice != decoy


def test_the_decoy_costs_the_highest_cost_up_to_a_cap(tmp_path, bcrypt_calls, monkeypatch):
    """A decoy at the file's cost 31 took hours to make; it stops at ``DECOY_MAX_COST``."""
    monkeypatch.setattr(module, "DECOY_MAX_COST", 5)
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("pw").replace(b"$04$", b"$31$"))  # never checked here
    controller = HtpasswdController("r", str(path))
    _refused(controller, "nobody")
    assert [call[:7] for call in bcrypt_calls] == [b"$2b$05$", b"$2b$05$"]


def test_every_refusal_lasts_as_long_as_a_check_at_the_highest_cost(tmp_path):
    """A cheap hash listed first gave both its own user and unknown users away by timing."""
    path = tmp_path / "htpasswd"
    write(
        path,
        b"cheap:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(4)),
        b"costly:" + bcrypt.hashpw(b"pw", bcrypt.gensalt(11)),
    )
    costly = bcrypt.hashpw(b"pw", bcrypt.gensalt(11))
    check_seconds = min(_seconds(lambda: bcrypt.checkpw(b"x", costly)) for _ in range(3))
    controller = HtpasswdController("realm", str(path))
    for user in ("cheap", "nobody", "costly"):
        refusal = _seconds(lambda: _refused(controller, user))  # noqa: B023
        assert refusal >= 0.5 * check_seconds, (user, refusal, check_seconds)


def _seconds(call) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def _refused(controller: HtpasswdController, user: str) -> None:
    with pytest.raises(Unauthenticated):
        controller.authorized(basic(user, "wrong"), [])


def test_verified_credentials_are_cached_until_the_ttl(tmp_path, bcrypt_calls):
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("pw"))
    now = [1000.0]
    controller = HtpasswdController("r", str(path), cache_ttl=30, clock=lambda: now[0])
    for _ in range(20):
        controller.authorized(basic("alice", "pw"), [])
    assert len(bcrypt_calls) == 1  # alice's: a login never waits for the refusals' decoy
    with pytest.raises(Unauthenticated):  # a wrong password is never served from the cache
        controller.authorized(basic("alice", "other"), [])
    assert len(bcrypt_calls) == 3  # alice's, then the decoy's timing on the first refusal
    now[0] += 31
    controller.authorized(basic("alice", "pw"), [])
    assert len(bcrypt_calls) == 4


def test_reload_on_change_drops_cached_credentials(tmp_path):
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("old"))
    controller = HtpasswdController("r", str(path))
    controller.authorized(basic("alice", "old"), [])
    write(path, b"alice:" + hashed("new"), b"bob:" + hashed("bob"))
    with pytest.raises(Unauthenticated):
        controller.authorized(basic("alice", "old"), [])
    assert controller.authorized(basic("alice", "new"), []).user == "alice"
    assert controller.authorized(basic("bob", "bob"), []).user == "bob"
    write(path, b"bob:" + hashed("bob"))
    with pytest.raises(Unauthenticated):
        controller.authorized(basic("alice", "new"), [])


def test_vanished_file_refuses_everyone_until_it_is_back(tmp_path, caplog):
    path = tmp_path / "htpasswd"
    write(path, b"alice:" + hashed("pw"))
    controller = HtpasswdController("r", str(path))
    controller.authorized(basic("alice", "pw"), [])
    path.unlink()
    with caplog.at_level(logging.ERROR, logger="distribution.auth.htpasswd"):
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                controller.authorized(basic("alice", "pw"), [])
    assert caplog.text.count("refusing every login") == 1
    write(path, b"alice:" + hashed("pw"))
    assert controller.authorized(basic("alice", "pw"), []).user == "alice"


def test_long_passwords_are_compared_on_bcrypts_72_bytes(tmp_path):
    path = tmp_path / "htpasswd"
    password = "p" * 80
    write(path, b"alice:" + bcrypt.hashpw(password.encode()[:72], bcrypt.gensalt(4)))
    controller = HtpasswdController("r", str(path))
    assert controller.authorized(basic("alice", password), []).user == "alice"


def test_check_creates_a_missing_file_with_a_logged_password(tmp_path, caplog):
    path = tmp_path / "auth" / "htpasswd"
    with caplog.at_level(logging.WARNING, logger="distribution.auth.htpasswd"):
        module.check({"realm": "r", "path": str(path)})
    record = next(r for r in caplog.records if "provisioning" in r.getMessage())
    fields = record.fields
    assert fields["user"] == "docker" and oct(path.stat().st_mode & 0o777) == "0o600"
    controller = HtpasswdController("r", str(path))
    assert controller.authorized(basic("docker", fields["password"]), []).user == "docker"
    caplog.clear()
    module.check({"realm": "r", "path": str(path)})  # an existing file is left alone
    assert "provisioning" not in caplog.text


@pytest.mark.parametrize(
    ("parameters", "key"),
    [
        ({"path": "/x"}, "auth.htpasswd.realm"),
        ({"realm": "", "path": "/x"}, "auth.htpasswd.realm"),
        ({"realm": "r"}, "auth.htpasswd.path"),
        ({"realm": "r", "path": ["/x"]}, "auth.htpasswd.path"),
    ],
)
def test_bad_options_name_their_key(parameters, key):
    with pytest.raises(ConfigError) as caught:
        module.check(parameters)
    assert caught.value.key == key


def test_unreadable_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        module.check({"realm": "r", "path": str(tmp_path)})  # a directory
    assert caught.value.key == "auth.htpasswd.path"
