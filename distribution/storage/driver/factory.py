"""Storage drivers by name, as the ``storage:`` section of the config selects them.

Every driver is registered here, in one place, by the module that builds it. Modules are
imported only when their driver is selected, so a driver whose optional dependency is not
installed (GCS, Azure) costs nothing until chosen, and then fails with the pip extra to add.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from distribution.storage.driver.base import StorageDriver
from distribution.storage.driver.checked import CheckedDriver

Constructor = Callable[[Mapping[str, Any]], StorageDriver]

_PIP_NAME = "distribution-py"  # setup.cfg [metadata] name


class UnknownDriverError(ValueError):
    """The config names a driver nobody registered."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"unknown storage driver {name!r} (available: {', '.join(known)})")
        self.name = name
        self.known = known


class DriverUnavailableError(ValueError):
    """The selected driver needs an optional dependency that is not installed."""


def register(name: str, constructor: Constructor) -> None:
    """Make ``constructor(parameters)`` the way to build the driver called ``name``."""
    _constructors[name] = constructor


def register_module(name: str, module: str, extra: str | None = None) -> None:
    """Register a driver built by ``module.from_parameters``, imported on first use.

    ``extra`` is the pip extra that installs the driver's dependencies; if importing the
    module fails for want of a third-party package, the error tells the user to install it.
    """

    def construct(parameters: Mapping[str, Any]) -> StorageDriver:
        try:
            target = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if extra is None or (exc.name or "").split(".")[0] == __name__.split(".")[0]:
                raise
            raise DriverUnavailableError(
                f"storage driver {name!r} needs {exc.name!r}, which is not installed: "
                f"pip install '{_PIP_NAME}[{extra}]'"
            ) from exc
        return target.from_parameters(parameters)

    register(name, construct)


def names() -> list[str]:
    """The registered driver names, sorted."""
    return sorted(_constructors)


def create(
    name: str, parameters: Mapping[str, Any] | None = None, *, verify: bool = True
) -> StorageDriver:
    """Build the driver ``name`` from its config parameters, behind the checking wrapper.

    With ``verify`` the storage is tried at once (:meth:`StorageDriver.verify`), so that a bad
    bucket or a service that does not answer fails at start-up in one line; without it, the
    driver makes no request until it is used.

    Raises :class:`UnknownDriverError`, :class:`DriverUnavailableError` or
    :class:`~distribution.storage.driver.base.InvalidParameterError`, all ``ValueError``, and
    :class:`~distribution.storage.driver.base.StorageDriverError` when verification fails.
    """
    try:
        constructor = _constructors[name]
    except KeyError:
        raise UnknownDriverError(name, names()) from None
    driver = constructor(parameters or {})
    if verify:
        driver.verify()
    return CheckedDriver(driver)


_constructors: dict[str, Constructor] = {}

register_module("filesystem", "distribution.storage.driver.filesystem")
register_module("inmemory", "distribution.storage.driver.inmemory")
register_module("gcs", "distribution.storage.driver.gcs", extra="gcs")
register_module("azure", "distribution.storage.driver.azure", extra="azure")
register_module("s3", "distribution.storage.driver.s3", extra="s3")
register_module("s3aws", "distribution.storage.driver.s3", extra="s3")
