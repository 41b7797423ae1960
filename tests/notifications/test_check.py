"""Endpoints that could never be delivered to stop start-up, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from distribution import config as config_module
from distribution import notifications
from distribution.config import ConfigError
from tests.test_config_cli import PREFIX, error_line, serve, write


def parse(endpoints: str, redis: str = "") -> config_module.Configuration:
    text = f"version: 0.1\nstorage: {{inmemory: {{}}}}\n{redis}"
    return config_module.parse(f"{text}notifications:\n  endpoints:\n{endpoints}", {})


@pytest.mark.parametrize(
    "url", ["", "ftp://host/x", "not a url", "http://", "http://host:abc/", "http://host:0/"]
)
def test_an_enabled_endpoint_needs_an_http_url(url: str) -> None:
    config = parse(f"    - name: a\n      url: '{url}'\n")
    with pytest.raises(ConfigError) as caught:
        notifications.check(config)
    assert caught.value.key == "notifications.endpoints[0].url"


@pytest.mark.parametrize(
    "headers",
    ["{'X-Team': ['caf\u00e9 \u2615']}", "{'X-A': [\"one\\r\\nX-B: two\"]}", "{'X A': ['1']}"],
)
def test_headers_must_be_sendable(headers: str) -> None:
    config = parse(f"    - name: a\n      url: http://hooks/\n      headers: {headers}\n")
    with pytest.raises(ConfigError) as caught:
        notifications.check(config)
    assert caught.value.key == "notifications.endpoints[0].headers"


def test_latin1_header_values_are_sendable() -> None:
    notifications.check(
        parse("    - name: a\n      url: http://h/\n      headers: {X-T: ['caf\u00e9']}\n")
    )


def test_disabled_endpoints_are_not_checked() -> None:
    notifications.check(parse("    - name: a\n      disabled: true\n"))
    notifications.check(parse("    - name: a\n      url: https://hooks.example/x?k=1\n"))


def test_names_must_differ_when_redis_keeps_the_queues() -> None:
    twice = "    - name: a\n      url: http://one/\n    - name: a\n      url: http://two/\n"
    notifications.check(parse(twice))  # in memory each endpoint has its own queue
    with pytest.raises(ConfigError) as caught:
        notifications.check(parse(twice, redis="redis: {addr: 'localhost:6379'}\n"))
    assert caught.value.key == "notifications.endpoints[1].name"


def test_serve_refuses_a_bad_endpoint(tmp_path: Path) -> None:
    text = (
        "version: 0.1\nstorage: {inmemory: {}}\nhttp: {secret: s}\n"
        "notifications:\n  endpoints:\n    - name: hook\n      url: hooks.example/events\n"
    )
    assert error_line(serve(write(tmp_path, text))) == (
        PREFIX
        + "notifications.endpoints[0].url: 'hooks.example/events' is not an http or https URL"
    )


@pytest.mark.parametrize("timeout", ["3000000h", "9223372036854775808"])
def test_serve_refuses_a_timeout_beyond_gos_durations(tmp_path: Path, timeout: str) -> None:
    """Go refuses a duration past int64 nanoseconds (about 292 years) at start-up; accepted,
    it made every delivery attempt crash the endpoint's thread."""
    text = (
        "version: 0.1\nstorage: {inmemory: {}}\nhttp: {secret: s}\nnotifications:\n"
        f"  endpoints:\n    - name: hook\n      url: http://hooks/\n      timeout: {timeout}\n"
    )
    assert error_line(serve(write(tmp_path, text))).startswith(
        PREFIX + "notifications.endpoints[0].timeout: expected a duration"
    )
