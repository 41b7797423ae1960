"""Where the UI takes storage usage from, once the registry measures it.

The repositories page shows, per repository, the bytes its tags reach (worked out by
:mod:`distribution.ui.cache` from the manifests). What the registry *stores* per repository
and in total (blobs shared with other repositories counted apart, untagged manifests
included) is the usage job's to measure. It hands the UI an object with this shape in
``app.extensions[EXTENSION]``; without one the UI shows only what it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import Flask

#: The ``app.extensions`` key of the usage provider.
EXTENSION = "distribution.usage"


@dataclass(frozen=True)
class Usage:
    """Stored bytes: those no other repository shares, and those shared."""

    own: int
    shared: int = 0


class Provider(Protocol):
    def repository(self, name: str) -> Usage | None:
        """The usage of repository ``name`` as last measured, None if not measured yet."""

    def total(self) -> Usage | None:
        """The usage of the whole registry as last measured."""


def provider(app: Flask) -> Provider | None:
    return app.extensions.get(EXTENSION)
