"""``n``/``last`` pagination of the tags and catalog lists, as distribution v3 does it.

Pure functions: parsing ``n`` (with each list's own rules and error details) and building the
``Link: <...>; rel="next"`` header, whose URL is the request's own path (relative, as Go
writes it) with ``last`` and ``n`` in Go's sorted query order.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from urllib.parse import urlencode

from distribution import errors

#: Page size of the catalog when the client gives no ``n`` (Go's ``defaultReturnedEntries``).
DEFAULT_CATALOG_ENTRIES = 100
#: Most referrers in one answer (and the default): one page for any client that does not
#: follow ``Link``, yet an index far below the spec's 4 MiB.
REFERRERS_PAGE = 1000

#: Go's ``strconv.Atoi`` on 64 bits: a sign and at most 19 digits fit (larger ones are refused).
_ATOI = re.compile(r"[+-]?[0-9]{1,19}")
_INT64 = range(-(2**63), 2**63)


def tags_limit(raw: str | None, maximum: int) -> int | None:
    """The tags page size for query value ``raw``: None lists every tag.

    Like Go 3.1.1: no (or an empty) ``n`` lists all tags; a non-numeric or negative ``n`` is
    ``PAGINATION_NUMBER_INVALID`` with ``{"n": <number>}`` as detail (0 for a non-number); an
    ``n`` above ``maximum`` (``tags.maxtags``) is lowered to it, and the ``Link`` header leads
    to the rest, as the OCI distribution spec allows.
    """
    if not raw:
        return None
    n = _atoi(raw)
    if n is None or n < 0:
        raise errors.PaginationNumberInvalid(detail={"n": n or 0})
    return min(n, maximum)


def catalog_limit(raw: str | None, maximum: int) -> int:
    """The catalog page size for query value ``raw``, at most ``maximum``.

    Like Go: the default is 100 (or ``maximum`` if lower); a non-numeric or negative ``n`` is
    ``PAGINATION_NUMBER_INVALID`` detailed with the text given, one above ``maximum`` with
    the number.
    """
    if not raw:
        return min(DEFAULT_CATALOG_ENTRIES, maximum)
    n = _atoi(raw)
    if n is None or n < 0:
        raise errors.PaginationNumberInvalid(detail={"n": raw})
    if n > maximum:
        raise errors.PaginationNumberInvalid(detail={"n": n})
    return n


def referrers_limit(raw: str | None) -> int:
    """The referrers page size for query value ``raw`` (our extension: the spec lets a
    registry page as it likes): :data:`REFERRERS_PAGE` unless a smaller ``n`` is asked."""
    if not raw:
        return REFERRERS_PAGE
    n = _atoi(raw)
    if n is None or n < 0 or n > REFERRERS_PAGE:
        raise errors.PaginationNumberInvalid(detail={"n": raw})
    return n


def page(items: Sequence[str], limit: int | None, last: str) -> tuple[list[str], bool]:
    """The sorted ``items`` after ``last``, at most ``limit`` of them, and whether more remain.

    ``limit`` 0 asks for nothing and, as in Go, gets no next page either.
    """
    if limit == 0:
        return [], False
    start = bisect.bisect_right(items, last) if last else 0
    end = len(items) if limit is None else start + limit
    return list(items[start:end]), end < len(items)


def next_link(path: str, limit: int, last: str, *kept: tuple[str, str]) -> str:
    """The ``Link`` header pointing at the page after ``last``, with the ``kept`` query
    parameters (a filter), all in sorted order as Go writes them."""
    query = sorted([*kept, ("last", last), ("n", str(limit))])
    return f'<{path}?{urlencode(query)}>; rel="next"'


def _atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: optional sign and ASCII digits, nothing else, within 64 bits."""
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if value in _INT64 else None
