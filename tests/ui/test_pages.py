"""The UI's pure parts: tag order, paging, safe redirects, formats, and reading manifests and
configs (odd and hostile ones included)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from distribution import manifest
from distribution.ui import facts, pages, versions


def test_version_order():
    tags = ["v1.10", "latest", "v1.9", "1.0", "1.0.1", "1.0-rc1", "1.0-rc2", "v2", "01", "1",
            "3.19-alpine", "3.19", "build-000010", "build-000009"]  # fmt: skip
    assert sorted(tags, key=versions.key) == [
        "01", "1", "1.0-rc1", "1.0-rc2", "1.0", "1.0.1", "3.19-alpine", "3.19",
        "build-000009", "build-000010", "latest", "v1.9", "v1.10", "v2",
    ]  # fmt: skip


def test_pagination_clamps_and_offers_nearby_pages():
    page = pages.paginate(list(range(95)), 3, 10)
    assert list(page.items) == list(range(20, 30))
    assert (page.previous, page.next, page.count, page.total) == (2, 4, 10, 95)
    assert page.numbers == [1, 2, 3, 4, 5, None, 10]
    assert pages.paginate(list(range(95)), 99, 10).number == 10
    assert pages.paginate([], 1, 10).count == 1
    assert [pages.page_number(v) for v in (None, "", "x", "-1", "0", "7", "9" * 20)] == [
        1, 1, 1, 1, 1, 7, 1,
    ]  # fmt: skip


def test_namespaces_and_matching():
    names = ["a/x", "a/y/z", "b/x", "solo"]
    assert pages.namespaces(names) == [("", 1), ("a", 2), ("b", 1)]
    assert pages.matching(names, " X ") == ["a/x", "b/x"]
    assert pages.matching(names, "", "") == ["solo"]
    assert pages.matching(names, "z", "a") == ["a/y/z"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/ui/r/a/b?sort=name", "/ui/r/a/b?sort=name"),
        ("/ui/", "/ui/"),
        ("/ui", "/ui"),
        (None, "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/\\evil.example", "/ui/"),
        ("///evil.example", "/ui/"),
        ("/v2/_catalog", "/ui/"),
        ("/uix", "/ui/"),
        ("/ui/\nx", "/ui/"),
        ("/ui/../v2/_catalog", "/ui/"),
        ("/ui/%2e%2e/v2/_catalog", "/ui/"),
        ("/ui/.%2E/x", "/ui/"),
        ("/ui/./r/a", "/ui/"),
        ("/ui/..", "/ui/"),
        ("/ui/r/a..b/c", "/ui/r/a..b/c"),
    ],
)
def test_safe_next(target, expected):
    assert pages.safe_next(target, "/ui/", "/ui/") == expected


def test_formats():
    assert [pages.human_size(n) for n in (None, 0, 999, 1000, 2_700, 6_700_000, 10**13)] == [
        "\u2013", "0 B", "999 B", "1.0 kB", "2.7 kB", "6.7 MB", "10.0 TB",
    ]  # fmt: skip
    now = datetime(2026, 5, 1, tzinfo=UTC)
    ago = [pages.ago(now - timedelta(seconds=s), now) for s in (5, 90, 7200, 86400 * 3, -3600)]
    assert ago == ["just now", "2 minutes ago", "2 hours ago", "3 days ago", "in the future"]
    assert pages.timestamp(now) == "2026-05-01 00:00:00 UTC"
    assert pages.short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert pages.command_line(["sh", "-c", "echo <x>"]) == '["sh", "-c", "echo <x>"]'


def test_an_image_manifest_and_its_config():
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": manifest.OCI_MANIFEST,
            "config": {"mediaType": facts.OCI_CONFIG, "digest": "sha256:" + "1" * 64, "size": 10},
            "layers": [
                {"mediaType": manifest.OCI_LAYER_GZIP, "digest": "sha256:" + "2" * 64, "size": 5},
                {"mediaType": manifest.OCI_LAYER_GZIP, "digest": "sha256:" + "2" * 64, "size": 5},
            ],
            "annotations": {"b": "2", "a": "1"},
        }
    ).encode()
    found = facts.read_manifest(body)
    assert (found.kind, found.content_size, found.annotations) == (
        "image",
        20,
        (("a", "1"), ("b", "2")),
    )
    config = facts.read_config(
        json.dumps(
            {
                "architecture": "arm64",
                "os": "linux",
                "variant": "v8",
                "created": "2026-01-02T03:04:05.123456789+02:00",
                "config": {
                    "Env": ["A=1=2", "B"],
                    "Entrypoint": "sh",
                    "ExposedPorts": {"80/tcp": {}},
                },
                "history": [{"created_by": "RUN x", "empty_layer": True}, "junk"],
            }
        ).encode()
    )
    assert str(config.platform) == "linux/arm64/v8"
    assert config.created == datetime(2026, 1, 2, 1, 4, 5, 123456, tzinfo=UTC)
    assert config.env == (("A", "1=2"), ("B", ""))
    assert config.entrypoint == ("sh",)
    assert config.exposed_ports == ("80/tcp",)
    assert [h.created_by for h in config.history] == ["RUN x"]
    summary = facts.summarise(found, config)
    assert summary.size == 15  # the layer shared twice counts once
    assert summary.platforms[0].platform == "linux/arm64/v8"


@pytest.mark.parametrize(
    ("doc", "kind"),
    [
        ({"schemaVersion": 2, "mediaType": manifest.OCI_INDEX, "manifests": []}, "index"),
        ({"schemaVersion": 2, "manifests": [{"digest": 1}]}, "index"),
        ({"schemaVersion": 2, "artifactType": "application/x", "config": {}, "layers": []},
         "artifact"),
        ({"schemaVersion": 2, "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json"},
          "layers": []}, "artifact"),
        ({"schemaVersion": 2, "config": {"mediaType": facts.OCI_CONFIG},
          "layers": [{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}]},
         "artifact"),
        ({"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:x"}]}, "image"),
        ({"schemaVersion": 3}, "unknown"),
        ({"schemaVersion": 2, "mediaType": "text/html"}, "unknown"),
    ],
)  # fmt: skip
def test_kinds(doc, kind):
    assert facts.read_manifest(json.dumps(doc).encode()).kind == kind


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"{", b"[" * 100000, b"\xff\xfe"])
def test_what_is_not_json_is_shown_as_a_problem(body):
    assert facts.read_manifest(body).kind == "unknown"
    assert facts.read_config(body).problem
    assert isinstance(facts.pretty_json(body), str)


def test_fields_of_the_wrong_type_become_text():
    config = facts.read_config(
        json.dumps(
            {
                "created": 5,
                "config": {
                    "Labels": {"n": 1, "o": {"x": [1]}},
                    "Cmd": [1, None],
                    "User": ["root"],
                    "Env": "A=1",
                },
            }
        ).encode()
    )
    assert config.created is None
    assert config.labels == (("n", "1"), ("o", '{"x": [1]}'))
    assert config.cmd == ("1", "")
    assert config.user == '["root"]'
    assert config.env == ()
