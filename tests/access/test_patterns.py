"""The glob patterns of the access rules (and of retention policies): pure, no server."""

from __future__ import annotations

import pytest

from distribution.access import Pattern, PatternError


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("team-a/**", ["team-a", "team-a/app", "team-a/x/y/z"], ["team-ab", "team", "b/team-a"]),
        ("**/cache", ["cache", "a/cache", "a/b/cache"], ["cachex", "a/cachex", "acache"]),
        ("a/**/b", ["a/b", "a/x/b", "a/x/y/b"], ["ab", "a/xb", "a/b/c", "x/a/b"]),
        ("**", ["a", "a/b/c"], []),
        ("**/**", ["a", "a/b"], []),
        ("a/**/**/b", ["a/b", "a/x/b"], ["a/bb"]),
        ("team-*/app", ["team-a/app", "team-/app"], ["team-a/x/app", "team-a/apps", "team/app"]),
        ("team-a/*", ["team-a/app"], ["team-a", "team-a/x/y"]),
        ("v?/[a-c]*", ["v1/a", "v2/cz"], ["v1/d", "v12/a", "v1/"]),
        ("x/[!a]", ["x/b"], ["x/a", "x/bb"]),
        ("x/[^a-m]", ["x/n"], ["x/c"]),
        ("team[.-9]x", ["team.x", "team5x"], ["team/x"]),  # the range spans / in ASCII
        ("a[--z]b", ["a-b", "azb", "a.b"], ["a/b"]),
        ("public/app", ["public/app"], ["public/apps", "public/app/x", "public"]),
    ],
)
def test_repository_patterns(pattern, matching, not_matching):
    compiled = Pattern.compile(pattern)
    for name in matching:
        assert compiled.matches(name), name
    for name in not_matching:
        assert not compiled.matches(name), name


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("", "non-empty"),
        ("/a", "empty"),
        ("a/", "empty"),
        ("a//b", "empty"),
        ("Team/app", "lower case"),
        ("a**", "whole path segment"),
        ("a/b**/c", "whole path segment"),
        ("a/[bc", "unclosed"),
        ("a/[]", "matches nothing"),
        ("a/[z-a]", "bad range"),
        ("a b", "cannot appear"),
        ("a/b:c", "cannot appear"),
    ],
)
def test_bad_repository_patterns_say_why(pattern, reason):
    with pytest.raises(PatternError, match=reason):
        Pattern.compile(pattern)


def test_tag_patterns():
    release = Pattern.compile("v[0-9]*", "tag")
    assert release.matches("v1") and release.matches("v2.0.1-rc1")
    assert not release.matches("latest") and not release.matches("V1")
    assert Pattern.compile("*", "tag").matches("Any.Tag_1")
    for bad, reason in [("v**", "no path segments"), ("a/b", "cannot contain /"), ("v$", "$")]:
        with pytest.raises(PatternError, match=reason):
            Pattern.compile(bad, "tag")


def test_literal_prefix_and_specificity():
    assert Pattern.compile("team-a/**").prefix == "team-a"
    assert Pattern.compile("team-a/*/cache").prefix == "team-a/"
    assert Pattern.compile("**/cache").prefix == ""
    exact = Pattern.compile("team-a/app")
    assert exact.exact and exact.prefix == exact.suffix == "team-a/app"
    suffixes = {
        "*/svc": "/svc",
        "**/cache": "cache",
        "a/**/b": "b",
        "team-a/**": "",
        "x/[ab]c": "c",
    }
    for text, suffix in suffixes.items():
        assert Pattern.compile(text).suffix == suffix, text
    ordered = sorted(
        ["**", "team-a/**", "team-a/*", "team-a/*/cache", "team-a/app*", "team-a/app"],
        key=lambda text: Pattern.compile(text).specificity,
        reverse=True,
    )
    assert ordered == ["team-a/app", "team-a/app*", "team-a/*/cache", "team-a/*", "team-a/**", "**"]


@pytest.mark.parametrize(
    ("pattern", "inside", "outside"),
    [
        ("team-a/**", ["team-a", "team-a/x"], ["team-b", "team"]),
        ("team-a/app", ["team-a", "team-a/app"], ["team-b", "team-a/app2", "team-a/apps"]),
        ("**/cache", ["anything", "a/b"], []),
        ("team-*/app", ["team-a", "team-"], ["tea", "other"]),
    ],
)
def test_may_match_within_never_misses(pattern, inside, outside):
    compiled = Pattern.compile(pattern)
    for folder in inside:
        assert compiled.may_match_within(folder), folder
    for folder in outside:
        assert not compiled.may_match_within(folder), folder
