"""``registry access check`` and the start-up check of ``registry serve``, as processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.access.example import RULES, section, write_htpasswd
from tests.test_config_cli import PREFIX, error_line, serve

REPO = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, access: str, auth: str | None = None) -> Path:
    htpasswd = write_htpasswd(tmp_path / "htpasswd", ("alice",))
    auth = auth or f"htpasswd: {{realm: r, path: {htpasswd}}}"
    path = tmp_path / "config.yml"
    path.write_text(
        f"version: 0.1\nstorage: {{inmemory: {{}}}}\nhttp: {{secret: s}}\nauth: {{{auth}}}\n"
        + section(access)
    )
    return path


def check(config: Path, *args: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run(
        [sys.executable, "-m", "distribution", "access", "check", str(config), *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "status", "line"),
    [
        (
            ("alice", "team-a/app", "push"),
            0,
            'allowed: alice may push team-a/app (rule: repositories["team-a/**"][0])',
        ),
        (
            ("bob", "team-a/app", "push"),
            1,
            'denied: bob may not push team-a/app (rule: repositories["team-a/**"])',
        ),
        (
            ("-", "public/x", "pull"),
            0,
            'allowed: anonymous may pull public/x (rule: repositories["public/**"][0])',
        ),
        (("-", "other", "pull"), 1, "denied: anonymous may not pull other (rule: default)"),
        (("root", "other", "delete"), 0, "allowed: root may delete other (rule: admins)"),
    ],
)
def test_check_prints_the_decision_and_the_rule(tmp_path, args, status, line):
    result = check(write_config(tmp_path, RULES), *args)
    assert result.returncode == status, result.stderr
    assert result.stdout == line + "\n"


def test_check_notes_users_the_htpasswd_file_lacks(tmp_path):
    result = check(write_config(tmp_path, RULES), "bob", "team-a/app", "pull")
    assert result.returncode == 0
    assert "note: bob is not a user of" in result.stderr


def test_check_reads_the_rules_file(tmp_path):
    rules = tmp_path / "access.yml"
    rules.write_text(RULES)
    result = check(write_config(tmp_path, f"path: {rules}\n"), "ci", "team-a/app", "delete")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("allowed: ci may delete team-a/app")


@pytest.mark.parametrize(
    ("access", "args", "message"),
    [
        (RULES.replace("[pull, push, delete]", "[pull, shove]"), ("a", "b", "pull"),
         'registry: configuration error: access.repositories["team-a/**"][0].actions[1]: '
         "unknown action 'shove'"),
        (RULES, ("a", "Not/A/Name", "pull"), "registry: not a repository name: 'Not/A/Name'"),
    ],
)  # fmt: skip
def test_check_errors_exit_2(tmp_path, access, args, message):
    result = check(write_config(tmp_path, access), *args)
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr


def test_check_says_token_auth_cannot_be_checked(tmp_path):
    token = "token: {realm: 'https://a/t', service: s, issuer: i, jwks: /nonexistent}"
    result = check(write_config(tmp_path, "immutable: []\n", auth=token), "a", "b", "pull")
    assert result.returncode == 2


@pytest.mark.parametrize(
    ("access", "expected"),
    [
        (
            RULES.replace("groups: [team-a]", "groups: [team-b]"),
            "access.repositories[\"team-a/**\"][1].groups[0]: unknown group 'team-b' "
            "(defined: team-a)",
        ),
        (RULES.replace('"public/**"', '"Public/**"'), 'access.repositories["Public/**"]: '),
        ("path: /nonexistent/access.yml\n", "access.path /nonexistent/access.yml: cannot read"),
        ("repositoriess: {}\n", "access.repositoriess: unknown key"),
    ],
)
def test_serve_stops_on_bad_rules_naming_the_key(tmp_path, access, expected):
    line = error_line(serve(write_config(tmp_path, access)))
    assert line.startswith(PREFIX + expected), line
