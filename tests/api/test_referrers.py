"""The referrers API on both drivers, including data laid out by the Go registry."""

from __future__ import annotations

import json

import pytest

from distribution.digest import Digest
from distribution.manifest import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST
from distribution.storage import paths
from distribution.storage.blobs import RepositoryBlobs
from distribution.storage.driver import PathNotFoundError
from tests.api import registry_env
from tests.api.registry_env import EMPTY_CONFIG, Env, digest_of, dumps, error_code

# Fixtures, shared with the other API test modules.
env = registry_env.env
make_env = registry_env.make_env

SIGNATURE = "application/vnd.example.signature"
SBOM = "application/vnd.example.sbom"


def referrer(env: Env, name: str, subject: str, artifact_type: str | None, **fields) -> str:
    """Push an artifact manifest referring to ``subject``; return its digest."""
    config = env.seed_blob(name, b"{}")
    config["mediaType"] = EMPTY_CONFIG if artifact_type else "application/vnd.example.config"
    subject_descriptor = {"mediaType": OCI_MANIFEST, "digest": subject, "size": 100}
    extra = {"artifactType": artifact_type} if artifact_type else {}
    body = env.image(name, config=config, subject=subject_descriptor, **extra, **fields)
    return env.push(name, digest_of(body), body)


def referrers_of(env: Env, name: str, digest: str, query: str = ""):
    return env.client.get(f"/v2/{name}/referrers/{digest}{query}")


def test_lists_referrers_with_their_descriptors(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    signature = referrer(env, "app", subject, SIGNATURE, annotations={"by": "me"})
    sbom = referrer(env, "app", subject, SBOM)
    referrer(env, "app", digest_of(b"another subject"), SIGNATURE)
    env.push("app", "v2", env.image("app", seed="unrelated"))

    response = referrers_of(env, "app", subject)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in response.headers
    index = response.get_json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {m["digest"]: m for m in index["manifests"]}
    assert set(by_digest) == {signature, sbom}
    assert by_digest[signature] == {
        "mediaType": OCI_MANIFEST,
        "digest": signature,
        "size": len(env.get("app", signature).get_data()),
        "artifactType": SIGNATURE,
        "annotations": {"by": "me"},
    }
    assert by_digest[sbom]["artifactType"] == SBOM
    assert "annotations" not in by_digest[sbom]


def test_artifact_type_falls_back_to_config_media_type(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    digest = referrer(env, "app", subject, None)
    [found] = referrers_of(env, "app", subject).get_json()["manifests"]
    assert found["digest"] == digest
    assert found["artifactType"] == "application/vnd.example.config"


def test_index_referrer(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": SBOM,
        "manifests": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    }
    digest = env.push("app", digest_of(dumps(doc)), dumps(doc), OCI_INDEX)
    [found] = referrers_of(env, "app", subject).get_json()["manifests"]
    assert found["digest"] == digest
    assert found["mediaType"] == OCI_INDEX and found["artifactType"] == SBOM


def test_filter_by_artifact_type(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    signature = referrer(env, "app", subject, SIGNATURE)
    referrer(env, "app", subject, SBOM)
    response = referrers_of(env, "app", subject, f"?artifactType={SIGNATURE}")
    assert response.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in response.get_json()["manifests"]] == [signature]
    response = referrers_of(env, "app", subject, "?artifactType=application/none")
    assert response.get_json()["manifests"] == []
    assert response.headers["OCI-Filters-Applied"] == "artifactType"


def test_referrer_pushed_before_its_subject(env: Env) -> None:
    future = digest_of(b"not pushed yet")
    digest = referrer(env, "app", future, SIGNATURE)
    assert [m["digest"] for m in referrers_of(env, "app", future).get_json()["manifests"]] == [
        digest
    ]


def test_deleted_referrer_disappears(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    digest = referrer(env, "app", subject, SIGNATURE)
    assert env.client.delete(f"/v2/app/manifests/{digest}").status_code == 202
    assert referrers_of(env, "app", subject).get_json()["manifests"] == []


def test_referrers_are_per_repository(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    referrer(env, "app", subject, SIGNATURE)
    assert referrers_of(env, "other", subject).get_json()["manifests"] == []


@pytest.mark.parametrize("name", ["app", "no/such/repo"])
def test_unknown_subject_is_an_empty_index(env: Env, name: str) -> None:
    env.push("app", "v1", env.image("app"))
    response = referrers_of(env, name, digest_of(b"nothing"))
    assert response.status_code == 200
    assert response.get_json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_schema1_docker_and_damaged_manifests_are_skipped(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    env.push("app", "docker", env.image("app", DOCKER_MANIFEST, seed="d"), DOCKER_MANIFEST)
    revisions = RepositoryBlobs(env.registry.blobs, "app", paths.manifest_revision_link)
    old = {"schemaVersion": 1, "name": "app", "fsLayers": [], "signatures": []}
    for content in (json.dumps(old).encode(), b"not json", b'{"schemaVersion": 2, "subject": 1}'):
        revisions.link(env.registry.blobs.put(content).digest)
    digest = referrer(env, "app", subject, SIGNATURE)
    found = referrers_of(env, "app", subject).get_json()["manifests"]
    assert [m["digest"] for m in found] == [digest]


@pytest.mark.parametrize("reference", ["latest", "sha256:abc", "md5:" + "0" * 32])
def test_malformed_digest(env: Env, reference: str) -> None:
    response = referrers_of(env, "app", reference)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"


def test_name_invalid(env: Env) -> None:
    response = referrers_of(env, "Bad", digest_of(b"x"))
    assert response.status_code == 400 and error_code(response) == "NAME_INVALID"


def go_writes(env: Env, name: str, body: bytes) -> str:
    """Store a manifest as the Go registry does: a blob and a revision link, no index entry."""
    digest = env.registry.blobs.put(body).digest
    RepositoryBlobs(env.registry.blobs, name, paths.manifest_revision_link).link(digest)
    return str(digest)


def artifact(env: Env, name: str, subject: str, seed: str) -> bytes:
    config = env.seed_blob(name, b"{}")
    config["mediaType"] = EMPTY_CONFIG
    return env.image(
        name,
        seed=seed,
        config=config,
        artifactType=SIGNATURE,
        subject={"mediaType": OCI_MANIFEST, "digest": subject, "size": 100},
    )


def test_a_repository_go_wrote_is_scanned_once_then_served_from_the_index(env: Env) -> None:
    subject = go_writes(env, "app", env.image("app"))
    by_go = go_writes(env, "app", artifact(env, "app", subject, "go"))
    with pytest.raises(PathNotFoundError):  # no index yet
        env.registry.driver.stat(paths.referrers_indexed("app"))

    found = referrers_of(env, "app", subject).get_json()["manifests"]
    assert [m["digest"] for m in found] == [by_go]
    env.registry.driver.stat(paths.referrers_indexed("app"))  # made by that first call
    ours = referrer(env, "app", subject, SIGNATURE)
    found = referrers_of(env, "app", subject).get_json()["manifests"]
    assert sorted(m["digest"] for m in found) == sorted([by_go, ours])


def test_a_referrer_go_deleted_drops_out(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    digest = referrer(env, "app", subject, SIGNATURE)
    assert len(referrers_of(env, "app", subject).get_json()["manifests"]) == 1
    # Go's manifest delete removes the link only
    env.registry.driver.delete(paths.manifest_revision_link("app", Digest.parse(digest)))
    assert referrers_of(env, "app", subject).get_json()["manifests"] == []


def test_a_call_reads_the_subjects_entries_not_every_manifest(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    for i in range(30):
        env.push("app", f"other-{i}", env.image("app", seed=f"other {i}"))
    mine = referrer(env, "app", subject, SIGNATURE)
    assert len(referrers_of(env, "app", subject).get_json()["manifests"]) == 1  # indexes

    driver = env.registry.blobs.driver
    reads = []
    real = driver.get_content
    driver.get_content = lambda path: reads.append(path) or real(path)  # type: ignore[method-assign]
    try:
        found = referrers_of(env, "app", subject).get_json()["manifests"]
    finally:
        driver.get_content = real  # type: ignore[method-assign]
    assert [m["digest"] for m in found] == [mine]
    assert len(reads) <= 3, reads  # the entry and the manifest's link, not 32 manifests


def test_referrers_come_in_pages_with_a_link(env: Env) -> None:
    subject = env.push("app", "v1", env.image("app"))
    digests = sorted(
        referrer(env, "app", subject, SIGNATURE, annotations={"i": str(i)}) for i in range(5)
    )
    referrer(env, "app", subject, SBOM)

    seen, query = [], f"?artifactType={SIGNATURE}&n=2"
    for _ in range(5):
        response = referrers_of(env, "app", subject, query)
        assert response.headers["OCI-Filters-Applied"] == "artifactType"
        seen += [m["digest"] for m in response.get_json()["manifests"]]
        link = response.headers.get("Link")
        if link is None:
            break
        assert link.startswith(f"</v2/app/referrers/{subject}?artifactType=")
        query = "?" + link.split("?", 1)[1].split(">", 1)[0]
    assert seen == digests
    assert referrers_of(env, "app", subject, "?n=x").status_code == 400
    assert referrers_of(env, "app", subject, "?n=1001").status_code == 400
