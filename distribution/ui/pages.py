"""The pure parts of the UI's pages: pagination, namespaces, filters, safe redirects, and how
sizes and times read. No I/O, no Flask."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote, urlsplit

T = TypeVar("T")

#: Repositories per page of the repository list; tags per page of a repository.
REPOSITORIES_PER_PAGE = 50
TAGS_PER_PAGE = 100
#: What a missing size or time reads as (an en dash).
NOTHING = "\u2013"
#: Namespace for names without a ``/``.
TOP_LEVEL = ""


@dataclass(frozen=True)
class Page:
    """One page of a list: its items, its number (from 1) and how many pages there are."""

    items: Sequence
    number: int
    count: int
    total: int
    first: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.count else None

    @property
    def numbers(self) -> list[int | None]:
        """Page numbers to offer: the first, the last, and two around this one (None: a gap)."""
        wanted = {1, self.count, *range(self.number - 2, self.number + 3)}
        shown: list[int | None] = []
        for number in sorted(n for n in wanted if 1 <= n <= self.count):
            if shown and number - (shown[-1] or 0) > 1:
                shown.append(None)
            shown.append(number)
        return shown


def paginate(items: Sequence[T], number: int, size: int) -> Page:
    """Page ``number`` of ``items`` (clamped to the pages there are)."""
    count = max(1, math.ceil(len(items) / size))
    number = min(max(1, number), count)
    first = (number - 1) * size
    return Page(items[first : first + size], number, count, len(items), first)


def page_number(text: str | None) -> int:
    """A ``page`` parameter: anything that is not a positive number is page 1."""
    if text is None or not text.isdigit() or len(text) > 9:
        return 1
    return max(1, int(text))


def namespace(name: str) -> str:
    """A repository's namespace: the part before its first ``/`` (``""`` for none)."""
    return name.split("/", 1)[0] if "/" in name else TOP_LEVEL


def namespaces(names: Sequence[str]) -> list[tuple[str, int]]:
    """Each namespace with its number of repositories, sorted by name."""
    return sorted(Counter(namespace(name) for name in names).items())


def matching(names: Sequence[str], text: str, within: str | None = None) -> Sequence[str]:
    """``names`` containing ``text`` (case-insensitive), in namespace ``within`` if given."""
    if within is not None:
        names = [name for name in names if namespace(name) == within]
    text = text.strip().lower()
    if not text:
        return names
    return [name for name in names if text in name.lower()]


def safe_next(target: str | None, root: str, fallback: str) -> str:
    """Where to go after signing in: ``target`` if it is a path of the UI on this host, else
    ``fallback``. Refuses absolute and scheme-relative URLs (``//evil``, ``/\\evil``) and
    anything outside ``root`` (the UI's own path)."""
    if not target or len(target) > 2048 or any(ch in target for ch in "\\\r\n\t"):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return fallback
    # A browser resolves ``.`` and ``..`` segments (``%2e`` too) before it follows the
    # redirect: ``/ui/../v2/_catalog`` would leave the UI, ``/reg/ui/../../x`` the registry.
    if any(unquote(segment) in (".", "..") for segment in parts.path.lower().split("/")):
        return fallback
    if not (parts.path == root.rstrip("/") or parts.path.startswith(root)):
        return fallback
    return target


def human_size(size: int | None) -> str:
    """Bytes as people read them, in SI units as docker prints them: ``3.2 MB``."""
    if size is None:
        return NOTHING
    if size < 1000:
        return f"{size} B"
    value = float(size)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000
        if value < 999.95 or unit == "PB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``when`` was, roughly: ``just now``, ``5 minutes ago``, ``3 days ago``."""
    if when is None:
        return NOTHING
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < -60:
        return "in the future"
    if seconds < 45:
        return "just now"
    for unit, length in (("year", 31536000), ("month", 2592000), ("day", 86400),
                         ("hour", 3600), ("minute", 60)):  # fmt: skip
        if seconds >= length * 0.95:
            count = max(1, round(seconds / length))
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "1 minute ago"


def timestamp(when: datetime | None) -> str:
    """``when`` in UTC, to the second: ``2026-05-01 12:00:03 UTC``."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else ""


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits, as docker shows image IDs."""
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:12]}" if hex_ else digest


def command_line(parts: Sequence[str]) -> str:
    """An entrypoint or command as ``docker inspect`` prints it: a JSON array."""
    return json.dumps(list(parts), ensure_ascii=False)


def number(value: int) -> str:
    """``12,345``."""
    return f"{value:,}"
