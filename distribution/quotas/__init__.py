"""Storage quotas (``storage.maintenance.quotas``): a namespace over its limit takes no pushes.

Our extension (the Go registry ignores the key). Each entry names repositories with the
access rules' glob patterns and a limit::

    storage:
      maintenance:
        quotas:
          - {repositories: "team-a/**", limit: 50GiB}

What a quota uses is what :mod:`distribution.usage` counts for the repositories it matches
(each blob once). Over the limit, starting an upload (mounts included) and pushing a manifest
are refused with 403 ``DENIED`` until deletes or retention bring the figure under it; pulls
and deletes always work. The figure is the usage job's, so it lags by at most one refresh
(``storage.maintenance.usage.interval``, 1 minute by default) plus :data:`guard.REFRESH`.

* :mod:`~distribution.quotas.rules`: the entries, checked;
* :mod:`~distribution.quotas.guard`: the check a push asks;
* :mod:`~distribution.quotas.alerts`: the 80 % and 100 % crossings the usage job reports.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from distribution.config import Configuration
from distribution.quotas import alerts, guard
from distribution.quotas.rules import KEY, Quota, parse

__all__ = ["KEY", "Quota", "announce", "check", "parse"]

log = logging.getLogger(__name__)


def announce(crossings: Iterable[alerts.Crossing]) -> None:
    """A warning line, and a ``quota`` notification event, per crossing the usage job found."""
    from distribution import notifications  # the request-side package, loaded when needed

    for crossing in crossings:
        if crossing.threshold == 0:
            log.info(
                "quota: %s is back under its limit: %s of %s (%.1f %%); pushes are accepted",
                crossing.repositories,
                guard.human(crossing.used),
                guard.human(crossing.limit),
                crossing.percent,
            )
        else:
            log.warning(
                "quota: %s crossed %d %% of its limit: %s of %s (%.1f %%)%s",
                crossing.repositories,
                crossing.threshold,
                guard.human(crossing.used),
                guard.human(crossing.limit),
                crossing.percent,
                "; pushes are refused" if crossing.threshold >= 100 else "",
            )
        notifications.quota_crossed(
            crossing.repositories, crossing.limit, crossing.used, crossing.threshold
        )


def check(config: Configuration) -> None:
    """Refuse bad quotas at start-up."""
    parse(config)
