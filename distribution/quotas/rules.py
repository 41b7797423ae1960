"""The ``storage.maintenance.quotas`` entries, checked: pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from distribution.access.patterns import Pattern
from distribution.config import ConfigError, Configuration
from distribution.usage import settings

KEY = "storage.maintenance.quotas"


@dataclass(frozen=True)
class Quota:
    """One entry: the repositories it covers and their limit in bytes."""

    key: str
    patterns: tuple[Pattern, ...]
    limit: int

    @property
    def text(self) -> str:
        """How the entry names its repositories (the patterns, comma-separated)."""
        return ", ".join(pattern.text for pattern in self.patterns)

    def matches(self, name: str) -> bool:
        return any(pattern.matches(name) for pattern in self.patterns)


def parse(config: Configuration) -> tuple[Quota, ...]:
    """The checked entries; :class:`ConfigError` names the key of the first mistake."""
    found = []
    seen: set[str] = set()
    for index, entry in enumerate(settings.entries(config.storage.maintenance.quotas, KEY)):
        key = f"{KEY}[{index}]"
        entry = settings.mapping(entry, key)
        settings.known(entry, key, ("repositories", "limit"))
        if "repositories" not in entry or "limit" not in entry:
            missing = "repositories" if "repositories" not in entry else "limit"
            raise ConfigError(f"{key}.{missing}", "required")
        quota = Quota(
            key,
            settings.repository_patterns(entry["repositories"], f"{key}.repositories"),
            settings.size(entry["limit"], f"{key}.limit"),
        )
        if quota.text in seen:
            raise ConfigError(key, f"{quota.text} has a quota already")
        seen.add(quota.text)
        found.append(quota)
    if found and not settings.parse(config).enabled:
        raise ConfigError(
            KEY,
            "quotas are checked against the usage figures, and storage.maintenance.usage "
            "is disabled",
        )
    return tuple(found)
