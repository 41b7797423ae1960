"""``registry serve`` checks the auth section before any worker starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from distribution import cli
from distribution.config import ConfigError
from tests.test_config_cli import PREFIX, error_line, serve


def write(tmp_path: Path, auth: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(f"version: 0.1\nstorage: inmemory\nhttp: {{secret: s}}\nauth:\n{auth}\n")
    return path


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ("  htpasswd: {path: /tmp/x}", "auth.htpasswd.realm"),
        ("  htpasswd: {realm: r}", "auth.htpasswd.path"),
        ("  token: {realm: nowhere, service: s, issuer: i, jwks: /x}", "auth.token.realm"),
        (
            "  token: {realm: 'https://a/t', service: s, issuer: i, rootcertbundle: /nonexistent}",
            "auth.token.rootcertbundle",
        ),
        ("  token: {realm: 'https://a/t', service: s, issuer: i}", "auth.token"),
        ("  silly: {realm: r}", "auth.silly.service"),
        ("  ldap: {}", "auth"),
    ],
)
def test_bad_auth_config_names_the_key(tmp_path, auth, key):
    with pytest.raises(ConfigError) as caught:
        cli.prepare(str(write(tmp_path, auth)))
    assert caught.value.key == key


def test_serve_stops_with_one_line(tmp_path):
    result = serve(write(tmp_path, "  token: {realm: 'https://a/t', service: s, issuer: i}"))
    assert error_line(result) == PREFIX + "auth.token: rootcertbundle or jwks must be set"


def test_unknown_controller_lists_the_known_ones(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"unknown access controller 'ldap' \(available: "
        r"htpasswd, silly, token\)",
    ):
        cli.prepare(str(write(tmp_path, "  ldap: {}")))


def test_environment_variables_select_htpasswd(tmp_path, monkeypatch):
    """The deployment guide's variables, a missing file provisioned at start-up."""
    config = tmp_path / "config.yml"
    config.write_text("version: 0.1\nstorage: inmemory\nhttp: {secret: s}\n")
    monkeypatch.setenv("REGISTRY_AUTH", "htpasswd")
    monkeypatch.setenv("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm")
    monkeypatch.setenv("REGISTRY_AUTH_HTPASSWD_PATH", str(tmp_path / "auth" / "htpasswd"))
    loaded = cli.prepare(str(config))
    assert loaded.auth.type == "htpasswd"
    assert (tmp_path / "auth" / "htpasswd").read_bytes().startswith(b"docker:$2b$")
