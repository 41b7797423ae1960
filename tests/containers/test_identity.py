"""Whom the registry runs as, decided on this machine's files (as root, with setpriv, as the
entry point does), without building the image: each rule of distribution.container.identity."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from distribution import config as config_module
from distribution.container import identity
from distribution.container.identity import ROOT, Identity, Refusal

IMAGE_USER = Identity(1000, 1000)


def configure(root: Path, **environ: str) -> config_module.Configuration:
    text = f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n"
    return config_module.parse(text, environ)


def owned(path: Path, uid: int, gid: int, mode: int) -> Path:
    os.chown(path, uid, gid)
    path.chmod(mode)
    return path


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory every user may pass through, as a container's mount points are (pytest's
    own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="identity-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def secret(tmp_path: Path, uid: int = 0, gid: int = 0, mode: int = 0o600) -> Path:
    """A key file, root's and 0600 unless said otherwise."""
    path = tmp_path / "domain.key"
    path.write_text("key")
    return owned(path, uid, gid, mode)


def test_the_owner_of_the_storage_root(data: Path) -> None:
    for uid, gid in [(1000, 1000), (4242, 4343), (0, 0)]:
        owned(data, uid, gid, 0o700)
        assert identity.choose(configure(data), None, IMAGE_USER) == Identity(uid, gid)


def test_a_missing_root_goes_by_its_nearest_parent(tmp_path: Path) -> None:
    (tmp_path / "srv").mkdir()
    parent = owned(tmp_path / "srv", 4242, 4242, 0o755)
    config = configure(parent / "registry" / "v2")
    assert identity.choose(config, None, IMAGE_USER) == Identity(4242, 4242)


def test_without_local_storage_the_image_user(tmp_path: Path) -> None:
    config = config_module.parse("version: 0.1\nstorage: {inmemory: {}}\n", {})
    assert identity.choose(config, None, IMAGE_USER) == IMAGE_USER


def test_root_only_key_takes_the_new_empty_volume(tmp_path: Path, data: Path) -> None:
    owned(data, 1000, 1000, 0o755)
    key = secret(tmp_path)
    config = configure(data, REGISTRY_HTTP_TLS_CERTIFICATE=str(key), REGISTRY_HTTP_TLS_KEY=str(key))
    assert identity.choose(config, None, IMAGE_USER) == ROOT
    assert (data.stat().st_uid, data.stat().st_gid) == (0, 0)


def test_root_only_key_without_local_storage_is_read_as_root(tmp_path: Path) -> None:
    key = secret(tmp_path)
    config = config_module.parse(
        "version: 0.1\nstorage: {inmemory: {}}\n",
        {"REGISTRY_HTTP_TLS_CERTIFICATE": str(key), "REGISTRY_HTTP_TLS_KEY": str(key)},
    )
    assert identity.choose(config, None, IMAGE_USER) == ROOT


def test_data_is_never_taken_from_its_owner(tmp_path: Path, data: Path) -> None:
    """A volume with data in it stays its owner's: a root-only key is then refused aloud."""
    (data / "docker").mkdir()
    owned(data, 1000, 1000, 0o755)
    key = secret(tmp_path)
    config = configure(data, REGISTRY_HTTP_TLS_CERTIFICATE=str(key), REGISTRY_HTTP_TLS_KEY=str(key))
    with pytest.raises(Refusal) as refused:
        identity.choose(config, "/etc/docker/registry/config.yml", IMAGE_USER)
    assert f"cannot read {key} (http.tls.certificate; owner uid 0, group 0, mode 0600)" in str(
        refused.value
    )
    assert data.stat().st_uid == 1000


def test_group_readable_key_keeps_the_image_user(tmp_path: Path, data: Path) -> None:
    owned(data, 1000, 1000, 0o755)
    key = secret(tmp_path, 0, 1000, 0o640)
    config = configure(data, REGISTRY_HTTP_TLS_CERTIFICATE=str(key), REGISTRY_HTTP_TLS_KEY=str(key))
    assert identity.choose(config, None, IMAGE_USER) == IMAGE_USER


def test_read_only_storage_root_is_refused(tmp_path: Path, data: Path) -> None:
    """A root-owned root that root itself may not write (0555): no capability overrides it."""
    owned(data, 0, 0, 0o555)
    (data / "docker").mkdir()
    with pytest.raises(Refusal, match=r"cannot write .*storage\.filesystem\.rootdirectory"):
        identity.choose(configure(data), None, IMAGE_USER)


def test_letsencrypt_folder_needs_writing(tmp_path: Path, data: Path) -> None:
    """The registry creates and writes ``cachefile`` (registry:2 runs as root and can); in a
    root-owned directory the image user could not, and start-up stopped on Permission denied."""
    owned(data, 1000, 1000, 0o755)
    (tmp_path / "etc").mkdir()
    etc = owned(tmp_path / "etc", 0, 0, 0o755)
    config = configure(
        data,
        REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE=str(etc / "registry-acme"),
        REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS="[registry.example.com]",
    )
    needs = identity.needs_of(config, None)
    assert identity.Need(str(etc), "write", "http.tls.letsencrypt.cachefile") in needs
    assert identity.choose(config, None, IMAGE_USER) == ROOT


def test_root_only_cloudfront_key_and_access_rules_are_read_as_root(
    tmp_path: Path, data: Path
) -> None:
    """registry:2 reads a 0600 cloudfront ``privatekey`` as root; the image user could not, and
    start-up stopped on 'failed to read privatekey file: Permission denied'."""
    owned(data, 1000, 1000, 0o755)
    key = secret(tmp_path)
    rules = tmp_path / "access.yml"
    rules.write_text("default: []\n")
    owned(rules, 0, 0, 0o600)
    config = configure(
        data,
        REGISTRY_MIDDLEWARE_STORAGE=f"[{{name: cloudfront, options: {{privatekey: {key}}}}}]",
        REGISTRY_ACCESS_PATH=str(rules),
    )
    needs = identity.needs_of(config, None)
    assert identity.Need(str(key), "read", "middleware.storage[0].options.privatekey") in needs
    assert identity.Need(str(rules), "read", "access.path") in needs
    assert identity.choose(config, None, IMAGE_USER) == ROOT


def test_missing_htpasswd_file_needs_its_directory(tmp_path: Path, data: Path) -> None:
    owned(data, 1000, 1000, 0o755)
    (tmp_path / "auth").mkdir()
    auth = owned(tmp_path / "auth", 0, 0, 0o755)
    config = configure(
        data,
        REGISTRY_AUTH="htpasswd",
        REGISTRY_AUTH_HTPASSWD_REALM="r",
        REGISTRY_AUTH_HTPASSWD_PATH=str(auth / "htpasswd"),
    )
    needs = identity.needs_of(config, None)
    assert identity.Need(str(auth), "write", "auth.htpasswd.path") in needs
    # The registry creates the file as Go does: root's directory, so root without capabilities.
    assert identity.choose(config, None, IMAGE_USER) == ROOT


@pytest.mark.parametrize(
    ("addr", "debug", "expected"),
    [
        (":5000", None, ""),
        ("0.0.0.0:443", None, ",+net_bind_service"),
        ("[::]:80", None, ",+net_bind_service"),
        (":5000", "localhost:81", ",+net_bind_service"),
        (":5000", ":5001", ""),
    ],
)
def test_low_ports_keep_one_capability(addr: str, debug: str | None, expected: str) -> None:
    environ = {"REGISTRY_HTTP_ADDR": addr}
    if debug:
        environ["REGISTRY_HTTP_DEBUG_ADDR"] = debug
    config = config_module.parse("version: 0.1\nstorage: {inmemory: {}}\n", environ)
    assert identity.capabilities(config) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["registry", "serve", "/c.yml"], (True, "/c.yml")),
        (["registry", "serve"], (True, "/from-env.yml")),
        (["registry", "garbage-collect", "--grace-period", "1h", "-m", "/c.yml"], (True, "/c.yml")),
        (["registry", "help"], (False, None)),
        (["registry", "--version"], (False, None)),
    ],
)
def test_config_path_as_the_cli_reads_it(monkeypatch, argv, expected) -> None:
    monkeypatch.setenv("REGISTRY_CONFIGURATION_PATH", "/from-env.yml")
    assert identity.config_path(argv) == expected
