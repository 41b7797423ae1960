"""Glob patterns over repository names and tags, checked once and matched fast, with no I/O.

The syntax, shared by the access rules and the retention policies:

* ``*``: any run of characters within one path segment (never a ``/``), possibly none;
* ``**``: a whole segment only, standing for zero or more segments: ``team-a/**`` matches
  ``team-a`` and every name below it, ``**/cache`` matches ``cache`` and ``a/b/cache``,
  ``a/**/b`` matches ``a/b`` and ``a/x/y/b``, and ``**`` alone matches every name;
* ``?``: one character other than ``/``;
* ``[a-z0-9]``, ``[!0-9]`` (or ``[^0-9]``): one character (not ``/``) in, or not in, the set.

Anything else stands for itself. A pattern is refused with a :class:`PatternError` saying why
when it can never match a valid name (upper case, ``//``, a ``**`` inside a segment, an
unclosed ``[``), so a typo stops start-up instead of silently matching nothing.

Tags have no segments: in a tag pattern ``*`` matches any run of characters and ``**`` is
refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["repository", "tag"]

#: The characters that start a wildcard.
WILDCARDS = frozenset("*?[")

_REPOSITORY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
_TAG_CHARS = _REPOSITORY_CHARS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


class PatternError(ValueError):
    """A pattern that cannot be used; the message says why, for the key that holds it."""


@dataclass(frozen=True)
class Pattern:
    """A compiled glob; order patterns by :attr:`specificity` to find the one that decides."""

    text: str
    #: What every matching name starts with: the literal characters before the first
    #: wildcard (the whole text when there is none; ``team-a`` for ``team-a/**``).
    prefix: str
    #: What every matching name ends with: the literal characters after the last wildcard
    #: (``/svc`` for ``*/svc``; ``cache`` for ``**/cache``, which matches ``cache`` too).
    suffix: str
    #: Whether the pattern has no wildcard at all: it names one repository or tag.
    exact: bool
    #: How many characters of the pattern are literal, wildcards aside.
    literals: int
    _regex: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def compile(cls, text: str, kind: Kind = "repository") -> Pattern:
        """Check and compile ``text``; :class:`PatternError` says what is wrong with it."""
        if not isinstance(text, str) or not text:
            raise PatternError("a pattern must be a non-empty string")
        regex, literals = (_repository_regex if kind == "repository" else _tag_regex)(text)
        cut = next((i for i, char in enumerate(text) if char in WILDCARDS), len(text))
        if cut and text[cut - 1] == "/" and all(s == "**" for s in text[cut:].split("/")):
            cut -= 1  # ``team-a/**`` matches ``team-a`` itself
        last = max(text.rfind("*"), text.rfind("?"), text.rfind("]"))  # no name has a ]
        suffix = text[last + 1 :]
        if suffix.startswith("/") and text[last - 1 : last + 1] == "**":
            suffix = suffix[1:]  # ``**/`` may stand for nothing
        return cls(
            text=text,
            prefix=text[:cut],
            suffix=suffix,
            exact=cut == len(text),
            literals=literals,
            _regex=re.compile(regex),
        )

    def matches(self, name: str) -> bool:
        """Whether ``name`` (a valid repository name or tag) matches the whole pattern."""
        if self.exact:
            return name == self.text
        return (
            name.startswith(self.prefix)
            and name.endswith(self.suffix)
            and self._regex.fullmatch(name) is not None
        )

    def may_match_within(self, folder: str) -> bool:
        """Whether some repository named ``folder`` or below it (``folder/...``) may match.

        Judged from the literal prefix alone, so it may say yes for a folder where nothing
        matches, never no for one where something does: enough to skip whole subtrees.
        """
        if self.exact:
            return self.text == folder or self.text.startswith(folder + "/")
        return folder.startswith(self.prefix) or self.prefix.startswith(folder + "/")

    @property
    def specificity(self) -> tuple[int, bool, int]:
        """The sort key that makes the most specific pattern the greatest.

        The longest literal prefix first; then a pattern without wildcards; then the one with
        more literal characters. Callers break remaining ties by the order of the document.
        """
        return (len(self.prefix), self.exact, self.literals)


def _repository_regex(text: str) -> tuple[str, int]:
    if text.startswith("/") or text.endswith("/") or "//" in text:
        raise PatternError("path segments must not be empty (no leading, trailing or double /)")
    raw = text.split("/")
    # ``**/**`` says no more than ``**``.
    segments = [s for i, s in enumerate(raw) if not (s == "**" and i and raw[i - 1] == "**")]
    pieces: list[str] = []
    literals = len(segments) - 1  # the slashes
    previous_globstar = False
    for index, segment in enumerate(segments):
        first, last = index == 0, index == len(segments) - 1
        if segment == "**":
            previous_globstar = True
            if first and last:
                pieces.append(".*")
            elif first:
                pieces.append("(?:.*/)?")
            elif last:
                pieces.append("(?:/.*)?")
            else:
                pieces.append("/(?:.*/)?")
            continue
        if "**" in segment:
            raise PatternError("** must be a whole path segment (a/**/b); use * within one")
        if not first and not previous_globstar:
            pieces.append("/")
        previous_globstar = False
        regex, count = _segment(segment, _REPOSITORY_CHARS, "a repository name")
        pieces.append(regex)
        literals += count
    return "".join(pieces), literals


def _tag_regex(text: str) -> tuple[str, int]:
    if "**" in text:
        raise PatternError("tags have no path segments: use * (it matches any characters)")
    if "/" in text:
        raise PatternError("a tag cannot contain /")
    return _segment(text, _TAG_CHARS, "a tag")


def _segment(text: str, allowed: frozenset[str], what: str) -> tuple[str, int]:
    """The regex for one segment's characters and wildcards, and how many are literal."""
    pieces: list[str] = []
    literals = 0
    position = 0
    while position < len(text):
        char = text[position]
        if char == "*":
            pieces.append("[^/]*")
        elif char == "?":
            pieces.append("[^/]")
        elif char == "[":
            regex, position = _character_class(text, position, allowed, what)
            pieces.append(regex)
            continue
        elif char in allowed:
            pieces.append(re.escape(char))
            literals += 1
        elif char.isupper() and what == "a repository name":
            raise PatternError(f"{char!r}: repository names are lower case")
        else:
            raise PatternError(f"{char!r} cannot appear in {what}")
        position += 1
    return "".join(pieces), literals


def _character_class(text: str, start: int, allowed: frozenset[str], what: str) -> tuple[str, int]:
    """``[...]`` at ``start`` as a regex class that never matches ``/``; the position after."""
    position = start + 1
    negated = position < len(text) and text[position] in "!^"
    if negated:
        position += 1
    end = text.find("]", position)
    if end == -1:
        raise PatternError("unclosed [ in the pattern")
    body = text[position:end]
    if not body:
        raise PatternError("[] matches nothing: name at least one character")
    members: list[str] = []
    index = 0
    while index < len(body):
        low = body[index]
        if low not in allowed:
            raise PatternError(f"{low!r} cannot appear in {what}")
        if index + 2 < len(body) and body[index + 1] == "-":
            high = body[index + 2]
            if high not in allowed or high < low:
                raise PatternError(f"bad range {low}-{high} in [{body}]")
            members.append(f"{re.escape(low)}-{re.escape(high)}")
            index += 3
        else:
            members.append(re.escape(low))
            index += 1
    # A range may span ``/`` (``[.-9]``, ``[--z]``): the lookahead keeps every class off it.
    return f"(?!/)[{'^' if negated else ''}{''.join(members)}]", end + 1
