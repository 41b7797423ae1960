"""The mark's pure parts: what a manifest references, and which manifests a repository keeps."""

from __future__ import annotations

import json

import pytest

from distribution import errors
from distribution.digest import Digest
from distribution.storage import gc


def d(n: int) -> Digest:
    return Digest("sha256", f"{n:064x}")


def test_kept_manifests_follows_children_and_referrers() -> None:
    nodes = {
        d(1): gc.Node((d(2), d(3))),  # an index of 2 and 3
        d(2): gc.Node((d(10), d(11))),
        d(3): gc.Node((d(10), d(12))),
        d(4): gc.Node((d(13),), subject=d(2)),  # a signature of child 2
        d(5): gc.Node((d(14),), subject=d(4)),  # a signature of that signature
        d(6): gc.Node((d(15),)),  # untagged, unreferenced
        d(7): gc.Node((d(16),), subject=d(6)),  # referrer of the untagged one
    }
    assert gc.kept_manifests(nodes, [d(1)]) == {d(1), d(2), d(3), d(4), d(5)}
    assert gc.kept_manifests(nodes, [d(6)]) == {d(6), d(7)}
    assert gc.kept_manifests(nodes, [d(99)]) == set()
    assert gc.kept_manifests(nodes, []) == set()


def test_kept_manifests_survives_cycles() -> None:
    nodes = {d(1): gc.Node((d(2),), subject=d(2)), d(2): gc.Node((d(1),), subject=d(1))}
    assert gc.kept_manifests(nodes, [d(1)]) == {d(1), d(2)}


def test_read_node_of_each_manifest_kind() -> None:
    image = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "x", "digest": str(d(1)), "size": 1},
        "layers": [{"mediaType": "y", "digest": str(d(2)), "size": 1}],
        "subject": {"mediaType": "z", "digest": str(d(3)), "size": 1},
    }
    assert gc.read_node(json.dumps(image).encode()) == gc.Node((d(1), d(2)), subject=d(3))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [{"mediaType": "m", "digest": str(d(4)), "size": 1}],
    }
    assert gc.read_node(json.dumps(index).encode()) == gc.Node((d(4),))
    schema1 = {"schemaVersion": 1, "fsLayers": [{"blobSum": str(d(5))}, {"blobSum": str(d(6))}]}
    assert gc.read_node(json.dumps(schema1).encode()) == gc.Node((d(5), d(6)))


@pytest.mark.parametrize(
    "body", [b"not json", b'{"schemaVersion": 1, "fsLayers": [{"blobSum": "x"}]}', b"[]"]
)
def test_read_node_refuses_what_is_no_manifest(body: bytes) -> None:
    with pytest.raises(errors.RegistryError):
        gc.read_node(body)


def test_manifest_deletion_prints_like_go() -> None:
    deletion = gc.ManifestDeletion("app", d(1), ("latest", "v1"))
    assert str(deletion) == f"{{app {d(1)} [latest v1]}}"


def test_settle_defaults_to_the_grace_period_capped() -> None:
    assert gc.Options(grace=5).settle_seconds == 5
    assert gc.Options(grace=3600).settle_seconds == gc.MAX_SETTLE
    assert gc.Options(grace=3600, settle=0).settle_seconds == 0
