"""Access controllers by name, as the ``auth:`` section of the config selects them.

Each controller module offers ``from_parameters(parameters)`` (build it for a worker) and
``check(parameters)`` (the start-up check ``registry serve`` runs once, which may also prepare
files, such as a missing htpasswd file). An unknown name is an error, never an open registry.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from distribution.auth.base import AccessController
from distribution.config import Auth, ConfigError, Configuration

_MODULES = {
    "htpasswd": "distribution.auth.htpasswd",
    "silly": "distribution.auth.silly",
    "token": "distribution.auth.token",
}


def names() -> list[str]:
    """The registered controller names, sorted."""
    return sorted(_MODULES)


def create(auth: Auth) -> AccessController | None:
    """The controller ``auth`` selects, or None when the registry is open."""
    if auth.type is None:
        return None
    return _module(auth.type).from_parameters(auth.parameters)


def check(config: Configuration) -> None:
    """Validate the ``auth`` section at start-up; ConfigError names the bad key."""
    if config.auth.type is not None:
        _module(config.auth.type).check(config.auth.parameters)


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(_MODULES[name])
    except KeyError:
        raise ConfigError(
            "auth", f"unknown access controller {name!r} (available: {', '.join(names())})"
        ) from None
