"""Version-aware ordering of tag names: ``v1.9`` before ``v1.10``, ``1.0-rc1`` before ``1.0``.

A tag is cut into runs of digits and of other characters; digit runs compare as numbers.
A text run that starts a pre-release (``-`` or ``~`` then a letter: ``-rc1``, ``-beta``)
sorts before the end of the name, every other text run after it, so ``1.0-rc1 < 1.0 <
1.0.1``. Ties (``01`` and ``1``) fall back to the plain text, so the order is total.
"""

from __future__ import annotations

import re
from functools import lru_cache

_RUNS = re.compile(r"\d+|\D+")
_PRE_RELEASE = re.compile(r"[-~][A-Za-z]")

# Kinds of runs, in the order they sort at the same position.
_PRE = 0
_END = 1
_NUMBER = 2
_TEXT = 3

Key = tuple[tuple[tuple[int, int, str], ...], str]


@lru_cache(maxsize=65536)
def key(tag: str) -> Key:
    """The sort key of ``tag`` (remembered: a 10,000-tag repository is sorted often)."""
    parts = []
    for run in _RUNS.findall(tag):
        if run.isdigit():
            parts.append((_NUMBER, int(run), ""))
        elif _PRE_RELEASE.match(run):
            parts.append((_PRE, 0, run.lower()))
        else:
            parts.append((_TEXT, 0, run.lower()))
    parts.append((_END, 0, ""))
    return tuple(parts), tag
