"""Who may pull, push and delete where: the ``access:`` rules and the one decision made from them.

Pure and fast: :func:`parse` checks the section once and builds a :class:`Policy`;
:meth:`Policy.decide` answers for one identity, repository and action. The API (before every
``/v2/`` request), ``registry access check`` and the web UI all ask this same method, so what
a user may do is decided in one place.

How a decision is made, with rules:

1. an admin may do everything;
2. otherwise the most specific pattern matching the repository decides (the longest literal
   prefix; then a name without wildcards; then more literal characters; then the pattern
   written first), and within it every entry that names the identity adds its actions;
3. a repository no pattern matches gets the ``default`` entries (none: nothing).

The cost does not depend on how many repositories exist: patterns are indexed by their literal
prefix, and the pattern found for each name is remembered (a bounded memo), so a repeated name
costs a dictionary look-up whatever the number of rules.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from distribution.access.patterns import Pattern, PatternError
from distribution.config import ConfigError

#: The actions a rule may grant, in the order a push needs them.
ACTIONS = ("pull", "push", "delete")
#: Shorthand for every action in a grant's ``actions``.
ALL_ACTIONS = "*"
#: In ``users``: any signed-in user.
ANY_USER = "*"

#: How many repository names each policy remembers the deciding pattern of.
MEMO_SIZE = 16384

#: The section's keys; ``path`` moves the others to a file of their own.
SECTION_KEYS = ("groups", "repositories", "default", "admins", "immutable", "path")
#: The keys that make rules (as opposed to ``immutable``, which applies with any auth).
RULE_KEYS = ("groups", "repositories", "default", "admins")
GRANT_KEYS = ("users", "groups", "anonymous", "actions")
IMMUTABLE_KEYS = ("repositories", "tags")

#: The deciding rule when there are no rules to ask.
OPEN_REGISTRY = "no auth: the registry is open"
TOKEN_DECIDES = "auth: token: the token's claims decide"
EVERY_USER = "no access rules: every signed-in user may do everything"
SIGN_IN_REQUIRED = "sign-in required"
ADMINS = "admins"
DEFAULT = "default"


class Mode(enum.Enum):
    """What decides: nobody (open registry), the token, any sign-in, or the rules."""

    OPEN = "open"
    TOKEN = "token"
    SIGNED_IN = "signed-in"
    RULES = "rules"


@dataclass(frozen=True)
class Identity:
    """Who is asking: a user name from the access controller, or nobody (anonymous)."""

    user: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.user is None

    def __str__(self) -> str:
        return "anonymous" if self.user is None else self.user


ANONYMOUS = Identity()


@dataclass(frozen=True)
class Decision:
    """The answer, and the rule that gave it (``repositories["team-a/**"][0]``, ``admins``...)."""

    allowed: bool
    rule: str


@dataclass(frozen=True)
class Grant:
    """One entry: the actions it gives to the users, groups or everyone it names."""

    key: str
    actions: frozenset[str]
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    any_user: bool = False
    anonymous: bool = False

    def applies(self, identity: Identity, groups: frozenset[str]) -> bool:
        """Whether this entry names ``identity`` (whose groups are ``groups``).

        ``anonymous`` names everyone: a signed-in user never has less than the world.
        """
        if self.anonymous:
            return True
        if identity.user is None:
            return False
        return self.any_user or identity.user in self.users or not self.groups.isdisjoint(groups)


@dataclass(frozen=True)
class Rule:
    """A repository pattern and its entries, at its place in the document."""

    key: str
    pattern: Pattern
    grants: tuple[Grant, ...]
    position: int

    @property
    def rank(self) -> tuple[int, bool, int, int]:
        """Greatest first decides: the pattern's specificity, then the earlier in the file."""
        return (*self.pattern.specificity, -self.position)


@dataclass(frozen=True)
class ImmutableRule:
    """Tags that once set never move nor go: ``{repositories: ..., tags: ...}``."""

    key: str
    repositories: tuple[Pattern, ...]
    tags: tuple[Pattern, ...]

    def covers(self, repository: str, tag: str) -> bool:
        return self.covers_repository(repository) and any(p.matches(tag) for p in self.tags)

    def covers_repository(self, repository: str) -> bool:
        return any(p.matches(repository) for p in self.repositories)


class Visibility:
    """Which repositories an identity may pull: what the catalog and the UI's lists show.

    :meth:`may_contain` lets a walk of the repository tree skip folders where nothing can be
    visible; it may say yes in vain, never no wrongly.
    """

    def __init__(
        self,
        policy: Policy,
        identity: Identity,
        *,
        everything: bool = False,
        prefixes: Iterable[str] | None = None,
    ) -> None:
        self._policy = policy
        self._identity = identity
        #: Every repository is visible: no need to ask per name.
        self.everything = everything
        #: The literal prefixes of the patterns that may show something; None: any folder may.
        self._prefixes = None if everything or prefixes is None else sorted(set(prefixes))
        self._prefix_set = frozenset(self._prefixes or ())
        #: No repository can be visible.
        self.nothing = self._prefixes == []

    def includes(self, name: str) -> bool:
        if self.everything:
            return True
        if self.nothing:
            return False
        return self._policy.decide(self._identity, name, "pull").allowed

    def may_contain(self, folder: str) -> bool:
        """Whether a repository named ``folder`` or below it may be visible."""
        if self._prefixes is None:
            return True
        if any(folder[:length] in self._prefix_set for length in range(len(folder) + 1)):
            return True
        below = folder + "/"
        start = bisect.bisect_left(self._prefixes, below)
        return start < len(self._prefixes) and self._prefixes[start].startswith(below)


@dataclass
class Policy:
    """The parsed ``access:`` section for one kind of ``auth``; immutable once built."""

    mode: Mode
    rules: tuple[Rule, ...] = ()
    default: tuple[Grant, ...] = ()
    admins: frozenset[str] = frozenset()
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    immutable_rules: tuple[ImmutableRule, ...] = ()

    def __post_init__(self) -> None:
        self._user_groups: dict[str, frozenset[str]] = {}
        for group, members in self.groups.items():
            for user in members:
                self._user_groups[user] = self._user_groups.get(user, frozenset()) | {group}
        buckets: dict[str, list[Rule]] = {}
        for rule in self.rules:
            buckets.setdefault(rule.pattern.prefix, []).append(rule)
        self._by_prefix = {prefix: _Bucket(found) for prefix, found in buckets.items()}
        self._lengths = sorted({len(prefix) for prefix in self._by_prefix}, reverse=True)
        self._memo: dict[str, Rule | None] = {}

    def decide(self, identity: Identity, repository: str, action: str) -> Decision:
        """May ``identity`` do ``action`` (pull, push or delete) on ``repository``?"""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
        if self.mode is Mode.OPEN:
            return Decision(True, OPEN_REGISTRY)
        if self.mode is Mode.TOKEN:
            return Decision(False, TOKEN_DECIDES)
        if self.mode is Mode.SIGNED_IN:
            if identity.anonymous:
                return Decision(False, SIGN_IN_REQUIRED)
            return Decision(True, EVERY_USER)
        if self._is_admin(identity):
            return Decision(True, ADMINS)
        rule = self.rule_for(repository)
        grants = self.default if rule is None else rule.grants
        groups = self._user_groups.get(identity.user or "", frozenset())
        for grant in grants:
            if action in grant.actions and grant.applies(identity, groups):
                return Decision(True, grant.key)
        return Decision(False, DEFAULT if rule is None else rule.key)

    def decide_all(self, identity: Identity, repository: str, actions: Iterable[str]) -> Decision:
        """The first refusal among ``actions`` (a push needs pull and push), else the last grant."""
        decision = Decision(False, "no action asked for")
        for action in actions:
            decision = self.decide(identity, repository, action)
            if not decision.allowed:
                return decision
        return decision

    def rule_for(self, repository: str) -> Rule | None:
        """The rule whose pattern decides for ``repository``; None sends it to ``default``."""
        try:
            return self._memo[repository]
        except KeyError:
            pass
        found = None
        for length in self._lengths:
            if length <= len(repository):
                bucket = self._by_prefix.get(repository[:length])
                if bucket is not None and (found := bucket.best(repository)) is not None:
                    break
        if len(self._memo) >= MEMO_SIZE:
            self._memo.clear()
        self._memo[repository] = found
        return found

    def immutable(self, repository: str, tag: str) -> str | None:
        """The key of the ``immutable`` rule that freezes ``tag`` in ``repository``, if any."""
        for rule in self.immutable_rules:
            if rule.covers(repository, tag):
                return rule.key
        return None

    def freezes(self, repository: str) -> bool:
        """Whether some ``immutable`` rule covers ``repository``: else none of its tags is
        frozen, and a delete need not read them."""
        return any(rule.covers_repository(repository) for rule in self.immutable_rules)

    def visibility(self, identity: Identity) -> Visibility:
        """What ``identity`` sees of the repository list (those it may pull)."""
        if self.mode is Mode.SIGNED_IN and identity.anonymous:
            return Visibility(self, identity, prefixes=())
        if self.mode is not Mode.RULES or self._is_admin(identity):
            return Visibility(self, identity, everything=True)
        groups = self._user_groups.get(identity.user or "", frozenset())

        def pulls(grants: Iterable[Grant]) -> bool:
            return any("pull" in g.actions and g.applies(identity, groups) for g in grants)

        if pulls(self.default):
            return Visibility(self, identity)
        prefixes = [rule.pattern.prefix for rule in self.rules if pulls(rule.grants)]
        return Visibility(self, identity, prefixes=prefixes)

    def may_list(self, identity: Identity) -> Decision:
        """May ``identity`` call the catalog at all (it then sees what :meth:`visibility` says)?

        Signed-in users may (they may see an empty list); anonymous callers only where some
        repository is pullable without signing in, so others get the sign-in challenge.
        """
        if self.mode is Mode.OPEN:
            return Decision(True, OPEN_REGISTRY)
        if self.mode is Mode.TOKEN:
            return Decision(False, TOKEN_DECIDES)
        if not identity.anonymous:
            return Decision(True, ADMINS if self._is_admin(identity) else "catalog")
        if self.mode is Mode.RULES and not self.visibility(identity).nothing:
            return Decision(True, "catalog (anonymous)")
        return Decision(False, SIGN_IN_REQUIRED)

    def _is_admin(self, identity: Identity) -> bool:
        return identity.user is not None and identity.user in self.admins

    def describe(self) -> str:
        """One line for the log: what this policy holds."""
        if self.mode is not Mode.RULES:
            return f"{self.mode.value}, {len(self.immutable_rules)} immutable rule(s)"
        return (
            f"{len(self.rules)} pattern(s), {len(self.default)} default entr(ies), "
            f"{len(self.admins)} admin(s), {len(self.groups)} group(s), "
            f"{len(self.immutable_rules)} immutable rule(s)"
        )


class _Bucket:
    """The rules whose patterns share one literal prefix, indexed by literal suffix too.

    So ``*/svc-1`` ... ``*/svc-999`` (all of prefix ``""``) cost a look-up per suffix of the
    name, not a match each. Only patterns ending in a wildcard are tried one by one.
    """

    def __init__(self, rules: list[Rule]) -> None:
        by_suffix: dict[str, list[Rule]] = {}
        rest: list[Rule] = []
        for rule in rules:
            if rule.pattern.suffix:
                by_suffix.setdefault(rule.pattern.suffix, []).append(rule)
            else:
                rest.append(rule)
        self._by_suffix = {suffix: tuple(found) for suffix, found in by_suffix.items()}
        self._lengths = sorted({len(suffix) for suffix in self._by_suffix})
        self._rest = tuple(sorted(rest, key=lambda rule: rule.rank, reverse=True))

    def best(self, name: str) -> Rule | None:
        """The greatest-ranked rule of this bucket matching ``name`` (which has its prefix)."""
        found: Rule | None = None
        for length in self._lengths:
            if length > len(name):
                break
            for rule in self._by_suffix.get(name[len(name) - length :], ()):
                if (found is None or rule.rank > found.rank) and rule.pattern.matches(name):
                    found = rule
        for rule in self._rest:  # greatest rank first; ranks never tie (positions differ)
            if found is not None and rule.rank < found.rank:
                break
            if rule.pattern.matches(name):
                return rule
        return found


def parse(section: Mapping[str, Any] | None, auth: str | None, where: str = "access") -> Policy:
    """Check the ``access`` section (without ``path``) and build its policy for ``auth``.

    ``auth`` is the access controller's name (None without auth). Any problem raises
    :class:`~distribution.config.ConfigError` naming the key under ``where``.
    """
    section = _mapping(section or {}, where)
    for name in section:
        if name not in SECTION_KEYS or name == "path":
            raise ConfigError(_join(where, name), f"unknown key (one of {', '.join(SECTION_KEYS)})")
    immutable = tuple(
        _immutable(item, _join(where, f"immutable[{index}]"), f"immutable[{index}]")
        for index, item in enumerate(_list(section.get("immutable"), _join(where, "immutable")))
    )
    given = [name for name in RULE_KEYS if name in section]
    if not given:
        mode = {None: Mode.OPEN, "token": Mode.TOKEN}.get(auth, Mode.SIGNED_IN)
        return Policy(mode, immutable_rules=immutable)
    if auth is None:
        raise ConfigError(
            _join(where, given[0]),
            "access rules need auth (htpasswd or silly) to know who asks; without auth only "
            "immutable applies",
        )
    if auth == "token":
        raise ConfigError(
            _join(where, given[0]),
            "with auth: token the token's claims decide who may do what; only immutable applies",
        )
    groups = _groups(section.get("groups"), _join(where, "groups"))
    rules = []
    repositories = _mapping(section.get("repositories") or {}, _join(where, "repositories"))
    for position, (text, entries) in enumerate(repositories.items()):
        name = f"repositories[{_quote(text)}]"
        key = _join(where, name)
        try:
            pattern = Pattern.compile(text if isinstance(text, str) else str(text))
        except PatternError as err:
            raise ConfigError(key, str(err)) from None
        grants = _grants(entries, key, name, groups)
        rules.append(Rule(name, pattern, grants, position))
    default = _grants(section.get("default") or [], _join(where, "default"), DEFAULT, groups)
    admins = frozenset(_names(section.get("admins"), _join(where, "admins")))
    return Policy(Mode.RULES, tuple(rules), default, admins, groups, immutable)


def _groups(value: Any, key: str) -> dict[str, frozenset[str]]:
    groups = {}
    for name, members in _mapping(value or {}, key).items():
        if not isinstance(name, str) or not name:
            raise ConfigError(key, f"group name {name!r} must be a non-empty string")
        groups[name] = frozenset(_names(members, f"{key}.{name}"))
    return groups


def _grants(
    value: Any, key: str, name: str, groups: Mapping[str, frozenset[str]]
) -> tuple[Grant, ...]:
    return tuple(
        _grant(item, f"{key}[{index}]", f"{name}[{index}]", groups)
        for index, item in enumerate(_list(value, key))
    )


def _grant(value: Any, key: str, name: str, groups: Mapping[str, frozenset[str]]) -> Grant:
    entry = _mapping(value, key)
    for field_name in entry:
        if field_name not in GRANT_KEYS:
            raise ConfigError(
                _join(key, field_name), f"unknown key (one of {', '.join(GRANT_KEYS)})"
            )
    actions = _names(entry.get("actions"), f"{key}.actions")
    if not actions:
        raise ConfigError(f"{key}.actions", f"required: a list of {', '.join(ACTIONS)} or *")
    for index, action in enumerate(actions):
        if action not in (*ACTIONS, ALL_ACTIONS):
            raise ConfigError(
                f"{key}.actions[{index}]",
                f"unknown action {action!r} (one of {', '.join(ACTIONS)}, or * for all)",
            )
    users = _names(entry.get("users"), f"{key}.users")
    named_groups = _names(entry.get("groups"), f"{key}.groups")
    for index, group in enumerate(named_groups):
        if group not in groups:
            known = ", ".join(sorted(groups)) or "none"
            raise ConfigError(
                f"{key}.groups[{index}]", f"unknown group {group!r} (defined: {known})"
            )
    anonymous = entry.get("anonymous", False)
    if not isinstance(anonymous, bool):
        raise ConfigError(f"{key}.anonymous", "must be true or false")
    if not (users or named_groups or anonymous):
        raise ConfigError(key, "names nobody: give users, groups or anonymous: true")
    return Grant(
        key=name,
        actions=frozenset(ACTIONS if ALL_ACTIONS in actions else actions),
        users=frozenset(user for user in users if user != ANY_USER),
        groups=frozenset(named_groups),
        any_user=ANY_USER in users,
        anonymous=anonymous,
    )


def _immutable(value: Any, key: str, name: str) -> ImmutableRule:
    entry = _mapping(value, key)
    for field_name in entry:
        if field_name not in IMMUTABLE_KEYS:
            raise ConfigError(
                _join(key, field_name), f"unknown key (one of {', '.join(IMMUTABLE_KEYS)})"
            )
    patterns: dict[str, tuple[Pattern, ...]] = {}
    for field_name in IMMUTABLE_KEYS:
        texts = _names(entry.get(field_name), f"{key}.{field_name}")
        if not texts:
            raise ConfigError(f"{key}.{field_name}", "required: a pattern or a list of patterns")
        kind = "repository" if field_name == "repositories" else "tag"
        compiled = []
        for index, text in enumerate(texts):
            try:
                compiled.append(Pattern.compile(text, kind))
            except PatternError as err:
                raise ConfigError(f"{key}.{field_name}[{index}]", str(err)) from None
        patterns[field_name] = tuple(compiled)
    return ImmutableRule(name, patterns["repositories"], patterns["tags"])


def _names(value: Any, key: str) -> list[str]:
    """A string or a list of non-empty strings (user, group, action or pattern names)."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ConfigError(key, "must be a string or a list of strings")
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ConfigError(
                f"{key}[{index}]", f"must be a non-empty string, got {item!r} (quote it)"
            )
    return items


def _mapping(value: Any, key: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ConfigError(key, f"must be a mapping, got {type(value).__name__}")
    return value


def _list(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, f"must be a list, got {type(value).__name__}")
    return value


def _join(key: str, name: Any) -> str:
    return f"{key}.{name}" if key else str(name)


def _quote(text: Any) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'
