"""``storage.maintenance.gc``: our extension, parsed like every other section."""

from __future__ import annotations

import pytest

from distribution import config
from distribution.config import ConfigError, parse

BASE = """\
version: 0.1
storage:
  filesystem: {rootdirectory: /var/lib/registry}
"""


def test_gc_is_off_by_default() -> None:
    assert parse(BASE, {}).storage.maintenance.gc == config.GarbageCollection(
        enabled=False, interval=24 * 3600.0, age=3600.0, dryrun=False, deleteuntagged=False
    )


def test_gc_section_is_read() -> None:
    text = BASE + (
        "  maintenance:\n"
        "    gc: {enabled: true, interval: 6h, age: 30m, dryrun: true, deleteuntagged: true}\n"
    )
    assert parse(text, {}).storage.maintenance.gc == config.GarbageCollection(
        enabled=True, interval=6 * 3600.0, age=1800.0, dryrun=True, deleteuntagged=True
    )


def test_gc_from_the_environment() -> None:
    env = {
        "REGISTRY_STORAGE_MAINTENANCE_GC_ENABLED": "true",
        "REGISTRY_STORAGE_MAINTENANCE_GC_AGE": "2h",
    }
    loaded = parse(BASE, env).storage.maintenance
    assert loaded.gc.enabled and loaded.gc.age == 7200.0
    assert loaded.uploadpurging.enabled  # the sibling section keeps its defaults


def test_zero_interval_means_the_default() -> None:
    text = BASE + "  maintenance:\n    gc: {enabled: true, interval: 0s}\n"
    assert parse(text, {}).storage.maintenance.gc.interval == 24 * 3600.0


def test_bad_gc_value_names_its_key() -> None:
    text = BASE + "  maintenance:\n    gc: {age: soon}\n"
    with pytest.raises(ConfigError) as raised:
        parse(text, {})
    assert raised.value.key == "storage.maintenance.gc.age"
