"""``storage.maintenance.usage`` and the value kinds our maintenance sections share.

The sections are our extension, read free-form by :mod:`distribution.config` (the Go registry
ignores them) and checked here, so that every mistake names its key. Durations are Go's
(``90m``, ``100h``) plus days (``30d``); a bare number is refused, since Go would read it as
nanoseconds and a retention window of 100 ns deletes what nobody meant to delete. Sizes take
decimal (``50GB``) and binary (``50GiB``) units, or a plain number of bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from distribution import duration
from distribution.access.patterns import Pattern, PatternError
from distribution.config import ConfigError, Configuration

#: The section's key, for error messages.
KEY = "storage.maintenance.usage"

#: Seconds between two refreshes of the figures (a few storage reads when nothing changed).
DEFAULT_INTERVAL = 60.0
#: Seconds between two full scans, which also see changes made outside this registry's API.
DEFAULT_FULLSCAN = 24 * 3600.0

_DAYS = re.compile(r"(\d+)d(.*)")
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?)b?", re.IGNORECASE)
_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


@dataclass(frozen=True)
class UsageSettings:
    """How often the maintenance job refreshes usage, and whether pulls are recorded."""

    enabled: bool = True
    interval: float = DEFAULT_INTERVAL
    fullscan: float = DEFAULT_FULLSCAN
    #: Record when manifests are pulled (retention's ``pulledwithin``, usage's last pull).
    pulls: bool = True


def parse(config: Configuration) -> UsageSettings:
    """The checked section; :class:`ConfigError` names the key of the first mistake."""
    section = mapping(config.storage.maintenance.usage, KEY)
    known(section, KEY, ("enabled", "interval", "fullscan", "pulls"))
    return UsageSettings(
        enabled=boolean(section.get("enabled", True), f"{KEY}.enabled"),
        interval=seconds(section.get("interval", "1m"), f"{KEY}.interval", positive=True),
        fullscan=seconds(section.get("fullscan", "24h"), f"{KEY}.fullscan", positive=True),
        pulls=boolean(section.get("pulls", True), f"{KEY}.pulls"),
    )


def mapping(value: Any, key: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(key, f"expected a mapping, got {describe(value)}")
    return value


def entries(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ConfigError(key, f"expected a list, got {describe(value)}")
    return list(value)


def known(section: Mapping[str, Any], key: str, names: Iterable[str]) -> None:
    """Unknown keys are refused: in our sections a typo must not pass as an absent rule."""
    allowed = tuple(names)
    for name in section:
        if name not in allowed:
            raise ConfigError(
                f"{key}.{name}", f"unknown key (expected one of {', '.join(allowed)})"
            )


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, f"expected true or false, got {describe(value)}")
    return value


def seconds(value: Any, key: str, positive: bool = False) -> float:
    """A duration: Go's text (``1h30m``) or days (``30d``, ``1d12h``); never a bare number."""
    if isinstance(value, str):
        text, days = value.strip(), 0
        match = _DAYS.fullmatch(text)
        if match:
            days, text = int(match[1]), match[2]
        nanoseconds = duration.parse(text) if text else 0
        if nanoseconds is not None and nanoseconds >= 0:
            total = days * 86400 + nanoseconds / 1e9
            if total > 0 or not positive:
                return total
            raise ConfigError(key, f"must be longer than zero, got {value!r}")
    raise ConfigError(key, f"expected a duration such as 90m, 100h or 30d, got {describe(value)}")


def size(value: Any, key: str) -> int:
    """Bytes: a number, or ``50GiB`` (1024-based), ``50GB`` (1000-based), ``512M`` (1000)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value.strip())
        if match:
            base = 1024 if match[3] else 1000
            if match[3] and not match[2]:
                match = None
            else:
                total = int(float(match[1]) * base ** _POWERS[match[2].lower()])
                if total > 0:
                    return total
    raise ConfigError(
        key, f"expected a size such as 50GiB, 500MB or 1073741824, got {describe(value)}"
    )


def positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, f"expected a whole number of at least 1, got {describe(value)}")
    return value


def describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def repository_patterns(value: object, key: str) -> tuple[Pattern, ...]:
    """One repository pattern or a list of them, compiled (the access rules' globs)."""
    texts = value if isinstance(value, list | tuple) else [value]
    if not texts:
        raise ConfigError(key, "expected at least one repository pattern")
    compiled = []
    for index, text in enumerate(texts):
        where = f"{key}[{index}]" if isinstance(value, list | tuple) else key
        if not isinstance(text, str):
            raise ConfigError(where, f"expected a repository pattern, got {describe(text)}")
        try:
            compiled.append(Pattern.compile(text))
        except PatternError as err:
            raise ConfigError(where, f"{text!r}: {err}") from None
    return tuple(compiled)
