"""URL routing that remembers its answers.

werkzeug's matcher walks a state machine for every request, trying each ``<path:name>`` rule's
pattern over growing runs of segments: about a tenth of what a blob ``HEAD`` costs in Python.
The registry's URLs repeat (every pull asks for the same manifests and layers), and a match
depends only on the URL, the method and the rules, so the answers are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from functools import lru_cache
from typing import Any

from werkzeug.routing import Map, Rule, RuleFactory
from werkzeug.routing.matcher import StateMachineMatcher

#: Distinct (host, path, method) answers kept per process.
MATCHES = 1024


class RegistryMap(Map):
    """werkzeug's ``Map`` with a matcher that remembers its answers."""

    def __init__(self, rules: Iterable[RuleFactory] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._matcher = RememberingMatcher(self._matcher.merge_slashes)
        for factory in rules or ():
            self.add(factory)


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
