"""Retention policies (``storage.maintenance.retention``) and the decisions they make: pure.

The first policy whose ``repositories`` patterns match a repository applies to it; a
repository no policy matches is left alone. Within a policy:

* **Tags**: a tag stays if *any* ``keep`` entry holds for it; an entry holds when *all* its
  conditions do. ``tags`` (a regular expression searched in the tag, so anchor it with ``^``
  and ``$``), ``pushedwithin`` and ``pulledwithin`` filter; ``mostrecent: N`` then keeps the N
  most recently pushed tags among those the entry's filters let through (among all tags when
  it has none). A policy without ``keep`` keeps every tag. Immutable tags (the access rules)
  always stay.
* **Manifests**: everything a kept tag reaches stays (an index's children, the referrers of
  a kept manifest, transitively). What only deleted tags reached goes with them. Manifests
  that were untagged before the run go when ``untagged`` is set, they have been untagged
  longer than it (since their tag moved, or since pushed when never tagged) and they were not
  pulled within it; otherwise they stay. A referrer follows its subject.

"Pulled within" cannot be known for a time before pulls were recorded (``since``): if a
window starts before that, the condition holds, so nothing goes for lack of a record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from distribution.access.patterns import Pattern
from distribution.config import ConfigError, Configuration
from distribution.usage import settings

KEY = "storage.maintenance.retention"
#: The keys a ``keep`` entry may hold.
KEEP_KEYS = ("tags", "mostrecent", "pushedwithin", "pulledwithin")


@dataclass(frozen=True)
class Keep:
    """One ``keep`` entry: every condition given must hold."""

    key: str
    tags: re.Pattern[str] | None = None
    mostrecent: int | None = None
    pushedwithin: float | None = None
    pulledwithin: float | None = None

    def passes(self, tag: Tag, now: float, pulls_since: float) -> bool:
        """The entry's filters (everything but ``mostrecent``)."""
        if self.tags is not None and not self.tags.search(tag.name):
            return False
        if self.pushedwithin is not None and tag.pushed < now - self.pushedwithin:
            return False
        return self.pulledwithin is None or pulled_within(
            tag.pulled, self.pulledwithin, now, pulls_since
        )


@dataclass(frozen=True)
class Policy:
    key: str
    repositories: tuple[Pattern, ...]
    keep: tuple[Keep, ...] | None
    untagged: float | None

    def matches(self, name: str) -> bool:
        return any(pattern.matches(name) for pattern in self.repositories)


@dataclass(frozen=True)
class RetentionSettings:
    enabled: bool = False
    interval: float = 24 * 3600.0
    dryrun: bool = False
    policies: tuple[Policy, ...] = ()

    def policy_for(self, name: str) -> Policy | None:
        """The first policy matching ``name``."""
        return next((policy for policy in self.policies if policy.matches(name)), None)

    @property
    def uses_pulls(self) -> bool:
        return any(
            policy.untagged is not None
            or any(keep.pulledwithin is not None for keep in policy.keep or ())
            for policy in self.policies
        )


@dataclass(frozen=True)
class Tag:
    """What a decision needs of a tag: its digest, last push and last pull (by tag or of its
    digest)."""

    name: str
    digest: str
    pushed: float
    pulled: float | None = None


@dataclass(frozen=True)
class Untagged:
    """An untagged manifest: since when (its tag moved, or its push) and its last pull."""

    digest: str
    since: float
    pulled: float | None = None


@dataclass
class Decision:
    """Tags kept (with the entry, or the reason, that kept each) and tags to delete."""

    kept: dict[str, str] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)


def parse(config: Configuration) -> RetentionSettings:
    """The checked section; :class:`ConfigError` names the key of the first mistake."""
    section = settings.mapping(config.storage.maintenance.retention, KEY)
    settings.known(section, KEY, ("enabled", "interval", "dryrun", "policies"))
    found = RetentionSettings(
        enabled=settings.boolean(section.get("enabled", False), f"{KEY}.enabled"),
        interval=settings.seconds(section.get("interval", "24h"), f"{KEY}.interval", True),
        dryrun=settings.boolean(section.get("dryrun", False), f"{KEY}.dryrun"),
        policies=tuple(
            _policy(entry, f"{KEY}.policies[{index}]")
            for index, entry in enumerate(
                settings.entries(section.get("policies"), f"{KEY}.policies")
            )
        ),
    )
    if found.enabled and not found.policies:
        raise ConfigError(f"{KEY}.policies", "retention is enabled but has no policies")
    usage = settings.parse(config)
    if found.uses_pulls and not (usage.enabled and usage.pulls):
        # Unrecorded, a pull every day looks like none once the record is older than a window.
        off = "it is disabled" if not usage.enabled else "its pulls are off"
        raise ConfigError(
            KEY,
            "pulledwithin and untagged need pull times, which storage.maintenance.usage records; "
            + off,
        )
    return found


def decide(
    policy: Policy,
    tags: Iterable[Tag],
    now: float,
    pulls_since: float,
    protected: Mapping[str, str] | None = None,
) -> Decision:
    """Which tags stay and which go; ``protected`` tags (immutable, pushed during the run)
    stay with the reason given."""
    tags = list(tags)
    decision = Decision()
    if policy.keep is None:
        decision.kept = {tag.name: "no keep rules" for tag in tags}
        return decision
    kept: dict[str, str] = dict(protected or {})
    for entry in policy.keep:
        passing = [tag for tag in tags if entry.passes(tag, now, pulls_since)]
        if entry.mostrecent is not None:
            passing.sort(key=lambda tag: (-tag.pushed, tag.name))
            passing = passing[: entry.mostrecent]
        for tag in passing:
            kept.setdefault(tag.name, entry.key)
    decision.kept = {tag.name: kept[tag.name] for tag in tags if tag.name in kept}
    decision.deleted = sorted(tag.name for tag in tags if tag.name not in kept)
    return decision


def untagged_goes(policy: Policy, manifest: Untagged, now: float, pulls_since: float) -> bool:
    """Whether an untagged manifest has been untagged, and unpulled, longer than allowed."""
    if policy.untagged is None or manifest.since >= now - policy.untagged:
        return False
    return not pulled_within(manifest.pulled, policy.untagged, now, pulls_since)


def pulled_within(pulled: float | None, window: float, now: float, pulls_since: float) -> bool:
    """Pulled in the last ``window`` seconds, or the record does not reach that far back."""
    if pulls_since > now - window:
        return True
    return pulled is not None and pulled >= now - window


def _policy(value: object, key: str) -> Policy:
    entry = settings.mapping(value, key)
    settings.known(entry, key, ("repositories", "keep", "untagged"))
    if "repositories" not in entry:
        raise ConfigError(f"{key}.repositories", "required")
    keep = None
    if "keep" in entry:
        items = settings.entries(entry["keep"], f"{key}.keep")
        if not items:
            raise ConfigError(
                f"{key}.keep",
                "an empty list would delete every tag; leave keep out to keep every tag",
            )
        keep = tuple(_keep(item, f"{key}.keep[{i}]") for i, item in enumerate(items))
    untagged = None
    if entry.get("untagged") is not None:
        untagged = settings.seconds(entry["untagged"], f"{key}.untagged", positive=True)
    if keep is None and untagged is None:
        raise ConfigError(key, "a policy needs keep rules, untagged, or both")
    repositories = settings.repository_patterns(entry["repositories"], f"{key}.repositories")
    return Policy(key, repositories, keep, untagged)


def _keep(value: object, key: str) -> Keep:
    entry = settings.mapping(value, key)
    settings.known(entry, key, KEEP_KEYS)
    if not entry:
        choices = ", ".join(KEEP_KEYS)
        raise ConfigError(key, f"an empty entry keeps every tag; give one of {choices}")
    tags = None
    if "tags" in entry:
        if not isinstance(entry["tags"], str):
            raise ConfigError(f"{key}.tags", "expected a regular expression")
        try:
            tags = re.compile(entry["tags"])
        except re.error as err:
            raise ConfigError(f"{key}.tags", f"invalid regular expression: {err}") from None
    return Keep(
        key=key,
        tags=tags,
        mostrecent=(
            settings.positive_int(entry["mostrecent"], f"{key}.mostrecent")
            if "mostrecent" in entry
            else None
        ),
        pushedwithin=_window(entry, "pushedwithin", key),
        pulledwithin=_window(entry, "pulledwithin", key),
    )


def _window(entry: Mapping[str, object], name: str, key: str) -> float | None:
    if name not in entry:
        return None
    return settings.seconds(entry[name], f"{key}.{name}", positive=True)
