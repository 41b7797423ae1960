"""A bad configuration stops ``registry serve`` with one line naming the key, exit status 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PREFIX = "registry: configuration error: "


def serve(
    config_path: Path | str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m distribution serve CONFIG`` from the checkout, without REGISTRY_* noise."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "distribution", "serve", str(config_path)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one line a configuration error prints, after checking how the process ended."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(text)
    return path


def test_unknown_driver(tmp_path):
    line = error_line(serve(write(tmp_path, "version: 0.1\nstorage: {nosuch: {}}\n")))
    assert (
        line
        == PREFIX
        + "storage: unknown storage driver 'nosuch' "
        + "(available: azure, filesystem, gcs, inmemory, s3, s3aws)"
    )


def test_bad_driver_parameter(tmp_path):
    config = "version: 0.1\nstorage: {filesystem: {maxthreads: many}}\n"
    assert error_line(serve(write(tmp_path, config))) == (
        PREFIX + "storage.filesystem.maxthreads: must be an integer, got 'many'"
    )


def test_unloadable_tls_certificate(tmp_path):
    config = write(tmp_path, "version: 0.1\nstorage: inmemory\n")
    (tmp_path / "cert.pem").write_text("not a certificate\n")
    env = {
        "REGISTRY_HTTP_TLS_CERTIFICATE": str(tmp_path / "cert.pem"),
        "REGISTRY_HTTP_TLS_KEY": str(tmp_path / "cert.pem"),
    }
    line = error_line(serve(config, env))
    assert line == PREFIX + f"http.tls.certificate: no PEM certificate in {tmp_path}/cert.pem"


def test_two_drivers(tmp_path):
    path = write(
        tmp_path, "version: 0.1\nstorage:\n  inmemory:\n  filesystem: {rootdirectory: /x}\n"
    )
    assert error_line(serve(path)) == (
        PREFIX + "storage: must provide exactly one storage type, got filesystem, inmemory"
    )


def test_no_driver(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage:\n  delete: {enabled: true}\n")
    assert error_line(serve(path)) == PREFIX + "storage: no storage configuration provided"


def test_missing_version(tmp_path):
    path = write(tmp_path, "storage: inmemory\n")
    assert error_line(serve(path)) == PREFIX + "version: required (this registry reads version 0.1)"


def test_wrong_version(tmp_path):
    path = write(tmp_path, "version: 0.2\nstorage: inmemory\n")
    assert error_line(serve(path)) == (
        PREFIX + "version: unsupported version '0.2' (this registry reads version 0.1)"
    )


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("http: 5", "http: expected a mapping, got '5'"),
        ("http: {addr: [1]}", "http.addr: expected a string, got a list"),
        ("catalog: {maxentries: many}", "catalog.maxentries: expected an integer, got 'many'"),
        (
            "notifications: {endpoints: [{url: 'http://x', timeout: soon}]}",
            "notifications.endpoints[0].timeout:"
            " expected a duration such as 10s, 300ms or 1h30m, got 'soon'",
        ),
        (
            "log: {level: verbose}",
            "log.level: expected one of error, warn, info, debug, got 'verbose'",
        ),
    ],
)
def test_wrong_type(tmp_path, section, message):
    path = write(tmp_path, f"version: 0.1\nstorage: inmemory\n{section}\n")
    assert error_line(serve(path)) == PREFIX + message


def test_wrong_type_in_storage(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage:\n  inmemory:\n  delete: {enabled: maybe}\n")
    assert error_line(serve(path)) == (
        PREFIX + "storage.delete.enabled: expected true or false, got 'maybe'"
    )


def test_invalid_yaml(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage: inmemory: x\n")
    assert error_line(serve(path)) == (
        PREFIX + f"{path}: invalid YAML: mapping values are not allowed here at line 2, column 18"
    )


def test_not_a_mapping(tmp_path):
    path = write(tmp_path, "- version: 0.1\n- storage: inmemory\n")
    assert error_line(serve(path)) == (
        PREFIX + f"{path}: expected a mapping at the top level, got a list"
    )


def test_missing_file(tmp_path):
    path = tmp_path / "nope.yml"
    assert error_line(serve(path)) == (
        PREFIX + f"{path}: cannot read configuration file: No such file or directory"
    )


def test_directory_as_file(tmp_path):
    assert error_line(serve(tmp_path)) == (
        PREFIX + f"{tmp_path}: cannot read configuration file: Is a directory"
    )


def test_unreadable_path(tmp_path):
    """A path through a regular file cannot be read by anyone, root included."""
    (tmp_path / "file").write_text("version: 0.1\nstorage: inmemory\n")
    path = tmp_path / "file" / "config.yml"
    assert error_line(serve(path)) == (
        PREFIX + f"{path}: cannot read configuration file: Not a directory"
    )


def test_bad_environment_value(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage: inmemory\n")
    result = serve(path, {"REGISTRY_CATALOG_MAXENTRIES": "abc"})
    assert error_line(result) == PREFIX + (
        "catalog.maxentries: expected an integer, got 'abc'"
        " (from environment variable REGISTRY_CATALOG_MAXENTRIES)"
    )


def test_environment_creates_a_second_driver(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage: inmemory\n")
    result = serve(path, {"REGISTRY_STORAGE_S3_REGION": "us-east-1"})
    assert error_line(result) == (
        PREFIX + "storage: must provide exactly one storage type, got inmemory, s3"
    )


@pytest.mark.parametrize(
    ("http", "message"),
    [
        # gunicorn bound its default port 8000 and served there.
        (
            "{addr: 127.0.0.1}",
            "http.addr: missing port in address '127.0.0.1' (host:port, such as :5000)",
        ),
        # gunicorn died with OverflowError's stack trace.
        ("{addr: ':99999'}", "http.addr: invalid port '99999' in address ':99999' (0 to 65535)"),
        # gunicorn's own "Error: 'http' is not a valid port number.", naming no key.
        ("{addr: ':http'}", "http.addr: invalid port 'http' in address ':http' (0 to 65535)"),
        # gunicorn's "Error: '' is not a valid port number."
        (
            "{addr: '::1:5000'}",
            "http.addr: too many colons in address '::1:5000' (an IPv6 host goes in brackets:"
            " [::1]:5000)",
        ),
        # The debug listener's address was first read while building the app: a stack trace.
        (
            "{addr: ':5000', debug: {addr: localhost}}",
            "http.debug.addr: missing port in address 'localhost' (host:port, such as :5000)",
        ),
    ],
)
def test_bad_listen_address(tmp_path, http, message):
    path = write(tmp_path, f"version: 0.1\nstorage: inmemory\nhttp: {http}\n")
    assert error_line(serve(path)) == PREFIX + message


#: Quiet, so that the error is the one line: these are refused once the app is built.
LISTENING = "version: 0.1\nstorage: inmemory\nlog: {{level: warn}}\nhttp: {{secret: s, {}}}\n"


@pytest.mark.parametrize("key", ["addr", "debug.addr"])
def test_an_address_in_use_stops_start_up_at_once(tmp_path, key):
    """As Go's ``net.Listen`` fails: gunicorn retried for 5 s, then named no key."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        used = f"127.0.0.1:{taken.getsockname()[1]}"
        http = f"addr: '{used}'" if key == "addr" else f"addr: ':0', debug: {{addr: '{used}'}}"
        line = error_line(serve(write(tmp_path, LISTENING.format(http))))
    assert line == PREFIX + f"http.{key}: cannot listen on {used}: Address already in use"


def test_a_listen_host_that_does_not_resolve(tmp_path):
    line = error_line(serve(write(tmp_path, LISTENING.format("addr: 'nosuchhost.invalid:5000'"))))
    assert line.startswith(PREFIX + "http.addr: cannot listen on nosuchhost.invalid:5000: ")


def test_unix_socket_path_that_is_not_a_socket(tmp_path):
    """Go refuses it rather than remove the file; gunicorn died with a ValueError's trace."""
    (tmp_path / "registry.sock").write_text("data\n")
    path = write(
        tmp_path,
        f"version: 0.1\nstorage: inmemory\nhttp: {{net: unix, addr: {tmp_path}/registry.sock}}\n",
    )
    assert error_line(serve(path)) == PREFIX + (
        f"http.addr: {tmp_path}/registry.sock exists and is not a socket"
    )


def test_http_host_that_is_not_a_url(tmp_path):
    path = write(tmp_path, "version: 0.1\nstorage: inmemory\nhttp: {host: 'https://[::1'}\n")
    assert error_line(serve(path)) == PREFIX + (
        "http.host: not a URL: 'https://[::1': Invalid IPv6 URL"
    )


@pytest.mark.parametrize(
    ("health", "message"),
    [
        # A stack trace in the log every interval, and every request 503 for ever.
        (
            "{http: [{uri: 'registry.example.com/health'}]}",
            "health.http[0].uri: not an http(s) URL: 'registry.example.com/health'",
        ),
        # Every request 503 for ever ("connection failed: ... missing port in address").
        (
            "{tcp: [{addr: redis.example.com}]}",
            "health.tcp[0].addr: missing port in address 'redis.example.com'",
        ),
    ],
)
def test_health_check_that_can_never_pass(tmp_path, health, message):
    path = write(tmp_path, f"version: 0.1\nstorage: inmemory\nhealth: {health}\n")
    assert error_line(serve(path)) == PREFIX + message


def test_redis_addr_given_as_a_url(tmp_path):
    """Go dials redis.addr as host:port; a redis:// URL started here and every cache call then
    failed to resolve the host 'redis://localhost'."""
    path = write(
        tmp_path,
        "version: 0.1\nstorage: {inmemory: {}, cache: {blobdescriptor: redis}}\n"
        "redis: {addr: 'redis://localhost:6379'}\n",
    )
    assert error_line(serve(path)) == PREFIX + (
        "redis.addr: 'redis://localhost:6379' is not host:port"
    )
