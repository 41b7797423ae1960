"""The repositories of the registry, found by walking ``repositories/`` as Go v3 does.

A folder is a repository when it holds ``_manifests``; folders starting with ``_`` are never
descended into, and names may nest (``a`` and ``a/b`` are both repositories). Repositories
come in Go's path order, component by component (``a``, ``a/b``, ``a-b``), which is what
``last`` compares against.

The catalog leaves out a repository left with nothing (every tag and manifest deleted), which
Go lists for ever since it never removes the emptied folders; :func:`walk` still finds it, for
the garbage collector to clean. Which repositories those are, the walk learns from the notes of
:mod:`.emptied` in the folders it lists anyway, looking into a repository only when it is noted
(or when the storage was never swept).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from distribution.storage import ahead, emptied, paths
from distribution.storage.driver import PathNotFoundError, StorageDriver


class Filter(Protocol):
    """Which repositories a listing shows (such as the access rules' visibility)."""

    def includes(self, name: str) -> bool:
        """Whether repository ``name`` is listed."""
        ...

    def may_contain(self, folder: str) -> bool:
        """Whether ``folder`` or a name below it may be listed; False skips the subtree."""
        ...


class Found(NamedTuple):
    """A repository the walk found: whether it holds anything (see :class:`_Look`), and
    whether its folder holds an :mod:`.emptied` note."""

    name: str
    content: bool
    noted: bool


def path_key(name: str) -> str:
    """Sort key of Go's ``lessPath``: ``/`` sorts before every other character."""
    return name.replace("/", "\x00")


def repositories(
    driver: StorageDriver, limit: int, last: str = "", only: Filter | None = None
) -> tuple[list[str], bool]:
    """Up to ``limit`` repository names after ``last`` (of those ``only`` lets through), and
    whether more remain.

    Folders that sort wholly before ``last`` are skipped without being listed, and the walk
    stops a few folders past the page, so a page costs about one listing per folder on its
    path rather than a walk of the whole tree. A filter counts before the page is cut, so
    every page but the last is full, and folders it rules out are not walked at all.
    """
    found: list[str] = []
    look = _Look(driver, last, only, check=True, trust=emptied.noted(driver))
    for name, content, _ in _walk(look):
        if not content:
            continue
        if len(found) == limit:
            return found, True
        found.append(name)
    return found, False


def walk(driver: StorageDriver) -> Iterator[str]:
    """Every repository, in catalog order, found as the walk goes."""
    return (found.name for found in _walk(_Look(driver, "", None, check=False)))


def looked_into(driver: StorageDriver) -> Iterator[Found]:
    """Every repository, each looked into for content (no note trusted)."""
    return _walk(_Look(driver, "", None, check=True))


@dataclass(frozen=True)
class _Look:
    """What the walk reads of one folder: its entries and, for a repository to list, whether
    it holds anything (``check``; else it counts as holding something). With ``trust``, a
    repository without an :mod:`.emptied` note holds something."""

    driver: StorageDriver
    last: str
    only: Filter | None
    check: bool
    trust: bool = False

    def __call__(self, folder: str, name: str) -> tuple[list[str], bool | None]:
        """``folder``'s entry names, sorted, none when it is gone; and None when it is no
        repository to list (the root, no ``_manifests``, at or before ``last``, filtered
        out), else whether it has content."""
        try:
            entries = self.driver.names(folder)
        except PathNotFoundError:
            entries = []
        if (
            not name
            or paths.MANIFESTS_ENTRY not in entries
            or path_key(name) <= path_key(self.last)
            or (self.only is not None and not self.only.includes(name))
        ):
            return entries, None
        if not self.check or (self.trust and paths.EMPTIED_ENTRY not in entries):
            return entries, True
        return entries, emptied.has_content(self.driver, name)


def _walk(
    look: _Look,
    folder: str = paths.REPOSITORIES,
    name: str = "",
    seen: tuple[list[str], bool | None] | None = None,
) -> Iterator[Found]:
    """The repositories at and under ``folder``; the folders below each level are looked at a
    few at a time ahead of the one walked (``seen``: ``folder``'s look, made)."""
    entries, content = seen if seen is not None else look(folder, name)
    if content is not None:
        yield Found(name, content, paths.EMPTIED_ENTRY in entries)
    below: list[tuple[str, str]] = []
    for entry in entries:
        if entry.startswith("_"):
            continue
        repository = f"{name}/{entry}" if name else entry
        if _before(repository, look.last) or (
            look.only is not None and not look.only.may_contain(repository)
        ):
            continue
        below.append((f"{folder}/{entry}", repository))
    for (child, repository), made in ahead.ordered(lambda item: look(*item), below):
        yield from _walk(look, child, repository, made)


def _before(folder: str, last: str) -> bool:
    """Whether every repository at or under ``folder`` sorts at or before ``last``."""
    return path_key(folder) < path_key(last) and not last.startswith(folder + "/")
