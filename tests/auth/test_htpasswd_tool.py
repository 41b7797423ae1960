"""The ``htpasswd`` command against Apache's own (Debian's apache2-utils): same flags, same
messages and exit statuses, and each one reads the other's files."""

from __future__ import annotations

import io
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest

from distribution.auth import htpasswd_tool
from distribution.auth.htpasswd import HtpasswdController


@pytest.fixture(scope="module")
def apache() -> str:
    found = shutil.which("htpasswd", path="/usr/bin:/usr/sbin")
    assert found, "Apache's htpasswd (Debian package apache2-utils) is needed"
    return found


def ours(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    status = htpasswd_tool.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def theirs(apache: str, *args: str, stdin: str = "") -> tuple[int, str, str]:
    done = subprocess.run([apache, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout, done.stderr


def entry(text: str, user: str) -> bytes:
    for line in text.splitlines():
        name, _, hashed = line.partition(":")
        if name == user:
            return hashed.encode()
    raise AssertionError(f"no entry for {user} in {text!r}")


def test_guide_command_prints_what_apache_prints(capsys, apache) -> None:
    status, out, err = ours(capsys, "-Bbn", "testuser", "testpassword")
    apache_status, apache_out, _ = theirs(apache, "-Bbn", "testuser", "testpassword")
    assert (status, err) == (apache_status, "") == (0, "")
    # One entry and the blank line after it, a $2y$ hash of cost 5: Apache's output, byte-shaped.
    assert out.endswith("\n\n") and apache_out.endswith("\n\n")
    assert out.split("$")[:3] == apache_out.split("$")[:3] == ["testuser:", "2y", "05"]
    assert bcrypt.checkpw(b"testpassword", entry(out, "testuser"))


@pytest.mark.parametrize(
    "flags", [["-BbnC", "4"], ["-Bbn", "-C", "4"], ["-Bbn", "-C4"], ["-nbB", "-C", "4"]]
)
def test_cost_forms(capsys, flags: list[str]) -> None:
    status, out, _ = ours(capsys, *flags, "u", "p")
    assert status == 0 and entry(out, "u").startswith(b"$2y$04$")


def test_file_lifecycle_interoperates_with_apache(capsys, apache, tmp_path: Path) -> None:
    path = str(tmp_path / "htpasswd")
    assert ours(capsys, "-bBc", path, "alice", "a-pass") == (
        0,
        "",
        "Adding password for user alice\n",
    )
    assert stat.S_IMODE((tmp_path / "htpasswd").stat().st_mode) == 0o644  # Apache's, umask 022
    assert theirs(apache, "-bB", path, "bob", "b-pass")[0] == 0
    assert ours(capsys, "-bB", path, "alice", "new")[2] == "Updating password for user alice\n"
    # Each verifies the other's entries.
    assert theirs(apache, "-bv", path, "alice", "new")[0] == 0
    assert ours(capsys, "-bv", path, "bob", "b-pass") == (0, "", "Password for user bob correct.\n")
    assert ours(capsys, "-bv", path, "bob", "wrong") == (3, "", "password verification failed\n")
    assert ours(capsys, "-bv", path, "carol", "x") == (6, "", "User carol not found\n")
    assert ours(capsys, "-D", path, "bob") == (0, "", "Deleting password for user bob\n")
    assert ours(capsys, "-D", path, "bob") == (0, "", "User bob not found\n")
    assert theirs(apache, "-bv", path, "bob", "b-pass")[0] == 6
    # The registry reads the result.
    controller = HtpasswdController("realm", path)
    assert controller.authenticate("alice", b"new")
    assert not controller.authenticate("bob", b"b-pass")


def test_update_keeps_comments_order_and_other_users(capsys, tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    other = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()
    path.write_text(f"# team\nzed:{other}\n\nalice:{other}\nyan:{other}")
    path.chmod(0o640)
    assert ours(capsys, "-b", str(path), "alice", "new")[0] == 0
    lines = path.read_text().splitlines()
    assert lines[:3] == ["# team", f"zed:{other}", ""] and lines[4] == f"yan:{other}"
    assert bcrypt.checkpw(b"new", entry(lines[3], "alice"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_password_from_stdin(capsys, monkeypatch, tmp_path: Path) -> None:
    path = str(tmp_path / "htpasswd")
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert ours(capsys, "-ciB", path, "u")[0] == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin\n"))
    assert ours(capsys, "-iv", path, "u")[0] == 0


def test_prompted_passwords_must_match(capsys, monkeypatch) -> None:
    answers = iter(["one", "two"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    assert ours(capsys, "-n", "u") == (3, "", "htpasswd: password verification error\n")


def test_long_password_is_cut_with_a_warning(capsys) -> None:
    status, out, err = ours(capsys, "-bn", "u", "p" * 80)
    assert status == 0 and "first 72 bytes" in err
    assert bcrypt.checkpw(b"p" * 72, entry(out, "u"))


#: Arguments, our status and message, and Apache's status (None where ours differs on purpose:
#: a clearer code for a bad cost, a refusal where Apache would write an MD5 entry).
ERRORS = [
    (["-Bbn", "-C", "3", "u", "p"], 2, "htpasswd: bcrypt cost must be 4 to 17, not 3", None),
    (["-Bbn", "-C", "x", "u", "p"], 2, "htpasswd: argument to -C must be a positive integer", 2),
    (["-cn", "u"], 2, "htpasswd: only one of -c -n -v -D may be specified", 2),
    (["-BbnDv", "u", "p"], 2, "htpasswd: only one of -c -n -v -D may be specified", 2),
    (["-Bbn", "a:b", "p"], 6, "htpasswd: username contains illegal character ':'", 6),
    (["-bB", "/nonexistent/file", "u", "p"], 1, "htpasswd: cannot modify file", 1),
    (["-x", "f", "u"], 2, "htpasswd: illegal option -- x", 2),
    (["-Bb"], 2, "Usage:", 2),
    (["-bmn", "u", "p"], 2, "htpasswd: -m makes MD5 entries, which the registry refuses", None),
    (["-bn", "u", "p" * 256], 5, "htpasswd: password too long (> 255)", 5),
]


@pytest.mark.parametrize(("args", "status", "message", "apache_status"), ERRORS)
def test_errors_as_apache(
    capsys, apache, args: list[str], status: int, message: str, apache_status: int | None
) -> None:
    got_status, out, err = ours(capsys, *args)
    assert (got_status, out) == (status, "")
    assert err.startswith(message), err
    if apache_status is not None:
        assert theirs(apache, *args)[0] == apache_status


def test_invalid_file_is_left_alone(capsys, tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    path.write_text("not an entry\n")
    status, _, err = ours(capsys, "-bB", str(path), "u", "p")
    assert status == 7 and "does not appear to be a valid htpasswd file" in err
    assert path.read_text() == "not an entry\n"


def test_entry_apache_made_with_md5_does_not_verify(capsys, apache, tmp_path: Path) -> None:
    path = str(tmp_path / "htpasswd")
    assert theirs(apache, "-cbm", path, "old", "pass")[0] == 0
    status, _, err = ours(capsys, "-bv", path, "old", "pass")
    assert status == 3 and "has no bcrypt hash" in err


def test_registry_command_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "distribution", "htpasswd", "-Bbn", "testuser", "testpassword"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert bcrypt.checkpw(b"testpassword", entry(done.stdout, "testuser"))
