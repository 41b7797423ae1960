"""The storage side of a registry: its driver and blob store, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from distribution.config import Configuration
from distribution.storage import driver as drivers
from distribution.storage.blobs import BlobStore


@dataclass
class Registry:
    """What request handlers share: the configured driver and the global blob store."""

    config: Configuration
    driver: drivers.StorageDriver
    blobs: BlobStore = field(init=False)

    def __post_init__(self) -> None:
        self.blobs = BlobStore(self.driver)

    @classmethod
    def from_config(cls, config: Configuration) -> Registry:
        storage = config.storage
        return cls(config, drivers.create(storage.driver, storage.parameters))
