"""``redirect``: blob URLs on another host, as Go's storage middleware builds them.

``baseurl`` needs a scheme and a host; the URL is ``scheme://host`` + the base URL's path
(distribution v3; 2.8 drops it) + the storage path (``/docker/registry/v2/blobs/...``).
"""

from __future__ import annotations

import posixpath
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distribution.storage.driver import StorageDriver
from distribution.storage.middleware import MiddlewareError, Redirector, option_string


@dataclass(frozen=True)
class Settings:
    scheme: str
    host: str
    path: str


def parse(options: Mapping[str, Any]) -> Settings:
    base = option_string(options, "baseurl", required=True)
    assert base is not None
    parsed = urllib.parse.urlsplit(base)
    if not parsed.scheme:
        raise MiddlewareError("baseurl", "no scheme specified for redirect baseurl")
    if not parsed.netloc:
        raise MiddlewareError("baseurl", "no host specified for redirect baseurl")
    return Settings(parsed.scheme, parsed.netloc, parsed.path)


def wrap(settings: Settings, inner: Redirector, driver: StorageDriver) -> Redirector:
    return _Redirect(settings)


class _Redirect:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def redirect_url(
        self, path: str, method: str = "GET", remote_addr: str | None = None
    ) -> str | None:
        if self.settings.path:
            path = posixpath.join(self.settings.path, path.lstrip("/"))
        return urllib.parse.urlunsplit(
            (self.settings.scheme, self.settings.host, urllib.parse.quote(path), "", "")
        )
