"""``rewrite`` (distribution v3): the inner redirect URL with another ``scheme``, ``host``, or
without the ``trimpathprefix`` at the start of its path; its query (a signature) is kept."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distribution.storage.driver import StorageDriver
from distribution.storage.middleware import Redirector, option_string


@dataclass(frozen=True)
class Settings:
    scheme: str | None
    host: str | None
    trimpathprefix: str | None


def parse(options: Mapping[str, Any]) -> Settings:
    return Settings(
        option_string(options, "scheme"),
        option_string(options, "host"),
        option_string(options, "trimpathprefix"),
    )


def wrap(settings: Settings, inner: Redirector, driver: StorageDriver) -> Redirector:
    return _Rewrite(settings, inner)


class _Rewrite:
    def __init__(self, settings: Settings, inner: Redirector) -> None:
        self.settings = settings
        self.inner = inner

    def redirect_url(
        self, path: str, method: str = "GET", remote_addr: str | None = None
    ) -> str | None:
        url = self.inner.redirect_url(path, method, remote_addr)
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        trim = self.settings.trimpathprefix
        new_path = parts.path.removeprefix(trim) if trim else parts.path
        return urllib.parse.urlunsplit(
            (
                self.settings.scheme or parts.scheme,
                self.settings.host or parts.netloc,
                new_path,
                parts.query,
                parts.fragment,
            )
        )
