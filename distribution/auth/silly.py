"""The ``silly`` access controller, for development only, as Go's.

Any request carrying an ``Authorization`` header passes, as user ``silly``; one without gets
the Bearer challenge naming ``realm``, ``service`` and the scope it needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from distribution.auth.base import (
    Access,
    AccessController,
    Grant,
    Unauthenticated,
    quoted,
    scope,
    string_option,
)

USER = "silly"


def from_parameters(parameters: Mapping[str, Any]) -> SillyController:
    return SillyController(
        realm=string_option(parameters, "realm", "auth.silly"),
        service=string_option(parameters, "service", "auth.silly"),
    )


def check(parameters: Mapping[str, Any]) -> None:
    from_parameters(parameters)


class SillyController(AccessController):
    def __init__(self, realm: str, service: str) -> None:
        self.realm = realm
        self.service = service

    def authorized(self, headers: Mapping[str, str], accesses: Sequence[Access]) -> Grant:
        if headers.get("Authorization"):
            return Grant(USER)
        challenge = f"Bearer realm={quoted(self.realm)},service={quoted(self.service)}"
        if accesses:
            challenge += f",scope={quoted(scope(accesses))}"
        raise Unauthenticated(challenge, "no authorization header", presented=False)
