"""URL routing that remembers its answers.

werkzeug's matcher walks a state machine for every request, trying each ``<path:name>`` rule's
pattern over growing runs of segments: about a tenth of what a blob ``HEAD`` costs in Python.
The registry's URLs repeat (every pull asks for the same manifests and layers), and a match
depends only on the URL, the method and the rules, so the answers are kept. So is the form of
each ``Host`` werkzeug binds to, which it would otherwise run through the ``idna`` codec for
every request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from functools import lru_cache
from typing import Any

from werkzeug.exceptions import BadHost
from werkzeug.routing import Map, MapAdapter, Rule, RuleFactory
from werkzeug.routing.matcher import StateMachineMatcher

#: Distinct (host, path, method) answers kept per process.
MATCHES = 1024
#: Distinct ``Host`` values whose bound form is kept per process.
HOSTS = 64


class RegistryMap(Map):
    """werkzeug's ``Map`` with a matcher that remembers its answers."""

    def __init__(self, rules: Iterable[RuleFactory] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._matcher = RememberingMatcher(self._matcher.merge_slashes)
        for factory in rules or ():
            self.add(factory)

    def bind(
        self,
        server_name: str,
        script_name: str | None = None,
        subdomain: str | None = None,
        url_scheme: str = "http",
        default_method: str = "GET",
        path_info: str | None = None,
        query_args: Mapping[str, Any] | str | None = None,
    ) -> MapAdapter:
        """werkzeug's ``bind``, with the server name's normal form remembered per host."""
        if self.host_matching:
            return super().bind(
                server_name,
                script_name,
                subdomain,
                url_scheme,
                default_method,
                path_info,
                query_args,
            )
        return MapAdapter(
            self,
            server_name_of(server_name),
            "/" if script_name is None else script_name,
            self.default_subdomain if subdomain is None else subdomain,
            url_scheme,
            "/" if path_info is None else path_info,
            default_method,
            query_args,
        )


class RememberingMatcher(StateMachineMatcher):
    """A state machine matcher keeping the last :data:`MATCHES` successful matches.

    A failed match (404, 405, a redirect) raises, and is not kept. Each answer's values are
    a fresh dict, since Flask hands the view (and URL value preprocessors) that dict.
    """

    def __init__(self, merge_slashes: bool) -> None:
        super().__init__(merge_slashes)
        self._remembered = lru_cache(MATCHES)(super().match)

    def update(self) -> None:
        super().update()
        self._remembered.cache_clear()

    def match(
        self, domain: str, path: str, method: str, websocket: bool
    ) -> tuple[Rule, MutableMapping[str, Any]]:
        rule, values = self._remembered(domain, path, method, websocket)
        return rule, dict(values)


@lru_cache(HOSTS)
def server_name_of(host: str) -> str:
    """``host`` as werkzeug's ``bind`` writes it: lower case, the name (not the port) in IDNA;
    ``BadHost`` (400) when it is no host name. Failures are not remembered."""
    name, separator, port = host.lower().partition(":")
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise BadHost() from error
    return f"{name}{separator}{port}"
