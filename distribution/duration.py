"""Go's ``time.Duration`` text (``"10s"``, ``"1h30m"``, ``"100ms"``), as config files write it."""

from __future__ import annotations

import re
from fractions import Fraction

_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


#: Go's ``time.Duration`` is an int64 of nanoseconds (about 292 years either way).
_MIN, _MAX = -(1 << 63), (1 << 63) - 1


def fits(nanoseconds: int) -> bool:
    """Whether Go can hold the duration; it refuses a longer one (``invalid duration``)."""
    return _MIN <= nanoseconds <= _MAX


def parse(text: str) -> int | None:
    """The nanoseconds in a Go duration string (``time.ParseDuration``), or None."""
    sign = -1 if text[:1] == "-" else 1
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return 0
    total, position = Fraction(0), 0
    while position < len(body):
        match = _PART.match(body, position)
        if match is None:
            return None
        total += Fraction(match[1]) * _UNITS[match[2]]
        position = match.end()
    nanoseconds = sign * int(total)
    return nanoseconds if body and fits(nanoseconds) else None
