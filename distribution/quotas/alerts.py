"""Which quotas crossed 80 % or 100 % since the last refresh: pure, no I/O.

Each upward crossing is reported once (the usage job sends a notification event and logs a
warning); going back under 100 % is logged, so operators see pushes accepted again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

#: The percentages whose upward crossing is reported.
THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class Crossing:
    repositories: str
    limit: int
    used: int
    #: The threshold crossed upward; 0 for falling back under 100 %.
    threshold: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.limit


def crossings(
    previous: Mapping[str, float], current: Iterable[tuple[str, int, int]]
) -> list[Crossing]:
    """``previous``: percent per quota at the last refresh (a new quota starts at 0);
    ``current``: ``(repositories, limit, used)`` now."""
    found = []
    for text, limit, used in current:
        before = previous.get(text, 0.0)
        now = 100.0 * used / limit
        for threshold in THRESHOLDS:
            if before < threshold <= now:
                found.append(Crossing(text, limit, used, threshold))
        if now < 100 <= before:
            found.append(Crossing(text, limit, used, 0))
    return found
