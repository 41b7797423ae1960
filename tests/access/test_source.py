"""The rules file at ``access.path``: read at start-up, followed on change, kept when broken."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest

from distribution import config as config_module
from distribution.access import Identity, PolicySource
from distribution.config import ConfigError
from tests.access import example
from tests.api.registry_env import build_env

RULES = """
repositories:
  "team-a/**":
    - {users: [alice], actions: [pull, push]}
"""


def configuration(access: str, auth: str = "silly: {realm: r, service: s}"):
    return config_module.parse(
        f"version: 0.1\nstorage: {{inmemory: {{}}}}\nauth: {{{auth}}}\naccess:\n{access}", {}
    )


def source_for(path: Path) -> PolicySource:
    return PolicySource.from_config(configuration(f"  path: {path}"))


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and make sure the change shows even within one timestamp tick."""
    before = path.stat() if path.exists() else None
    path.write_text(text)
    if before is not None and path.stat().st_mtime_ns == before.st_mtime_ns:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))


def may_push(source: PolicySource, user: str, repository: str = "team-a/app") -> bool:
    return source.current().decide(Identity(user), repository, "push").allowed


def test_inline_rules(tmp_path):
    source = PolicySource.from_config(configuration("  default: [{users: [bob], actions: [push]}]"))
    assert may_push(source, "bob") and not may_push(source, "alice")


def test_the_file_is_followed(tmp_path, caplog):
    path = tmp_path / "access.yml"
    path.write_text(RULES)
    source = source_for(path)
    assert may_push(source, "alice") and not may_push(source, "bob")

    with caplog.at_level(logging.INFO, "distribution.access"):
        rewrite(path, RULES.replace("[alice]", "[bob]"))
        assert may_push(source, "bob") and not may_push(source, "alice")
    assert "access rules reloaded from" in caplog.text

    replacement = tmp_path / "access.new"
    replacement.write_text(RULES)
    replacement.replace(path)  # atomically, as config management does
    assert may_push(source, "alice")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("repositories: {'team-a/**': [{users: [bob], actions: [pusch]}]}", "unknown action"),
        ("repositories: [\n", "invalid YAML"),
        ("", "the rules file is empty"),
        ("- just a list", "must hold a mapping"),
        ("path: /elsewhere.yml", "cannot point to another one"),
    ],
)
def test_a_broken_file_keeps_the_rules_and_says_so_once(tmp_path, caplog, text, problem):
    path = tmp_path / "access.yml"
    path.write_text(RULES)
    source = source_for(path)
    with caplog.at_level(logging.INFO, "distribution.access"):
        rewrite(path, text)
        for _ in range(3):
            assert may_push(source, "alice") and not may_push(source, "bob")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, caplog.text
    assert problem in errors[0].getMessage() and str(path) in errors[0].getMessage()
    assert "keeping the previous rules" in errors[0].getMessage()


def test_a_reload_never_changes_the_mode(tmp_path, caplog):
    """A file written in place, read when it held only ``immutable:``, would have let every
    signed-in user push and delete everywhere; only a restart may change the mode."""
    htpasswd, path = example.write_htpasswd(tmp_path / "htpasswd"), tmp_path / "access.yml"
    path.write_text(example.RULES)
    config = f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}}}\naccess: {{path: {path}}}\n"
    bob = {"Authorization": "Basic " + base64.b64encode(b"bob:bob-pw").decode()}
    running = build_env("inmemory", tmp_path / "root", config)
    assert running.client.post("/v2/team-a/app/blobs/uploads/", headers=bob).status_code == 403

    with caplog.at_level(logging.INFO, "distribution.access"):
        rewrite(path, "immutable:\n")
        for _ in range(2):
            response = running.client.post("/v2/team-a/app/blobs/uploads/", headers=bob)
            assert response.status_code == 403
    errors = [r.getMessage() for r in caplog.records if r.name == "distribution.access.source"]
    assert len(errors) == 1, caplog.text
    assert "would switch from rules to signed-in mode" in errors[0]
    assert "restart the registry to apply it; keeping the previous rules" in errors[0]

    restarted = build_env("inmemory", tmp_path / "root", config)
    assert restarted.client.post("/v2/team-a/app/blobs/uploads/", headers=bob).status_code == 202


def test_a_vanished_file_keeps_the_rules(tmp_path, caplog):
    path = tmp_path / "access.yml"
    path.write_text(RULES)
    source = source_for(path)
    path.unlink()
    with caplog.at_level(logging.ERROR, "distribution.access"):
        assert may_push(source, "alice")
    assert "cannot stat" in caplog.text
    path.write_text(RULES.replace("[alice]", "[bob]"))
    assert may_push(source, "bob")


def test_the_section_copied_whole_is_read_too(tmp_path):
    path = tmp_path / "access.yml"
    path.write_text("access:\n" + "\n".join("  " + line for line in RULES.splitlines()))
    assert may_push(source_for(path), "alice")


@pytest.mark.parametrize(
    ("setup", "key", "message"),
    [
        (lambda p: None, "access.path {path}", "cannot read the rules file"),
        (lambda p: p.write_text(""), "access.path {path}", "the rules file is empty"),
        (
            lambda p: p.write_text("default: [{users: [x], actions: [pull, pop]}]"),
            "access.path {path}",
            "default[0].actions[1]: unknown action 'pop'",
        ),
    ],
)
def test_start_up_errors_name_the_file_and_key(tmp_path, setup, key, message):
    path = tmp_path / "access.yml"
    setup(path)
    with pytest.raises(ConfigError) as caught:
        source_for(path)
    assert caught.value.key == key.format(path=path)
    assert message in caught.value.message


def test_rules_in_both_places_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"either in .* or in the config, not both"):
        PolicySource.from_config(configuration(f"  path: {tmp_path}/a.yml\n  admins: [root]"))


def test_environment_overrides_reach_the_section(tmp_path):
    path = tmp_path / "access.yml"
    path.write_text(RULES)
    config = config_module.parse(
        "version: 0.1\nstorage: {inmemory: {}}\nauth: {silly: {realm: r, service: s}}\n",
        {"REGISTRY_ACCESS_PATH": str(path)},
    )
    assert may_push(PolicySource.from_config(config), "alice")
