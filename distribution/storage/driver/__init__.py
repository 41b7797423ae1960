"""Storage drivers: the contract, the checking wrapper, and the factory that builds drivers.

Callers get drivers from :func:`create` and program against :class:`StorageDriver`.
"""

from distribution.storage.driver.base import (
    FileInfo,
    FileWriter,
    InvalidOffsetError,
    InvalidParameterError,
    InvalidPathError,
    LockTimeoutError,
    PathNotFoundError,
    SkipDir,
    StorageDriver,
    StorageDriverError,
    WalkFn,
)
from distribution.storage.driver.factory import (
    DriverUnavailableError,
    UnknownDriverError,
    create,
    register,
    register_module,
)

__all__ = [
    "DriverUnavailableError",
    "FileInfo",
    "FileWriter",
    "InvalidOffsetError",
    "InvalidParameterError",
    "InvalidPathError",
    "LockTimeoutError",
    "PathNotFoundError",
    "SkipDir",
    "StorageDriver",
    "StorageDriverError",
    "UnknownDriverError",
    "WalkFn",
    "create",
    "register",
    "register_module",
]
