"""Storage middleware: the ``middleware.storage`` list, as the Go registry applies it.

In Go a storage middleware wraps the driver; the three that ship with distribution
(``cloudfront``, ``redirect``, and v3's ``rewrite``) change only the URL a blob ``GET`` or
``HEAD`` is redirected to, which is all they do here: each wraps the redirector before it, the
first wrapping the driver's own presigned URLs. As in Go, nothing is redirected while
``storage.redirect.disable`` is true.

Go ships no registry or repository middleware, and stops at start-up on a name it does not
know (storage and registry) or fails every request (repository): every unknown name stops
``registry serve`` here, with one line naming the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from distribution.config import ConfigError, Configuration, Middleware
from distribution.storage.driver import StorageDriver


class Redirector(Protocol):
    """Where a client may fetch the file at ``path`` itself, or None to serve it here."""

    def redirect_url(
        self, path: str, method: str = "GET", remote_addr: str | None = None
    ) -> str | None: ...


class MiddlewareError(ValueError):
    """A middleware option is unusable; ``option`` names it."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


class DriverRedirects:
    """The driver's own URLs (presigned, SAS), the innermost redirector."""

    def __init__(self, driver: StorageDriver) -> None:
        self.driver = driver

    def redirect_url(
        self, path: str, method: str = "GET", remote_addr: str | None = None
    ) -> str | None:
        return self.driver.redirect_url(path, method)


Parse = Callable[[Mapping[str, Any]], Any]
Wrap = Callable[[Any, Redirector, StorageDriver], Redirector]
#: ``parse(options) -> settings`` (checks only) and ``wrap(settings, inner, driver)``.
Factory = tuple[Parse, Wrap]


def factories() -> dict[str, Factory]:
    from distribution.storage.middleware import cloudfront, redirect, rewrite

    return {
        "cloudfront": (cloudfront.parse, cloudfront.wrap),
        "redirect": (redirect.parse, redirect.wrap),
        "rewrite": (rewrite.parse, rewrite.wrap),
    }


def check(config: Configuration) -> None:
    """Refuse, naming the entry, what Go would refuse; read every storage middleware's options."""
    for section in ("registry", "repository"):
        for index, entry in enumerate(config.middleware.get(section, ())):
            raise ConfigError(
                f"middleware.{section}[{index}].name",
                f"no {section} middleware registered with name: {entry.name}",
            )
    _parsed(config.middleware.get("storage", ()))


def build(entries: Sequence[Middleware], driver: StorageDriver) -> Redirector:
    """The redirector for ``middleware.storage``: each entry wraps the one before."""
    redirector: Redirector = DriverRedirects(driver)
    for (_, wrap), settings in _parsed(entries):
        redirector = wrap(settings, redirector, driver)
    return redirector


def _parsed(entries: Sequence[Middleware]) -> list[tuple[Factory, Any]]:
    if not entries:
        return []  # without importing them: cloudfront needs cryptography
    known = factories()
    parsed = []
    for index, entry in enumerate(entries):
        key = f"middleware.storage[{index}]"
        factory = known.get(entry.name or "")
        if factory is None:
            raise ConfigError(
                f"{key}.name",
                f"no storage middleware registered with name: {entry.name} "
                f"(available: {', '.join(sorted(known))})",
            )
        if entry.disabled:
            raise ConfigError(
                f"{key}.disabled",
                "the Go registry ignores it and applies the middleware all the same: "
                "remove the entry (or the key)",
            )
        try:
            parsed.append((factory, factory[0](entry.options)))
        except MiddlewareError as err:
            raise ConfigError(f"{key}.options.{err.option}", err.message) from None
    return parsed


def option_string(options: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    """A string option as Go reads one: absent is None (or an error when ``required``)."""
    value = options.get(name)
    if value is None:
        if required:
            raise MiddlewareError(name, f"no {name} provided")
        return None
    if not isinstance(value, str):
        raise MiddlewareError(name, f"{name} must be a string")
    return value
