"""What the end-to-end tests push, and how they prove a registry gives it back unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from tests.e2e import images
from tests.e2e.harness import REQUEST_TIMEOUT, Server, Skopeo

#: Tags the multi-layer image is pushed under (more than one page for a small ``n``).
IMAGE_TAGS = ["1.0", "1.1", "2.0", "latest", "stable"]


@dataclass(frozen=True)
class ImageSet:
    """The images the tests push and the on-disk layouts skopeo reads them from."""

    oci_image: images.Image
    oci_index: images.Image
    docker_image: images.Image
    docker_list: images.Image
    oci_layout: Path  # tags "image" and "index"
    docker_image_dir: Path
    docker_list_dir: Path

    @classmethod
    def build(cls, base: Path) -> ImageSet:
        built = cls(
            oci_image=images.multi_layer_image(seed=1),
            oci_index=images.multi_arch_index(seed=2),
            docker_image=images.multi_layer_image(seed=3, docker=True),
            docker_list=images.multi_arch_index(seed=4, docker=True),
            oci_layout=base / "oci",
            docker_image_dir=base / "docker-image",
            docker_list_dir=base / "docker-list",
        )
        images.write_oci_layout(
            built.oci_layout, {"image": built.oci_image, "index": built.oci_index}
        )
        images.write_dir_layout(built.docker_image_dir, built.docker_image)
        images.write_dir_layout(built.docker_list_dir, built.docker_list)
        return built

    def oci(self, tag: str) -> str:
        return f"oci:{self.oci_layout}:{tag}"

    def pushed(self) -> dict[str, images.Image]:
        """What :func:`push_all` stores, by ``repo:tag``."""
        return {
            **{f"oci/image:{tag}": self.oci_image for tag in IMAGE_TAGS},
            "oci/index:multi": self.oci_index,
            "docker/image:v2s2": self.docker_image,
            "docker/list:multi": self.docker_list,
        }


def docker_ref(server: Server, repo_ref: str) -> str:
    return f"docker://{server.netloc}/{repo_ref}"


def push_all(skopeo: Skopeo, server: Server, image_set: ImageSet) -> None:
    """Every test image, unchanged: OCI image (several tags), OCI index, Docker image and list."""
    for tag in IMAGE_TAGS:
        skopeo.copy(image_set.oci("image"), docker_ref(server, f"oci/image:{tag}"))
    skopeo.copy(image_set.oci("index"), docker_ref(server, "oci/index:multi"), "--all")
    skopeo.copy(f"dir:{image_set.docker_image_dir}", docker_ref(server, "docker/image:v2s2"))
    skopeo.copy(
        f"dir:{image_set.docker_list_dir}", docker_ref(server, "docker/list:multi"), "--all"
    )


def check_all(skopeo: Skopeo, server: Server, image_set: ImageSet, work: Path) -> None:
    """Everything :func:`push_all` stored comes back byte for byte, with its tags and repos."""
    for repo_ref, img in image_set.pushed().items():
        check_manifest(skopeo, server, repo_ref, img)
    check_manifest(skopeo, server, f"oci/image@{image_set.oci_image.digest}", image_set.oci_image)
    for repo, parent in [
        ("oci/index", image_set.oci_index),
        ("docker/list", image_set.docker_list),
    ]:
        for child in parent.children:
            check_manifest(skopeo, server, f"{repo}@{child.digest}", child)
    assert sorted(skopeo.list_tags(docker_ref(server, "oci/image"))) == sorted(IMAGE_TAGS)
    assert skopeo.list_tags(docker_ref(server, "oci/index")) == ["multi"]
    response = get(server, "/v2/_catalog")
    assert response.json() == {
        "repositories": ["docker/image", "docker/list", "oci/image", "oci/index"]
    }
    pull_oci(skopeo, server, "oci/image:latest", image_set.oci_image, work / "image")
    pull_oci(skopeo, server, "oci/index:multi", image_set.oci_index, work / "index")
    pull_dir(skopeo, server, "docker/image:v2s2", image_set.docker_image, work / "docker-image")
    pull_dir(skopeo, server, "docker/list:multi", image_set.docker_list, work / "docker-list")


def check_manifest(skopeo: Skopeo, server: Server, repo_ref: str, img: images.Image) -> None:
    """skopeo reads ``img``'s exact bytes; HEAD gives its digest, type and length."""
    assert skopeo.inspect_raw(docker_ref(server, repo_ref)) == img.manifest, repo_ref
    repo, reference = _split(repo_ref)
    response = head(server, f"/v2/{repo}/manifests/{reference}", accept=img.media_type)
    assert response.status_code == 200, (repo_ref, response.status_code)
    assert response.headers["Docker-Content-Digest"] == img.digest
    assert response.headers["Content-Type"] == img.media_type
    assert int(response.headers["Content-Length"]) == len(img.manifest)


def pull_oci(skopeo: Skopeo, server: Server, repo_ref: str, img: images.Image, out: Path) -> None:
    """Copy out to a fresh OCI layout: the same manifest digest and every blob, no more."""
    out.parent.mkdir(parents=True, exist_ok=True)
    skopeo.copy(docker_ref(server, repo_ref), f"oci:{out}:pulled", "--all")
    tags, blobs = images.read_oci_layout(out)
    assert tags == {"pulled": img.digest}
    assert blobs.keys() == img.all_manifests().keys() | img.all_blobs().keys()


def pull_dir(skopeo: Skopeo, server: Server, repo_ref: str, img: images.Image, out: Path) -> None:
    """Copy out to a fresh ``dir:`` (keeps Docker manifests as they are): same bytes, same blobs."""
    out.parent.mkdir(parents=True, exist_ok=True)
    skopeo.copy(docker_ref(server, repo_ref), f"dir:{out}", "--all")
    manifest, blobs = images.read_dir_layout(out)
    assert manifest == img.manifest
    children = img.all_manifests().keys() - {img.digest}
    assert blobs.keys() == children | img.all_blobs().keys()


def get(server: Server, path: str, **headers: str) -> requests.Response:
    response = requests.get(server.url + path, headers=headers, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, (path, response.status_code, response.text)
    return response


def head(server: Server, path: str, accept: str) -> requests.Response:
    return requests.head(server.url + path, headers={"Accept": accept}, timeout=REQUEST_TIMEOUT)


def _split(repo_ref: str) -> tuple[str, str]:
    """``repo:tag`` or ``repo@digest`` as ``(repo, reference)``."""
    if "@" in repo_ref:
        repo, _, reference = repo_ref.partition("@")
    else:
        repo, _, reference = repo_ref.rpartition(":")
    return repo, reference
