"""A data volume moves between the Go registry and ours, in both directions.

One registry is pushed to with skopeo and stopped; the other serves the same root directory and
must give everything back. Go to Go and ours to ours run too: the first proves the harness, the
second that nothing we need lives outside storage.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.checks import (
    ImageSet,
    check_all,
    check_manifest,
    docker_ref,
    pull_oci,
    push_all,
)
from tests.e2e.harness import KINDS, Skopeo, StartServer

PAIRS = [(writer, reader) for writer in KINDS for reader in KINDS]


@pytest.mark.parametrize(("writer", "reader"), PAIRS, ids=[f"{w}-to-{r}" for w, r in PAIRS])
def test_volume_moves_between_registries(
    writer: str,
    reader: str,
    start_server: StartServer,
    skopeo: Skopeo,
    image_set: ImageSet,
    tmp_path: Path,
) -> None:
    root = tmp_path / "shared-root"
    first = start_server(writer, root)
    push_all(skopeo, first, image_set)
    first.stop()

    second = start_server(reader, root)
    check_all(skopeo, second, image_set, tmp_path / "pulled")

    # The reader also writes into what the writer stored: a new tag, and a copy to a new
    # repository (skopeo mounts the blobs it has just pulled from oci/image).
    skopeo.copy(
        docker_ref(second, "oci/index:multi"), docker_ref(second, "oci/index:again"), "--all"
    )
    skopeo.copy(docker_ref(second, "oci/image:latest"), docker_ref(second, "copied/image:latest"))
    assert sorted(skopeo.list_tags(docker_ref(second, "oci/index"))) == ["again", "multi"]
    check_manifest(skopeo, second, "oci/index:again", image_set.oci_index)
    pull_oci(skopeo, second, "copied/image:latest", image_set.oci_image, tmp_path / "copied")
