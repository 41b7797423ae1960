"""Repository names and tags as the OCI distribution spec defines them, with no I/O."""

from __future__ import annotations

import re

from distribution import errors

#: Longest repository name accepted, as in distribution.
NAME_MAX_LENGTH = 255

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_name(name: str) -> None:
    """Raise :class:`~distribution.errors.NameInvalid` unless ``name`` is a repository name.

    The grammar rules out ``..``, empty components and every character a path trick needs.
    """
    if len(name) > NAME_MAX_LENGTH:
        raise errors.NameInvalid(
            f"repository name must not be more than {NAME_MAX_LENGTH} characters"
        )
    if not is_name(name):
        raise errors.NameInvalid("invalid repository name", detail={"name": name})


def is_name(name: str) -> bool:
    """Whether ``name`` is a repository name (see :func:`check_name`)."""
    return len(name) <= NAME_MAX_LENGTH and _NAME.fullmatch(name) is not None


def is_tag(reference: str) -> bool:
    """Whether ``reference`` is a valid tag (as opposed to a digest or garbage)."""
    return _TAG.fullmatch(reference) is not None


def check_tag(tag: str) -> None:
    """Raise :class:`~distribution.errors.TagInvalid` unless ``tag`` is a valid tag."""
    if not is_tag(tag):
        raise errors.TagInvalid("invalid tag", detail={"tag": tag})
