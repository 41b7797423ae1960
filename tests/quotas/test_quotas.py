"""Quotas, without a server: the entries (every mistake names its key), sizes, the check a push
asks and the crossings the usage job reports."""

from __future__ import annotations

import json

import pytest

from distribution import config as config_module
from distribution import errors, quotas
from distribution.config import ConfigError
from distribution.quotas import alerts
from distribution.quotas.guard import QuotaGuard, human
from distribution.storage import paths
from distribution.storage.driver import create
from distribution.usage import settings


def parse(text: str) -> tuple[quotas.Quota, ...]:
    doc = f"version: 0.1\nstorage:\n  inmemory: {{}}\n  maintenance:\n    quotas: {text}\n"
    return quotas.parse(config_module.parse(doc, {}))


def test_entries() -> None:
    found = parse(
        "[{repositories: 'team-a/**', limit: 50GiB}, {repositories: [x, 'y/*'], limit: 10}]"
    )
    assert found[0].text == "team-a/**" and found[0].limit == 50 << 30
    assert found[0].matches("team-a") and found[0].matches("team-a/b/c")
    assert not found[0].matches("team-ab")
    assert found[1].text == "x, y/*" and found[1].limit == 10 and found[1].matches("y/z")


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("50GiB", 50 << 30),
        ("50GB", 50 * 10**9),
        ("1.5TiB", int(1.5 * (1 << 40))),
        ("512M", 512 * 10**6),
        ("512MiB", 512 << 20),
        ("100kb", 100_000),
        ("2048", 2048),
        (1073741824, 1 << 30),
    ],
)
def test_sizes(value: object, size: int) -> None:
    assert settings.size(value, "k") == size


@pytest.mark.parametrize("value", ["", "GiB", "10 parsecs", "-1", 0, -5, "0GiB", "5i", True])
def test_bad_sizes(value: object) -> None:
    with pytest.raises(ConfigError, match="expected a size"):
        settings.size(value, "k")


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("{a: 1}", "storage.maintenance.quotas", "expected a list"),
        ("[{limit: 1GiB}]", "quotas[0].repositories", "required"),
        ("[{repositories: a}]", "quotas[0].limit", "required"),
        ("[{repositories: a, limit: lots}]", "quotas[0].limit", "expected a size"),
        ("[{repositories: 'A/**', limit: 1}]", "quotas[0].repositories", "'A/**'"),
        ("[{repositories: a, limit: 1, soft: true}]", "quotas[0].soft", "unknown key"),
        ("[{repositories: a, limit: 1}, {repositories: a, limit: 2}]", "quotas[1]", "already"),
    ],
)
def test_mistakes_name_their_key(text: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert key in caught.value.key and message in str(caught.value)


def test_quotas_need_usage() -> None:
    doc = (
        "version: 0.1\nstorage:\n  inmemory: {}\n  maintenance:\n    usage: {enabled: false}\n"
        "    quotas: [{repositories: a, limit: 1GiB}]\n"
    )
    with pytest.raises(ConfigError, match="usage is disabled"):
        quotas.parse(config_module.parse(doc, {}))


def test_misplaced_under_storage() -> None:
    with pytest.raises(ConfigError) as caught:
        config_module.parse("version: 0.1\nstorage: {inmemory: {}, quotas: []}\n", {})
    assert caught.value.key == "storage.quotas"
    assert "storage.maintenance.quotas" in str(caught.value)


def test_the_guard_reads_the_summary_and_the_current_limits() -> None:
    driver = create("inmemory", {})
    (quota,) = parse("[{repositories: 'team-a/**', limit: 1000}]")
    guard = QuotaGuard(driver, (quota,))
    guard.check("team-a/app")  # no figures yet: nothing is refused
    summary = {"quotas": [{"repositories": "team-a/**", "limit": 1000, "bytes": 1000}]}
    driver.put_content(paths.USAGE_SUMMARY, json.dumps(summary).encode())
    guard._read_at = float("-inf")
    with pytest.raises(errors.Denied) as caught:
        guard.check("team-a/app")
    assert caught.value.message == (
        "quota exceeded: team-a/** uses 1000 B of its 1000 B limit; delete images to push again"
    )
    assert caught.value.detail == {"repositories": "team-a/**", "limit": 1000, "used": 1000}
    guard.check("team-b/app")
    # a raised limit counts at once, before the usage job runs again
    (raised,) = parse("[{repositories: 'team-a/**', limit: 1001}]")
    QuotaGuard(driver, (raised,)).check("team-a/app")


def test_crossings() -> None:
    found = alerts.crossings({}, [("a", 100, 85), ("b", 100, 120), ("c", 100, 10)])
    assert [(c.repositories, c.threshold) for c in found] == [("a", 80), ("b", 80), ("b", 100)]
    again = alerts.crossings({"a": 85.0, "b": 120.0}, [("a", 100, 90), ("b", 100, 50)])
    assert [(c.repositories, c.threshold) for c in again] == [("b", 0)]
    assert alerts.crossings({"a": 50.0}, [("a", 100, 100)])[1].threshold == 100


def test_human() -> None:
    assert [human(n) for n in (512, 2048, 3 << 20, 51 << 30)] == [
        "512 B",
        "2.0 KiB",
        "3.0 MiB",
        "51.0 GiB",
    ]
