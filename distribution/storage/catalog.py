"""The repositories of the registry, found by walking ``repositories/`` as Go v3 does.

A folder is a repository when it holds ``_manifests``; folders starting with ``_`` are never
descended into, and names may nest (``a`` and ``a/b`` are both repositories). Repositories
come in Go's path order, component by component (``a``, ``a/b``, ``a-b``), which is what
``last`` compares against.

The catalog leaves out a repository left with nothing (every tag and manifest deleted), which
Go lists for ever since it never removes the emptied folders; :func:`walk` still finds it, for
the garbage collector to clean.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver


class Filter(Protocol):
    """Which repositories a listing shows (such as the access rules' visibility)."""

    def includes(self, name: str) -> bool:
        """Whether repository ``name`` is listed."""
        ...

    def may_contain(self, folder: str) -> bool:
        """Whether ``folder`` or a name below it may be listed; False skips the subtree."""
        ...


def path_key(name: str) -> str:
    """Sort key of Go's ``lessPath``: ``/`` sorts before every other character."""
    return name.replace("/", "\x00")


def repositories(
    driver: StorageDriver, limit: int, last: str = "", only: Filter | None = None
) -> tuple[list[str], bool]:
    """Up to ``limit`` repository names after ``last`` (of those ``only`` lets through), and
    whether more remain.

    Folders that sort wholly before ``last`` are skipped without being listed, and the walk
    stops at the first name past the page, so a page costs about one listing per folder on
    its path rather than a walk of the whole tree. A filter counts before the page is cut,
    so every page but the last is full, and folders it rules out are not walked at all.
    """
    found: list[str] = []
    for name in _walk(driver, paths.REPOSITORIES, "", last, only):
        if only is not None and not only.includes(name):
            continue
        if not has_content(driver, name):
            continue
        if len(found) == limit:
            return found, True
        found.append(name)
    return found, False


def has_content(driver: StorageDriver, name: str) -> bool:
    """Whether the repository has a tag or a manifest; usually one look into its tags folder."""
    if driver.has_children(paths.tags(name)):
        return True
    for algorithm_folder in _entries(driver, paths.manifest_revisions(name)):
        for revision in _entries(driver, algorithm_folder):
            try:
                driver.stat(f"{revision}/link")
            except PathNotFoundError:
                continue  # a deleted manifest: Go and we leave its folder
            return True
    return False


def _entries(driver: StorageDriver, folder: str) -> list[str]:
    try:
        return driver.list(folder)
    except PathNotFoundError:
        return []


def walk(driver: StorageDriver) -> Iterator[str]:
    """Every repository, in catalog order, found as the walk goes."""
    return _walk(driver, paths.REPOSITORIES, "", "", None)


def _walk(
    driver: StorageDriver, folder: str, name: str, last: str, only: Filter | None
) -> Iterator[str]:
    try:
        children = sorted(driver.list(folder), key=lambda child: child.rsplit("/", 1)[1])
    except PathNotFoundError:
        return
    entries = [child.rsplit("/", 1)[1] for child in children]
    if name and "_manifests" in entries and path_key(name) > path_key(last):
        yield name
    for child, entry in zip(children, entries, strict=True):
        if entry.startswith("_"):
            continue
        repository = f"{name}/{entry}" if name else entry
        if _before(repository, last) or (only is not None and not only.may_contain(repository)):
            continue
        yield from _walk(driver, child, repository, last, only)


def _before(folder: str, last: str) -> bool:
    """Whether every repository at or under ``folder`` sorts at or before ``last``."""
    return path_key(folder) < path_key(last) and not last.startswith(folder + "/")
