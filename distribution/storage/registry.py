"""The storage side of a registry: its driver and blob store, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field

from distribution.cache.base import NO_CACHE, BlobDescriptorCache
from distribution.cache.factory import from_config as cache_from_config
from distribution.config import Configuration
from distribution.storage import driver as drivers
from distribution.storage import locks, middleware
from distribution.storage.blobs import BlobStore
from distribution.storage.contents import ContentCache
from distribution.storage.locks import Locks
from distribution.storage.tags import TagLists


@dataclass
class Registry:
    """What request handlers share: the configured driver, cache and global blob store."""

    config: Configuration
    driver: drivers.StorageDriver
    cache: BlobDescriptorCache = NO_CACHE
    blobs: BlobStore = field(init=False)
    #: Locks of uploads, shared with every other worker and replica.
    locks: Locks = field(init=False)
    #: This process's tag lists, each valid while its tags folder is unchanged.
    tag_lists: TagLists = field(init=False, default_factory=TagLists)
    #: This process's small files (links, manifests), each valid while the file is unchanged.
    contents: ContentCache = field(init=False, default_factory=ContentCache)

    def __post_init__(self) -> None:
        redirector = middleware.build(self.config.middleware.get("storage", ()), self.driver)
        self.blobs = BlobStore(self.driver, self.cache, redirector, self.contents)
        self.locks = locks.from_config(self.config, self.driver)

    @classmethod
    def from_config(cls, config: Configuration) -> Registry:
        """The registry a worker serves, its storage not verified again: ``registry serve``
        verified it before forking the workers (:func:`distribution.cli.prepare`). A worker
        that fails while booting makes gunicorn stop the whole server, so storage unreachable
        while one starts (the second still booting, or one respawned after the OOM killer)
        would take the registry down rather than have it answer 503 until storage is back."""
        storage = config.storage
        driver = drivers.create(storage.driver, storage.parameters, verify=False)
        return cls(config, driver, cache_from_config(config))
