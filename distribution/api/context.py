"""What a request handler needs from the application, without importing a global app."""

from __future__ import annotations

from flask import current_app

from distribution import errors, proxy
from distribution.config import Configuration
from distribution.storage.registry import Registry

EXTENSION = "registry"


def registry() -> Registry:
    """The registry the current application serves."""
    return current_app.extensions[EXTENSION]


def config() -> Configuration:
    return registry().config


def require_delete_enabled() -> None:
    """Deletes are off unless ``storage.delete.enabled``, and always in a pull-through cache
    (whose content is the upstream's, as Go's proxy refuses them): 405 ``UNSUPPORTED``."""
    settings = config()
    if not settings.storage.delete.enabled or proxy.enabled(settings):
        raise errors.Unsupported("The operation is unsupported.")
