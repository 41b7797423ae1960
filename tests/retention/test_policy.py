"""Retention policies, pure: parsing (every mistake names its key) and the decisions."""

from __future__ import annotations

import pytest

from distribution import config as config_module
from distribution.config import ConfigError
from distribution.retention import policy
from distribution.retention.policy import Tag, Untagged, decide, untagged_goes

H = 3600.0
NOW = 1_000_000_000.0
#: Pulls recorded long before any window in these tests.
LONG_AGO = NOW - 10_000 * H


def settings(text: str) -> policy.RetentionSettings:
    doc = f"version: 0.1\nstorage:\n  inmemory: {{}}\n  maintenance:\n    retention:\n{text}"
    return policy.parse(config_module.parse(doc, {}))


def one_policy(keep: str, untagged: str = "") -> policy.Policy:
    text = f"      policies:\n        - repositories: ['**']\n          keep: {keep}\n"
    if untagged:
        text += f"          untagged: {untagged}\n"
    return settings(text).policies[0]


def tags(*specs: tuple[str, float, float | None]) -> list[Tag]:
    """``(name, pushed hours ago, pulled hours ago or None)``."""
    return [
        Tag(
            name, f"sha256:{i:064x}", NOW - pushed * H, None if pulled is None else NOW - pulled * H
        )
        for i, (name, pushed, pulled) in enumerate(specs)
    ]


def kept(rule: policy.Policy, found: list[Tag], since: float = LONG_AGO) -> set[str]:
    decision = decide(rule, found, NOW, since)
    assert set(decision.kept) | set(decision.deleted) == {t.name for t in found}
    return set(decision.kept)


class TestParse:
    def test_the_issue_example(self) -> None:
        found = settings(
            """      enabled: true
      interval: 24h
      dryrun: false
      policies:
        - repositories: ["ci/**", "team-a/*"]
          keep:
            - {tags: "^v[0-9]+\\\\."}
            - {mostrecent: 10}
            - {mostrecent: 3, pushedwithin: 100h}
            - {pulledwithin: 720h}
          untagged: 48h
"""
        )
        assert found.enabled and found.interval == 24 * H and not found.dryrun
        (rule,) = found.policies
        assert [p.text for p in rule.repositories] == ["ci/**", "team-a/*"]
        assert rule.untagged == 48 * H
        assert rule.keep[0].tags.pattern == "^v[0-9]+\\."
        assert (rule.keep[2].mostrecent, rule.keep[2].pushedwithin) == (3, 100 * H)
        assert rule.keep[3].pulledwithin == 720 * H
        assert found.policy_for("ci/a/b") is rule and found.policy_for("team-a/x") is rule
        assert found.policy_for("team-a/x/y") is None and found.policy_for("other") is None

    def test_days_and_defaults(self) -> None:
        found = settings("      policies: [{repositories: 'a', untagged: 1d12h}]\n")
        assert not found.enabled and found.interval == 24 * H
        assert found.policies[0].untagged == 36 * H and found.policies[0].keep is None

    def test_first_matching_policy_applies(self) -> None:
        found = settings(
            "      policies:\n"
            "        - {repositories: 'ci/special', keep: [{mostrecent: 1}]}\n"
            "        - {repositories: 'ci/**', keep: [{mostrecent: 5}]}\n"
        )
        assert found.policy_for("ci/special").keep[0].mostrecent == 1
        assert found.policy_for("ci/other").keep[0].mostrecent == 5

    @pytest.mark.parametrize(
        ("text", "key", "message"),
        [
            ("      enabled: yes-please\n", "retention.enabled", "expected true or false"),
            ("      enabled: true\n", "retention.policies", "no policies"),
            ("      interval: 24\n", "retention.interval", "expected a duration"),
            ("      interval: 0s\n", "retention.interval", "longer than zero"),
            ("      policy: []\n", "retention.policy", "unknown key"),
            ("      policies: {a: 1}\n", "retention.policies", "expected a list"),
            (
                "      policies: [{keep: [{mostrecent: 1}]}]\n",
                "policies[0].repositories",
                "required",
            ),
            (
                "      policies: [{repositories: 'A', untagged: 1h}]\n",
                "policies[0].repositories",
                "'A'",
            ),
            (
                "      policies: [{repositories: [a, 'x//y'], untagged: 1h}]\n",
                "policies[0].repositories[1]",
                "'x//y'",
            ),
            ("      policies: [{repositories: a}]\n", "policies[0]", "keep rules, untagged"),
            ("      policies: [{repositories: a, keep: []}]\n", "policies[0].keep", "every tag"),
            ("      policies: [{repositories: a, keep: [{}]}]\n", "policies[0].keep[0]", "empty"),
            (
                "      policies: [{repositories: a, keep: [{mostrecnet: 3}]}]\n",
                "policies[0].keep[0].mostrecnet",
                "unknown key",
            ),
            (
                "      policies: [{repositories: a, keep: [{mostrecent: 0}]}]\n",
                "policies[0].keep[0].mostrecent",
                "at least 1",
            ),
            (
                "      policies: [{repositories: a, keep: [{tags: '('}]}]\n",
                "policies[0].keep[0].tags",
                "invalid regular expression",
            ),
            (
                "      policies: [{repositories: a, keep: [{pushedwithin: 100}]}]\n",
                "policies[0].keep[0].pushedwithin",
                "expected a duration",
            ),
            (
                "      policies: [{repositories: a, untagged: soon}]\n",
                "policies[0].untagged",
                "expected a duration",
            ),
        ],
    )
    def test_mistakes_name_their_key(self, text: str, key: str, message: str) -> None:
        with pytest.raises(ConfigError) as caught:
            settings(text)
        assert key in caught.value.key and message in str(caught.value)

    @pytest.mark.parametrize("usage", ["{enabled: false}", "{pulls: false}"])
    @pytest.mark.parametrize("rule", ["keep: [{pulledwithin: 1h}]", "untagged: 1h"])
    def test_pull_rules_need_pulls_recorded(self, usage: str, rule: str) -> None:
        """Without pulls recorded, a tag pulled every day looks never pulled once the record
        is older than the window: ``pulledwithin`` would delete what it says to keep."""
        doc = (
            f"version: 0.1\nstorage:\n  inmemory: {{}}\n  maintenance:\n    usage: {usage}\n"
            f"    retention:\n      policies: [{{repositories: a, {rule}}}]\n"
        )
        with pytest.raises(ConfigError, match=r"storage\.maintenance\.usage"):
            policy.parse(config_module.parse(doc, {}))


class TestKeep:
    def test_tags_regex_searches(self) -> None:
        rule = one_policy("[{tags: '^v[0-9]+\\.'}]")
        found = tags(
            ("v1.0", 900, None), ("v2.1-rc", 1, None), ("latest", 1, None), ("xv1.", 1, None)
        )
        assert kept(rule, found) == {"v1.0", "v2.1-rc"}

    def test_mostrecent_by_push_time_ties_by_name(self) -> None:
        rule = one_policy("[{mostrecent: 2}]")
        found = tags(("a", 5, None), ("b", 1, None), ("c", 3, None), ("d", 3, None))
        assert kept(rule, found) == {"b", "c"}

    def test_pushedwithin(self) -> None:
        rule = one_policy("[{pushedwithin: 100h}]")
        found = tags(("new", 99, None), ("old", 101, None))
        assert kept(rule, found) == {"new"}

    def test_pulledwithin(self) -> None:
        rule = one_policy("[{pulledwithin: 720h}]")
        found = tags(("used", 5000, 700), ("stale", 5000, 800), ("never", 5000, None))
        assert kept(rule, found) == {"used"}

    def test_pulledwithin_holds_while_the_record_is_younger_than_the_window(self) -> None:
        rule = one_policy("[{pulledwithin: 720h}]")
        found = tags(("never", 5000, None))
        assert kept(rule, found, since=NOW - 100 * H) == {"never"}
        assert kept(rule, found, since=NOW - 800 * H) == set()

    def test_and_within_an_entry(self) -> None:
        rule = one_policy("[{mostrecent: 3, pushedwithin: 100h}]")
        found = tags(("a", 1, None), ("b", 2, None), ("c", 150, None), ("d", 160, None))
        # the three most recent are a, b, c, but c is older than 100 h
        assert kept(rule, found) == {"a", "b"}

    def test_mostrecent_counts_among_what_the_filters_let_through(self) -> None:
        rule = one_policy("[{tags: '^rc-', mostrecent: 2}]")
        found = tags(("rc-1", 30, None), ("rc-2", 20, None), ("rc-3", 10, None), ("main", 1, None))
        assert kept(rule, found) == {"rc-2", "rc-3"}

    def test_or_across_entries(self) -> None:
        rule = one_policy("[{tags: '^v'}, {mostrecent: 1}, {pulledwithin: 24h}]")
        found = tags(("v1", 900, None), ("newest", 1, None), ("pulled", 800, 2), ("gone", 700, 30))
        decision = decide(rule, found, NOW, LONG_AGO)
        assert decision.kept == {
            "v1": "storage.maintenance.retention.policies[0].keep[0]",
            "newest": "storage.maintenance.retention.policies[0].keep[1]",
            "pulled": "storage.maintenance.retention.policies[0].keep[2]",
        }
        assert decision.deleted == ["gone"]

    def test_protected_tags_stay_with_their_reason(self) -> None:
        rule = one_policy("[{mostrecent: 1}]")
        found = tags(("new", 1, None), ("frozen", 900, None))
        decision = decide(rule, found, NOW, LONG_AGO, {"frozen": "immutable[0]"})
        assert decision.kept == {
            "new": "storage.maintenance.retention.policies[0].keep[0]",
            "frozen": "immutable[0]",
        }
        assert decision.deleted == []

    def test_without_keep_every_tag_stays(self) -> None:
        rule = settings("      policies: [{repositories: a, untagged: 1h}]\n").policies[0]
        assert kept(rule, tags(("x", 9000, None))) == {"x"}


class TestUntagged:
    def test_goes_after_the_window_unless_pulled(self) -> None:
        rule = one_policy("[{mostrecent: 1}]", untagged="48h")
        assert untagged_goes(rule, Untagged("d", NOW - 49 * H, None), NOW, LONG_AGO)
        assert not untagged_goes(rule, Untagged("d", NOW - 47 * H, None), NOW, LONG_AGO)
        assert not untagged_goes(rule, Untagged("d", NOW - 49 * H, NOW - 47 * H), NOW, LONG_AGO)
        assert not untagged_goes(rule, Untagged("d", NOW - 49 * H, None), NOW, NOW - 10 * H)

    def test_without_the_rule_nothing_goes(self) -> None:
        rule = one_policy("[{mostrecent: 1}]")
        assert not untagged_goes(rule, Untagged("d", NOW - 9000 * H, None), NOW, LONG_AGO)
