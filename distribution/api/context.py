"""What a request handler needs from the application, without importing a global app."""

from __future__ import annotations

from flask import current_app

from distribution import errors
from distribution.config import Configuration
from distribution.storage.registry import Registry

EXTENSION = "registry"


def registry() -> Registry:
    """The registry the current application serves."""
    return current_app.extensions[EXTENSION]


def config() -> Configuration:
    return registry().config


def require_delete_enabled() -> None:
    """Deletes are off unless ``storage.delete.enabled``: answer 405 ``UNSUPPORTED`` then."""
    if not config().storage.delete.enabled:
        raise errors.Unsupported("The operation is unsupported.")
