"""skopeo against a registry in a real process: push, inspect, list tags, pull, delete.

Every test runs against the Go registry too: the same assertions pass there, so a failure on
ours is ours.
"""

from __future__ import annotations

import json
from pathlib import Path

import requests

from tests.e2e import images
from tests.e2e.checks import (
    IMAGE_TAGS,
    ImageSet,
    check_manifest,
    docker_ref,
    head,
    pull_dir,
    pull_oci,
)
from tests.e2e.harness import REQUEST_TIMEOUT, Server, Skopeo, sha256


def test_multi_layer_image_round_trip(
    registry: Server, skopeo: Skopeo, image_set: ImageSet, tmp_path: Path
) -> None:
    img = image_set.oci_image
    for tag in IMAGE_TAGS:
        skopeo.copy(image_set.oci("image"), docker_ref(registry, f"app:{tag}"))

    for tag in IMAGE_TAGS:
        check_manifest(skopeo, registry, f"app:{tag}", img)
    check_manifest(skopeo, registry, f"app@{img.digest}", img)
    info = skopeo.inspect(docker_ref(registry, "app:latest"))
    assert info["Digest"] == img.digest
    assert info["Layers"] == img.layer_digests
    assert sorted(info["RepoTags"]) == sorted(IMAGE_TAGS)
    assert sorted(skopeo.list_tags(docker_ref(registry, "app"))) == sorted(IMAGE_TAGS)
    for digest, data in img.all_blobs().items():
        response = requests.get(f"{registry.url}/v2/app/blobs/{digest}", timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, (digest, response.status_code)
        assert response.headers["Docker-Content-Digest"] == digest
        assert sha256(response.content) == digest
        assert len(response.content) == len(data)
    pull_oci(skopeo, registry, "app:1.1", img, tmp_path / "out")


def test_multi_arch_index_round_trip(
    registry: Server, skopeo: Skopeo, image_set: ImageSet, tmp_path: Path
) -> None:
    index = image_set.oci_index
    skopeo.copy(image_set.oci("index"), docker_ref(registry, "multi:v1"), "--all")

    check_manifest(skopeo, registry, "multi:v1", index)
    for child in index.children:
        check_manifest(skopeo, registry, f"multi@{child.digest}", child)
    for arch, child in zip(["amd64", "arm64"], index.children, strict=True):
        info = skopeo.inspect(docker_ref(registry, "multi:v1"), "--override-arch", arch)
        assert info["Architecture"] == arch
        assert info["Layers"] == child.layer_digests
    assert skopeo.list_tags(docker_ref(registry, "multi")) == ["v1"]
    pull_oci(skopeo, registry, "multi:v1", index, tmp_path / "out")


def test_docker_schema2_round_trip(
    registry: Server, skopeo: Skopeo, image_set: ImageSet, tmp_path: Path
) -> None:
    skopeo.copy(f"dir:{image_set.docker_image_dir}", docker_ref(registry, "docker:single"))
    skopeo.copy(f"dir:{image_set.docker_list_dir}", docker_ref(registry, "docker:list"), "--all")

    check_manifest(skopeo, registry, "docker:single", image_set.docker_image)
    check_manifest(skopeo, registry, "docker:list", image_set.docker_list)
    for child in image_set.docker_list.children:
        check_manifest(skopeo, registry, f"docker@{child.digest}", child)
    assert sorted(skopeo.list_tags(docker_ref(registry, "docker"))) == ["list", "single"]
    pull_dir(skopeo, registry, "docker:single", image_set.docker_image, tmp_path / "single")
    pull_dir(skopeo, registry, "docker:list", image_set.docker_list, tmp_path / "list")


def test_oci_image_converted_to_docker_schema2(
    registry: Server, skopeo: Skopeo, image_set: ImageSet, tmp_path: Path
) -> None:
    """skopeo rewrites the manifest and keeps the blobs: the registry stores what it was sent."""
    oci = image_set.oci_image
    skopeo.copy(image_set.oci("image"), docker_ref(registry, "converted:v2s2"), "--format=v2s2")

    raw = skopeo.inspect_raw(docker_ref(registry, "converted:v2s2"))
    manifest = json.loads(raw)
    assert manifest["mediaType"] == images.DOCKER_MANIFEST
    assert manifest["config"]["digest"] == oci.parsed["config"]["digest"]
    assert [layer["digest"] for layer in manifest["layers"]] == oci.layer_digests
    converted = images.Image(raw, images.DOCKER_MANIFEST, oci.blobs)
    check_manifest(skopeo, registry, f"converted@{converted.digest}", converted)
    pull_dir(skopeo, registry, "converted:v2s2", converted, tmp_path / "out")


def test_delete_by_digest(registry: Server, skopeo: Skopeo, image_set: ImageSet) -> None:
    img, index = image_set.oci_image, image_set.oci_index
    for tag in ["1.0", "latest"]:
        skopeo.copy(image_set.oci("image"), docker_ref(registry, f"app:{tag}"))
    skopeo.copy(image_set.oci("index"), docker_ref(registry, "app:keep"), "--all")

    skopeo.delete(docker_ref(registry, f"app@{img.digest}"))

    deleted = docker_ref(registry, f"app@{img.digest}")
    gone = skopeo.run("inspect", "--raw", "--tls-verify=false", deleted, check=False)
    assert gone.returncode != 0
    assert b"manifest unknown" in gone.stderr
    response = requests.get(
        f"{registry.url}/v2/app/manifests/{img.digest}",
        headers={"Accept": img.media_type},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    for reference in [img.digest, "1.0", "latest"]:
        response = head(registry, f"/v2/app/manifests/{reference}", accept=img.media_type)
        assert response.status_code == 404, (reference, response.status_code)
    assert skopeo.list_tags(docker_ref(registry, "app")) == ["keep"]
    check_manifest(skopeo, registry, "app:keep", index)
