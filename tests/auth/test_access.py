"""Which access items each request needs (pure), and the challenge's scope string."""

from __future__ import annotations

import pytest

from distribution.api.access import CATALOG_ENDPOINT, required
from distribution.auth import Access, scope


def repo(name: str, *actions: str) -> list[Access]:
    return [Access("repository", name, action) for action in actions]


@pytest.mark.parametrize(
    ("method", "needed"),
    [
        ("GET", ["pull"]),
        ("HEAD", ["pull"]),
        ("POST", ["pull", "push"]),
        ("PUT", ["pull", "push"]),
        ("PATCH", ["pull", "push"]),
        ("DELETE", ["delete"]),
        ("OPTIONS", []),
    ],
)
def test_repository_actions_by_method(method, needed):
    assert required(method, "manifests.get_manifest", "library/ubuntu") == repo(
        "library/ubuntu", *needed
    )


def test_mount_also_needs_pull_on_the_source():
    assert required("POST", "uploads.start_upload", "dest", mount_from="src/app") == [
        *repo("dest", "pull", "push"),
        *repo("src/app", "pull"),
    ]


def test_catalog_and_base():
    assert required("GET", CATALOG_ENDPOINT, None) == [Access("registry", "catalog", "*")]
    assert required("GET", "base.version_check", None) == []
    assert required("GET", None, None) == []  # an unrouted /v2/ path: credentials only


def test_scope_groups_actions_per_resource():
    needed = required("POST", "uploads.start_upload", "dest", mount_from="src")
    assert scope(needed) == "repository:dest:pull,push repository:src:pull"
    assert scope([Access("registry", "catalog", "*")]) == "registry:catalog:*"
    assert scope([]) == ""


def test_detail_entry_is_shaped_as_go_marshals_it():
    assert Access("repository", "foo", "pull").to_dict() == {
        "Type": "repository",
        "Class": "",
        "Name": "foo",
        "Action": "pull",
    }
