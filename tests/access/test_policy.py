"""The access decision, pure: the issue's example, precedence, modes, and every bad rule."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from distribution.access import ANONYMOUS, Identity, Mode, Pattern, parse
from distribution.access.policy import MEMO_SIZE
from distribution.config import ConfigError
from tests.access.example import RULES

#: The example of the issue (and of the README).
EXAMPLE = yaml.safe_load(RULES)

A, P, D = "pull", "push", "delete"


def policy(section: dict[str, Any] | None = None, auth: str | None = "htpasswd"):
    return parse(EXAMPLE if section is None else section, auth)


@pytest.mark.parametrize(
    ("user", "repository", "allowed"),
    [
        ("alice", "team-a/app", {A, P, D}),
        ("ci", "team-a/app/nested", {A, P, D}),
        ("bob", "team-a/app", {A}),
        ("carol", "team-a/app", set()),  # team-a/** decides: the default does not add up
        (None, "team-a/app", set()),
        ("alice", "public/tools", {A, P}),
        ("carol", "public/tools", {A, P}),
        (None, "public/tools", {A}),
        ("carol", "other/app", {A}),
        (None, "other/app", set()),
        ("root", "team-a/app", {A, P, D}),
        ("root", "anything/else", {A, P, D}),
    ],
)
def test_the_example(user, repository, allowed):
    rules = policy()
    for action in (A, P, D):
        decision = rules.decide(Identity(user), repository, action)
        assert decision.allowed == (action in allowed), (action, decision)


def test_each_decision_names_its_rule():
    rules = policy()
    assert rules.decide(Identity("alice"), "team-a/x", P).rule == 'repositories["team-a/**"][0]'
    assert rules.decide(Identity("bob"), "team-a/x", A).rule == 'repositories["team-a/**"][1]'
    assert rules.decide(Identity("bob"), "team-a/x", P).rule == 'repositories["team-a/**"]'
    assert rules.decide(Identity("bob"), "elsewhere", A).rule == "default[0]"
    assert rules.decide(ANONYMOUS, "elsewhere", A).rule == "default"
    assert rules.decide(Identity("root"), "elsewhere", D).rule == "admins"


def test_a_push_needs_pull_too():
    rules = parse({"repositories": {"drop/**": [{"users": ["ci"], "actions": ["push"]}]}}, "silly")
    decision = rules.decide_all(Identity("ci"), "drop/box", ["pull", "push"])
    assert not decision.allowed and decision.rule == 'repositories["drop/**"]'


def test_the_most_specific_pattern_decides():
    rules = policy(
        {
            "repositories": {
                "**": [{"users": ["*"], "actions": ["pull"]}],
                "team-a/**": [{"users": ["alice"], "actions": ["pull"]}],
                "team-a/*": [{"users": ["bob"], "actions": ["pull"]}],
                "team-a/*/cache": [{"users": ["carol"], "actions": ["pull"]}],
                "team-a/app*": [{"users": ["dave"], "actions": ["pull"]}],
                "team-a/app": [{"users": ["erin"], "actions": ["pull"]}],
            }
        }
    )

    def decider(name: str) -> str:
        found = policy_rule(rules, name)
        return found.pattern.text if found else "default"

    assert decider("team-a/app") == "team-a/app"  # exact beats team-a/app* (same prefix)
    assert decider("team-a/app2") == "team-a/app*"  # longer literal prefix than team-a/*
    assert decider("team-a/lib") == "team-a/*"  # team-a/ beats team-a
    assert decider("team-a/lib/cache") == "team-a/*/cache"
    assert decider("team-a/lib/other") == "team-a/**"
    assert decider("team-a") == "team-a/**"
    assert decider("zzz") == "**"
    assert rules.decide(Identity("alice"), "team-a/lib", "pull").allowed is False


def test_ties_go_to_the_pattern_written_first():
    grants = [{"users": ["x"], "actions": ["pull"]}]
    one = policy({"repositories": {"a/*-*": grants, "a/*_*": grants}})
    other = policy({"repositories": {"a/*_*": grants, "a/*-*": grants}})
    assert policy_rule(one, "a/b-c_d").pattern.text == "a/*-*"
    assert policy_rule(other, "a/b-c_d").pattern.text == "a/*_*"
    # Order only breaks ties: a/x-* has the longer literal prefix wherever it is written.
    late = policy({"repositories": {"a/*-x": grants, "a/x-*": grants}})
    assert policy_rule(late, "a/x-x").pattern.text == "a/x-*"


def test_grants_within_the_deciding_pattern_add_up():
    rules = policy(
        {
            "groups": {"devs": ["alice"]},
            "repositories": {
                "app": [
                    {"users": ["alice"], "actions": ["pull"]},
                    {"groups": ["devs"], "actions": ["push"]},
                    {"anonymous": True, "actions": ["delete"]},
                ]
            },
        }
    )
    alice = Identity("alice")
    assert all(rules.decide(alice, "app", action).allowed for action in (A, P, D))
    assert (
        rules.decide(ANONYMOUS, "app", D).allowed and not rules.decide(ANONYMOUS, "app", A).allowed
    )


def test_star_users_and_star_actions():
    rules = policy({"repositories": {"x": [{"users": ["*"], "actions": ["*"]}]}})
    assert all(rules.decide(Identity("anyone"), "x", action).allowed for action in (A, P, D))
    assert not rules.decide(ANONYMOUS, "x", A).allowed  # "*" is any signed-in user


def test_no_default_means_nothing():
    rules = policy({"repositories": {"x": [{"users": ["a"], "actions": ["pull"]}]}})
    assert rules.decide(Identity("a"), "y", A).rule == "default"
    assert not rules.decide(Identity("a"), "y", A).allowed


def test_modes_without_rules():
    signed_in = parse({}, "htpasswd")
    assert signed_in.mode is Mode.SIGNED_IN
    assert signed_in.decide(Identity("anyone"), "x", D).allowed
    assert not signed_in.decide(ANONYMOUS, "x", A).allowed
    assert parse({}, None).decide(ANONYMOUS, "x", D).allowed  # no auth: open
    assert parse(None, "token").mode is Mode.TOKEN
    frozen = parse({"immutable": [{"repositories": "**", "tags": "v*"}]}, "token")
    assert frozen.immutable("a/b", "v1") == "immutable[0]"
    assert frozen.immutable("a/b", "latest") is None


def test_immutable_rules():
    rules = policy(
        {
            "default": [],
            "immutable": [
                {"repositories": ["releases/**", "prod/*"], "tags": ["v[0-9]*", "stable"]},
                {"repositories": "**", "tags": "sha-*"},
            ],
        }
    )
    assert rules.immutable("releases/app", "v1.2") == "immutable[0]"
    assert rules.immutable("prod/app", "stable") == "immutable[0]"
    assert rules.immutable("prod/a/b", "stable") is None
    assert rules.immutable("dev/app", "v1") is None
    assert rules.immutable("dev/app", "sha-abc") == "immutable[1]"
    assert rules.freezes("prod/app") and rules.freezes("dev/app")
    assert not policy({"default": []}).freezes("dev/app")
    only_prod = policy({"immutable": [{"repositories": "prod/*", "tags": "*"}]})
    assert only_prod.freezes("prod/app") and not only_prod.freezes("prod/a/b")


@pytest.mark.parametrize(
    ("section", "auth", "key", "message"),
    [
        ({"repositores": {}}, "htpasswd", "access.repositores", "unknown key"),
        ({"repositories": {"a": [{"users": ["x"], "actions": ["pul"]}]}}, "htpasswd",
         'access.repositories["a"][0].actions[0]', "unknown action 'pul'"),
        ({"repositories": {"A/b": [{"users": ["x"], "actions": ["pull"]}]}}, "htpasswd",
         'access.repositories["A/b"]', "lower case"),
        ({"repositories": {"a**": [{"users": ["x"], "actions": ["pull"]}]}}, "htpasswd",
         'access.repositories["a**"]', "whole path segment"),
        ({"repositories": {"a": [{"groups": ["team-b"], "actions": ["pull"]}]},
          "groups": {"team-a": ["x"]}}, "htpasswd",
         'access.repositories["a"][0].groups[0]', "unknown group 'team-b' (defined: team-a)"),
        ({"repositories": {"a": [{"actions": ["pull"]}]}}, "htpasswd",
         'access.repositories["a"][0]', "names nobody"),
        ({"repositories": {"a": [{"users": ["x"]}]}}, "htpasswd",
         'access.repositories["a"][0].actions', "required"),
        ({"repositories": {"a": [{"users": ["x"], "actions": ["pull"], "tags": "x"}]}},
         "htpasswd", 'access.repositories["a"][0].tags', "unknown key"),
        ({"repositories": {"a": [{"users": [True], "actions": ["pull"]}]}}, "htpasswd",
         'access.repositories["a"][0].users[0]', "quote it"),
        ({"repositories": {"a": [{"anonymous": "yes", "actions": ["pull"]}]}}, "htpasswd",
         'access.repositories["a"][0].anonymous', "true or false"),
        ({"repositories": ["a"]}, "htpasswd", "access.repositories", "must be a mapping"),
        ({"default": {"users": ["x"]}}, "htpasswd", "access.default", "must be a list"),
        ({"admins": [1]}, "htpasswd", "access.admins[0]", "non-empty string"),
        ({"immutable": [{"repositories": "**"}]}, "htpasswd", "access.immutable[0].tags",
         "required"),
        ({"immutable": [{"repositories": "**", "tags": "v/1"}]}, "htpasswd",
         "access.immutable[0].tags[0]", "cannot contain /"),
        ({"default": []}, None, "access.default", "need auth"),
        ({"admins": ["root"]}, "token", "access.admins", "token's claims decide"),
    ],
)  # fmt: skip
def test_bad_rules_name_the_key(section, auth, key, message):
    with pytest.raises(ConfigError) as caught:
        parse(section, auth)
    assert caught.value.key == key
    assert message in caught.value.message


def test_visibility_for_lists():
    rules = policy()
    anonymous = rules.visibility(ANONYMOUS)
    assert not anonymous.everything and not anonymous.nothing
    assert anonymous.includes("public/x") and not anonymous.includes("team-a/x")
    assert anonymous.may_contain("public") and not anonymous.may_contain("team-a")
    assert not anonymous.includes("other")
    assert rules.visibility(Identity("root")).everything
    carol = rules.visibility(Identity("carol"))  # the default lets her pull: no pruning
    assert carol.may_contain("team-a") and not carol.includes("team-a/x")
    closed = parse({"repositories": {"a": [{"users": ["x"], "actions": ["pull"]}]}}, "silly")
    assert closed.visibility(ANONYMOUS).nothing
    assert not closed.may_list(ANONYMOUS).allowed
    assert closed.may_list(Identity("y")).allowed  # signed in: an empty list, not a refusal
    assert rules.may_list(ANONYMOUS).allowed  # public/** is there for anonymous
    assert parse({}, "htpasswd").visibility(ANONYMOUS).nothing


def policy_rule(rules, name):
    return rules.rule_for(name)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_index_agrees_with_a_scan_of_every_rule(seed):
    """The prefix and suffix indexes and the memo find what ranking every match would."""
    rng = random.Random(seed)
    words = ["a", "ab", "team", "team-a", "x", "app", "cache", "c1"]
    wild = ["*", "**", "a?", "[a-c]*", "t*", "*e", "*-a", "c?c*", "x*x"]
    texts = set()
    while len(texts) < 300:
        text = "/".join(rng.choice(words + wild) for _ in range(rng.randint(1, 4)))
        try:
            Pattern.compile(text)
        except ValueError:
            continue
        texts.add(text)
    ordered = list(texts)
    rng.shuffle(ordered)  # the document order breaks ties
    grants = [{"users": ["u"], "actions": ["pull"]}]
    rules = parse({"repositories": {text: grants for text in ordered}}, "htpasswd")
    for _ in range(3000):
        name = "/".join(rng.choice(words) for _ in range(rng.randint(1, 4)))
        # The prefix and suffix pre-checks of ``matches`` never turn a match away.
        matching = [rule for rule in rules.rules if rule.pattern._regex.fullmatch(name)]
        assert matching == [rule for rule in rules.rules if rule.pattern.matches(name)]
        expected = max(matching, key=lambda rule: rule.rank, default=None)
        assert rules.rule_for(name) is expected, name
        assert rules.rule_for(name) is expected  # and from the memo


def test_the_memo_is_bounded():
    rules = policy()
    for index in range(MEMO_SIZE + 10):
        rules.rule_for(f"n{index}")
    assert len(rules._memo) <= MEMO_SIZE
