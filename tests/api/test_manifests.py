"""The manifests API on both drivers: every manifest type, negotiation, each error code."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from distribution import manifest
from distribution.config import parse
from distribution.digest import Digest
from distribution.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1,
    SCHEMA1_SIGNED,
)
from distribution.storage import paths
from distribution.storage.blobs import RepositoryBlobs
from distribution.storage.registry import Registry
from distribution.storage.tags import TagStore
from tests.api import registry_env
from tests.api.registry_env import (
    ACCEPT_ALL,
    Env,
    MakeEnv,
    build_env,
    digest_of,
    dumps,
    error_code,
)

# Fixtures, shared with the other API test modules.
env = registry_env.env
make_env = registry_env.make_env

UNKNOWN_DIGEST = "sha256:" + "e" * 64


def child_index(env: Env, name: str, media_type: str = OCI_INDEX) -> tuple[bytes, list[str]]:
    """An index of two pushed images, amd64 and arm64; returns it and the children's digests."""
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    children = []
    for arch in ("arm64", "amd64"):
        body = env.image(name, child_type, seed=arch)
        children.append(
            {
                "mediaType": child_type,
                "digest": env.push(name, digest_of(body), body, child_type),
                "size": len(body),
                "platform": {"architecture": arch, "os": "linux"},
            }
        )
    doc = {"schemaVersion": 2, "mediaType": media_type, "manifests": children}
    return dumps(doc), [child["digest"] for child in children]


class TestPushAndPull:
    @pytest.mark.parametrize(
        "media_type", [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST]
    )
    def test_round_trip_by_tag_and_digest(self, env: Env, media_type: str) -> None:
        if media_type in manifest.INDEXES:
            body, _ = child_index(env, "lib/app", media_type)
        else:
            body = env.image("lib/app", media_type)
        digest = digest_of(body)

        put = env.put("lib/app", "v1", body, media_type)
        assert put.status_code == 201
        assert put.headers["Docker-Content-Digest"] == digest
        assert put.headers["Location"] == f"http://localhost/v2/lib/app/manifests/{digest}"
        assert put.get_data() == b""
        assert "Content-Type" not in put.headers  # as from Go: no body, no type

        for ref in ("v1", digest):
            got = env.get("lib/app", ref)
            assert got.status_code == 200
            assert got.get_data() == body
            assert got.headers["Content-Type"] == media_type
            assert got.headers["Docker-Content-Digest"] == digest
            assert got.headers["Content-Length"] == str(len(body))
            assert got.headers["ETag"] == f'"{digest}"'
            assert got.headers["Docker-Distribution-API-Version"] == "registry/2.0"
            head = env.get("lib/app", ref, method="HEAD")
            assert head.status_code == 200 and head.get_data() == b""
            assert head.headers["Content-Length"] == str(len(body))
            assert head.headers["Docker-Content-Digest"] == digest

    def test_put_by_digest(self, env: Env) -> None:
        body = env.image("app")
        put = env.put("app", digest_of(body), body)
        assert put.status_code == 201
        assert env.get("app", digest_of(body)).get_data() == body

    def test_content_type_with_parameters(self, env: Env) -> None:
        body = env.image("app")
        assert env.put("app", "t", body, f"{OCI_MANIFEST}; charset=utf-8").status_code == 201
        assert env.get("app", "t").headers["Content-Type"] == OCI_MANIFEST

    def test_body_is_kept_byte_for_byte(self, env: Env) -> None:
        body = env.image("app").replace(b"\n", b"\r\n  ") + b"\n\n"
        env.push("app", "t", body)
        assert env.get("app", "t").get_data() == body

    def test_retag_moves_the_tag(self, env: Env) -> None:
        first = env.push("app", "t", env.image("app", seed="1"))
        second = env.push("app", "t", env.image("app", seed="2"))
        assert env.get("app", "t").headers["Docker-Content-Digest"] == second
        assert env.get("app", first).status_code == 200

    def test_manifest_of_exactly_the_size_limit(self, env: Env) -> None:
        body = env.image("app", annotations={"pad": ""})
        body = body.replace(
            b'"pad": ""', b'"pad": "' + b"x" * (manifest.MAX_SIZE - len(body)) + b'"'
        )
        assert len(body) == manifest.MAX_SIZE
        assert env.put("app", "big", body).status_code == 201
        assert env.get("app", "big").get_data() == body

    def test_location_honours_forwarded_headers(self, env: Env) -> None:
        body = env.image("app")
        put = env.client.put(
            "/v2/app/manifests/t",
            data=body,
            headers={
                "Content-Type": OCI_MANIFEST,
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "registry.example.com",
            },
        )
        expected = f"https://registry.example.com/v2/app/manifests/{digest_of(body)}"
        assert put.headers["Location"] == expected

    def test_subject_that_does_not_exist_yet(self, env: Env) -> None:
        body = env.image(
            "app", subject={"mediaType": OCI_MANIFEST, "digest": UNKNOWN_DIGEST, "size": 9}
        )
        put = env.put("app", digest_of(body), body)
        assert put.status_code == 201
        assert put.headers["OCI-Subject"] == UNKNOWN_DIGEST

    def test_no_subject_no_header(self, env: Env) -> None:
        assert "OCI-Subject" not in env.put("app", "t", env.image("app")).headers

    def test_artifact_with_empty_config(self, env: Env) -> None:
        config = env.seed_blob("app", b"{}")
        config["mediaType"] = "application/vnd.oci.empty.v1+json"
        body = env.image("app", config=config, artifactType="application/vnd.example+type")
        assert env.put("app", "art", body).status_code == 201

    def test_if_none_match(self, env: Env) -> None:
        digest = env.push("app", "t", env.image("app"))
        for value in (f'"{digest}"', digest):
            response = env.client.get(
                "/v2/app/manifests/t", headers={"Accept": ACCEPT_ALL, "If-None-Match": value}
            )
            assert response.status_code == 304
            assert response.get_data() == b""
        response = env.client.get(
            "/v2/app/manifests/t", headers={"Accept": ACCEPT_ALL, "If-None-Match": '"other"'}
        )
        assert response.status_code == 200


class TestSchema1:
    """Schema 1 is read-only: stored by an old registry, served as is, never accepted."""

    def seed(self, env: Env, doc: dict) -> tuple[bytes, str]:
        body = json.dumps(doc, indent=3).encode()
        descriptor = env.registry.blobs.put(body)
        RepositoryBlobs(env.registry.blobs, "old", paths.manifest_revision_link).link(
            descriptor.digest
        )
        TagStore(env.registry.driver, "old").tag("v1", descriptor.digest)
        return body, str(descriptor.digest)

    @pytest.mark.parametrize(
        ("extra", "media_type"),
        [
            ({"signatures": [{"header": {}, "signature": "x", "protected": "y"}]}, SCHEMA1_SIGNED),
            ({}, SCHEMA1),
        ],
    )
    def test_stored_schema1_is_served(self, env: Env, extra: dict, media_type: str) -> None:
        doc = {"schemaVersion": 1, "name": "old", "tag": "v1", "fsLayers": [], "history": []}
        body, digest = self.seed(env, {**doc, **extra})
        for accept in (None, ACCEPT_ALL):
            for ref in ("v1", digest):
                got = env.get("old", ref, accept=accept)
                assert got.status_code == 200
                assert got.get_data() == body
                assert got.headers["Content-Type"] == media_type
                assert got.headers["Docker-Content-Digest"] == digest

    @pytest.mark.parametrize("content_type", [SCHEMA1, SCHEMA1_SIGNED])
    def test_schema1_push_is_refused(self, env: Env, content_type: str) -> None:
        body = dumps({"schemaVersion": 1, "name": "old", "tag": "v1", "fsLayers": []})
        response = env.put("old", "v1", body, content_type)
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_INVALID"


class TestNegotiation:
    """What v3 answers depending on ``Accept``; ``*/*`` and no header accept no OCI."""

    @pytest.mark.parametrize("accept", [None, "*/*", DOCKER_MANIFEST, f"{OCI_INDEX}"])
    def test_oci_manifest_needs_oci_accept(self, env: Env, accept: str | None) -> None:
        env.push("app", "t", env.image("app"))
        response = env.get("app", "t", accept=accept)
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"
        assert "OCI manifest found" in response.get_json()["errors"][0]["message"]

    def test_oci_manifest_with_q_value(self, env: Env) -> None:
        env.push("app", "t", env.image("app"))
        assert env.get("app", "t", accept=f"*/*;q=0.1, {OCI_MANIFEST};q=0.5").status_code == 200

    @pytest.mark.parametrize(
        "accept", [f"{OCI_MANIFEST}; charset=utf-8", f"{OCI_MANIFEST};q=2", f"x/y, {OCI_MANIFEST}"]
    )
    def test_an_accepted_type_is_read_before_its_parameters(self, env: Env, accept: str) -> None:
        """As Go's ``mime.ParseMediaType``: parameters, even a bad ``q``, do not hide the type."""
        env.push("app", "t", env.image("app"))
        assert env.get("app", "t", accept=accept).status_code == 200

    @pytest.mark.parametrize("accept", [None, "*/*", OCI_MANIFEST])
    def test_oci_index_needs_oci_index_accept(self, env: Env, accept: str | None) -> None:
        body, _ = child_index(env, "app")
        env.push("app", "t", body, OCI_INDEX)
        response = env.get("app", "t", accept=accept)
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"
        assert env.get("app", "t", accept=OCI_INDEX).status_code == 200

    @pytest.mark.parametrize("accept", [None, "*/*", OCI_MANIFEST])
    def test_docker_manifest_is_served_to_anyone(self, env: Env, accept: str | None) -> None:
        body = env.image("app", DOCKER_MANIFEST)
        env.push("app", "t", body, DOCKER_MANIFEST)
        response = env.get("app", "t", accept=accept)
        assert response.status_code == 200 and response.get_data() == body

    def test_list_by_tag_falls_back_to_amd64_image(self, env: Env) -> None:
        body, (_, amd) = child_index(env, "app", DOCKER_MANIFEST_LIST)
        env.push("app", "t", body, DOCKER_MANIFEST_LIST)
        got = env.get("app", "t", accept=DOCKER_MANIFEST)
        assert got.status_code == 200
        assert got.headers["Docker-Content-Digest"] == amd
        assert got.headers["Content-Type"] == DOCKER_MANIFEST
        assert digest_of(got.get_data()) == amd
        assert env.get("app", "t", accept=DOCKER_MANIFEST_LIST).get_data() == body

    def test_list_fallback_child_must_be_accepted(self, env: Env) -> None:
        body, _ = child_index(env, "app", DOCKER_MANIFEST_LIST)
        env.push("app", "t", body, DOCKER_MANIFEST_LIST)
        response = env.get("app", "t", accept=None)
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_INVALID"

    def test_list_by_digest_is_served_as_is(self, env: Env) -> None:
        body, _ = child_index(env, "app", DOCKER_MANIFEST_LIST)
        digest = env.push("app", "t", body, DOCKER_MANIFEST_LIST)
        got = env.get("app", digest, accept=None)
        assert got.status_code == 200 and got.get_data() == body

    def test_list_without_amd64_is_unknown_to_old_clients(self, env: Env) -> None:
        body, _ = child_index(env, "app", DOCKER_MANIFEST_LIST)
        doc = json.loads(body)
        doc["manifests"] = doc["manifests"][:1]
        env.push("app", "t", dumps(doc), DOCKER_MANIFEST_LIST)
        response = env.get("app", "t", accept=DOCKER_MANIFEST)
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"


class TestPutErrors:
    @pytest.mark.parametrize("tag", ["-bad", ".bad", "a" * 129, "bad+tag", "bäd"])
    def test_tag_invalid(self, env: Env, tag: str) -> None:
        response = env.put("app", tag, env.image("app"))
        assert response.status_code == 400
        assert error_code(response) == "TAG_INVALID"

    def test_longest_tag(self, env: Env) -> None:
        assert env.put("app", "a" * 128, env.image("app")).status_code == 201

    @pytest.mark.parametrize("name", ["UPPER", "a..b", "-a", "a/", "a//b"])
    def test_name_invalid(self, env: Env, name: str) -> None:
        response = env.client.put(
            f"/v2/{name}/manifests/t", data=b"{}", headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status_code in (400, 404)
        if response.status_code == 400:
            assert error_code(response) == "NAME_INVALID"

    def test_digest_mismatch(self, env: Env) -> None:
        body = env.image("app")
        response = env.put("app", UNKNOWN_DIGEST, body)
        assert response.status_code == 400
        assert error_code(response) == "DIGEST_INVALID"
        assert env.get("app", digest_of(body)).status_code == 404

    @pytest.mark.parametrize("ref", ["sha256:abc", "md5:" + "0" * 32, "sha256:" + "Z" * 64])
    def test_malformed_digest_reference(self, env: Env, ref: str) -> None:
        response = env.put("app", ref, env.image("app"))
        assert response.status_code == 400
        assert error_code(response) == "DIGEST_INVALID"

    def test_sha512_reference_does_not_match_canonical_digest(self, env: Env) -> None:
        body = env.image("app")
        response = env.put("app", str(Digest.of(body, "sha512")), body)
        assert error_code(response) == "DIGEST_INVALID"

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"{",
            b"[]",
            b'"manifest"',
            b'{"schemaVersion": 2, "mediaType": "' + OCI_MANIFEST.encode() + b'", "layers": 5}',
            b'{"schemaVersion": "2", "config": {}}',
            b'{"schemaVersion": 1}',
            b'{"mediaType": "' + OCI_MANIFEST.encode() + b'"}',
        ],
    )
    def test_malformed_manifest(self, env: Env, body: bytes) -> None:
        response = env.put("app", "t", body)
        assert response.status_code == 400
        assert error_code(response) in ("MANIFEST_INVALID", "DIGEST_INVALID")
        assert env.client.get("/v2/app/tags/list").status_code == 404

    @pytest.mark.parametrize("content_type", [None, "application/json", "text/plain"])
    def test_unsupported_content_type(self, env: Env, content_type: str | None) -> None:
        body = env.image("app")
        headers = {"Content-Type": content_type} if content_type else {}
        response = env.client.put("/v2/app/manifests/t", data=body, headers=headers)
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_INVALID"

    def test_media_type_field_mismatch(self, env: Env) -> None:
        response = env.put("app", "t", env.image("app", DOCKER_MANIFEST), OCI_MANIFEST)
        assert error_code(response) == "MANIFEST_INVALID"
        response = env.put("app", "t", env.image("app", OCI_MANIFEST), DOCKER_MANIFEST)
        assert error_code(response) == "MANIFEST_INVALID"

    def test_missing_config_is_digest_invalid(self, env: Env) -> None:
        doc = json.loads(env.image("app"))
        del doc["config"]
        assert error_code(env.put("app", "t", dumps(doc))) == "DIGEST_INVALID"

    def test_huge_manifest_with_content_length(self, env: Env) -> None:
        body = b"{" + b" " * manifest.MAX_SIZE + b"}"
        response = env.put("app", "t", body)
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_INVALID"
        assert response.get_json()["errors"][0]["detail"] == "http: request body too large"

    def test_huge_manifest_streamed_without_length(self, env: Env) -> None:
        response = env.client.put(
            "/v2/app/manifests/t",
            input_stream=io.BytesIO(b" " * (manifest.MAX_SIZE + 1)),
            headers={"Content-Type": OCI_MANIFEST, "Transfer-Encoding": "chunked"},
        )
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_INVALID"

    def test_missing_layer_is_manifest_blob_unknown(self, env: Env) -> None:
        doc = json.loads(env.image("app", layers=2))
        doc["layers"][1]["digest"] = UNKNOWN_DIGEST
        response = env.put("app", "t", dumps(doc))
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == UNKNOWN_DIGEST
        assert env.get("app", digest_of(dumps(doc))).status_code == 404

    def test_missing_config_blob(self, env: Env) -> None:
        doc = json.loads(env.image("app"))
        doc["config"]["digest"] = UNKNOWN_DIGEST
        response = env.put("app", "t", dumps(doc))
        assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == UNKNOWN_DIGEST

    def test_blob_of_another_repository_is_unknown_here(self, env: Env) -> None:
        body = env.image("other")
        response = env.put("app", "t", body)
        assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"

    def test_index_with_missing_child(self, env: Env) -> None:
        body, (arm, _) = child_index(env, "app")
        response = env.put("other", "t", body, OCI_INDEX)
        assert response.status_code == 400
        assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == arm

    @pytest.mark.parametrize(("where", "size"), [("layers", -1), ("config", -5), ("layers", 3)])
    def test_a_size_that_is_negative_or_not_the_blobs_is_invalid(
        self, env: Env, where: str, size: int
    ) -> None:
        doc = json.loads(env.image("app"))
        descriptor = doc["layers"][0] if where == "layers" else doc["config"]
        descriptor["size"] = size
        response = env.put("app", "t", dumps(doc))
        assert (response.status_code, error_code(response)) == (400, "MANIFEST_INVALID")
        assert env.get("app", "t").status_code == 404

    def test_an_index_child_of_another_size_is_invalid(self, env: Env) -> None:
        body, _ = child_index(env, "app")
        doc = json.loads(body)
        doc["manifests"][0]["size"] += 1
        response = env.put("app", "t", dumps(doc), OCI_INDEX)
        assert (response.status_code, error_code(response)) == (400, "MANIFEST_INVALID")

    def test_index_child_that_is_only_a_layer_blob_is_unknown(self, env: Env) -> None:
        blob = env.seed_blob("app", b"not a manifest")
        doc = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, **blob}]}
        assert error_code(env.put("app", "t", dumps(doc), OCI_INDEX)) == "MANIFEST_BLOB_UNKNOWN"

    def test_index_validation_none_and_list(self, make_env: MakeEnv) -> None:
        none = make_env("validation:\n  manifests:\n    indexes:\n      platforms: none\n")
        body, _ = child_index(none, "app")
        assert none.put("other", "t", body, OCI_INDEX).status_code == 201

        listed = make_env(
            "validation:\n  manifests:\n    indexes:\n      platforms: list\n"
            "      platformlist:\n        - {architecture: amd64, os: linux}\n"
        )
        body, _ = child_index(listed, "app")
        doc = json.loads(body)
        # Only the amd64 child must exist: the arm64 one may be missing.
        doc["manifests"][0]["digest"] = UNKNOWN_DIGEST
        listed.push("app", "t", dumps(doc), OCI_INDEX)
        doc["manifests"][1]["digest"] = UNKNOWN_DIGEST
        response = listed.put("app", "t2", dumps(doc), OCI_INDEX)
        assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"

    def test_validation_disabled_skips_index_checks(self, make_env: MakeEnv) -> None:
        env = make_env("validation:\n  disabled: true\n")
        body, _ = child_index(env, "app")
        assert env.put("other", "t", body, OCI_INDEX).status_code == 201


class TestForeignLayers:
    URLS_CONFIG = (
        "validation:\n  manifests:\n    urls:\n"
        "      allow: ['^https?://foo/']\n      deny: ['^https?://foo/nope']\n"
    )

    def manifest_with(
        self, env: Env, media_type: str, urls: list[str] | None, pushed: bool
    ) -> bytes:
        doc = json.loads(
            env.image("app", DOCKER_MANIFEST if "docker" in media_type else OCI_MANIFEST)
        )
        layer = (
            env.seed_blob("app", b"foreign") if pushed else {"digest": UNKNOWN_DIGEST, "size": 7}
        )
        layer["mediaType"] = media_type
        if urls is not None:
            layer["urls"] = urls
        doc["layers"].append(layer)
        return dumps(doc)

    @pytest.mark.parametrize(
        "media_type", [manifest.DOCKER_FOREIGN_LAYER, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP]
    )
    @pytest.mark.parametrize(
        ("urls", "pushed", "outcome"),
        [
            (["https://foo/layer"], False, 201),
            (["https://foo/layer"], True, 201),
            (["https://foo/nope/layer"], False, "invalid"),
            (["https://bar/layer"], False, "invalid"),
            (["https://foo/layer#frag"], False, "invalid"),
            (["ftp://foo/layer"], False, "invalid"),
            # A refused URL is refused even when the blob happens to be there, as in Go.
            (["https://foo/nope/layer"], True, "invalid"),
            (["https://foo/layer", "https://bar/layer"], True, "invalid"),
        ],
    )
    def test_policy(
        self,
        make_env: MakeEnv,
        media_type: str,
        urls: list[str],
        pushed: bool,
        outcome: int | str,
    ) -> None:
        env = make_env(self.URLS_CONFIG)
        content_type = DOCKER_MANIFEST if "docker" in media_type else OCI_MANIFEST
        response = env.put(
            "app", "t", self.manifest_with(env, media_type, urls, pushed), content_type
        )
        if outcome == 201:
            assert response.status_code == 201
        else:
            assert response.status_code == 400
            assert error_code(response) == "MANIFEST_INVALID"
            assert response.get_json()["errors"][0]["detail"].startswith(f"{outcome} URL on layer")

    @pytest.mark.parametrize("urls", [None, []])
    def test_docker_foreign_layer_needs_urls(self, env: Env, urls: list[str] | None) -> None:
        body = self.manifest_with(env, manifest.DOCKER_FOREIGN_LAYER, urls, True)
        response = env.put("app", "t", body, DOCKER_MANIFEST)
        assert error_code(response) == "MANIFEST_INVALID"
        assert response.get_json()["errors"][0]["detail"].startswith("missing URL on layer")

    @pytest.mark.parametrize(
        ("urls", "pushed", "accepted"), [(None, False, False), (None, True, True)]
    )
    def test_oci_non_distributable_layer_without_urls_needs_its_blob(
        self, env: Env, urls: list[str] | None, pushed: bool, accepted: bool
    ) -> None:
        body = self.manifest_with(env, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP, urls, pushed)
        response = env.put("app", "t", body, OCI_MANIFEST)
        assert (response.status_code == 201) is accepted
        if not accepted:
            assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"

    @pytest.mark.parametrize(
        "media_type", [manifest.DOCKER_FOREIGN_LAYER, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP]
    )
    def test_default_config_refuses_every_url(self, env: Env, media_type: str) -> None:
        """No ``validation`` section: Go allows no URL at all (distribution#2795)."""
        content_type = DOCKER_MANIFEST if "docker" in media_type else OCI_MANIFEST
        body = self.manifest_with(env, media_type, ["https://example.com/layer"], True)
        response = env.put("app", "t", body, content_type)
        assert error_code(response) == "MANIFEST_INVALID"
        assert response.get_json()["errors"][0]["detail"].startswith("invalid URL on layer")

    def test_deny_alone_allows_the_rest(self, make_env: MakeEnv) -> None:
        env = make_env("validation:\n  manifests:\n    urls:\n      deny: ['^https?://foo/nope']\n")
        body = self.manifest_with(env, manifest.DOCKER_FOREIGN_LAYER, ["https://bar/x"], False)
        assert env.put("app", "t", body, DOCKER_MANIFEST).status_code == 201
        body = self.manifest_with(env, manifest.DOCKER_FOREIGN_LAYER, ["https://foo/nope"], False)
        assert error_code(env.put("app", "t", body, DOCKER_MANIFEST)) == "MANIFEST_INVALID"

    def test_validation_disabled_ignores_allow_and_deny(self, make_env: MakeEnv) -> None:
        env = make_env(self.URLS_CONFIG + "  disabled: true\n")
        body = self.manifest_with(env, manifest.DOCKER_FOREIGN_LAYER, ["https://bar/x"], False)
        assert env.put("app", "t", body, DOCKER_MANIFEST).status_code == 201

    def test_regular_layer_with_urls_still_needs_its_blob(self, make_env: MakeEnv) -> None:
        env = make_env(self.URLS_CONFIG)
        body = self.manifest_with(env, manifest.OCI_LAYER_GZIP, ["https://foo/layer"], False)
        assert error_code(env.put("app", "t", body)) == "MANIFEST_BLOB_UNKNOWN"

    def test_oci_layer_with_denied_url_is_invalid(self, make_env: MakeEnv) -> None:
        env = make_env(self.URLS_CONFIG)
        body = self.manifest_with(env, manifest.OCI_LAYER_GZIP, ["https://foo/nope"], True)
        assert error_code(env.put("app", "t", body)) == "MANIFEST_INVALID"


class TestGetErrors:
    def test_unknown_tag(self, env: Env) -> None:
        env.push("app", "t", env.image("app"))
        response = env.get("app", "nope")
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == {"Tag": "nope"}

    def test_unknown_digest(self, env: Env) -> None:
        env.push("app", "t", env.image("app"))
        response = env.get("app", UNKNOWN_DIGEST)
        assert error_code(response) == "MANIFEST_UNKNOWN"
        assert response.get_json()["errors"][0]["detail"] == {
            "Name": "app",
            "Revision": UNKNOWN_DIGEST,
        }

    def test_unknown_repository(self, env: Env) -> None:
        for ref in ("latest", UNKNOWN_DIGEST):
            response = env.get("nothing/here", ref)
            assert response.status_code == 404
            assert error_code(response) == "MANIFEST_UNKNOWN"

    def test_manifest_of_another_repository(self, env: Env) -> None:
        digest = env.push("app", "t", env.image("app"))
        assert error_code(env.get("other", digest)) == "MANIFEST_UNKNOWN"

    def test_malformed_references(self, env: Env) -> None:
        assert error_code(env.get("app", "-bad")) == "MANIFEST_UNKNOWN"
        assert error_code(env.get("app", "sha256:abc")) == "DIGEST_INVALID"

    def test_head_error_has_no_body(self, env: Env) -> None:
        response = env.get("app", "nope", method="HEAD")
        assert response.status_code == 404 and response.get_data() == b""

    def test_name_invalid(self, env: Env) -> None:
        response = env.get("Bad", "t")
        assert response.status_code == 400 and error_code(response) == "NAME_INVALID"


class TestDelete:
    def test_delete_by_digest_drops_its_tags(self, env: Env) -> None:
        body = env.image("app")
        digest = env.push("app", "a", body)
        env.push("app", "b", body)
        other = env.push("app", "c", env.image("app", seed="other"))

        response = env.client.delete(f"/v2/app/manifests/{digest}")
        assert response.status_code == 202
        assert response.get_data() == b"" and "Content-Type" not in response.headers
        assert error_code(env.get("app", digest)) == "MANIFEST_UNKNOWN"
        assert error_code(env.get("app", "a")) == "MANIFEST_UNKNOWN"
        assert env.client.get("/v2/app/tags/list").get_json()["tags"] == ["c"]
        assert env.get("app", "c").headers["Docker-Content-Digest"] == other

    def test_delete_by_tag_untags_only(self, env: Env) -> None:
        digest = env.push("app", "a", env.image("app"))
        env.push("app", "b", env.image("app"))
        response = env.client.delete("/v2/app/manifests/a")
        assert response.status_code == 202 and "Content-Type" not in response.headers
        assert error_code(env.get("app", "a")) == "MANIFEST_UNKNOWN"
        assert env.get("app", "b").status_code == 200
        assert env.get("app", digest).status_code == 200

    def test_push_again_after_delete(self, env: Env) -> None:
        body = env.image("app")
        digest = env.push("app", "a", body)
        env.client.delete(f"/v2/app/manifests/{digest}")
        env.push("app", "a", body)
        assert env.get("app", "a").get_data() == body

    @pytest.mark.parametrize("ref", ["nope", UNKNOWN_DIGEST, "-bad"])
    def test_delete_unknown(self, env: Env, ref: str) -> None:
        env.push("app", "a", env.image("app"))
        response = env.client.delete(f"/v2/app/manifests/{ref}")
        assert response.status_code == 404
        assert error_code(response) == "MANIFEST_UNKNOWN"

    def test_delete_twice(self, env: Env) -> None:
        digest = env.push("app", "a", env.image("app"))
        assert env.client.delete(f"/v2/app/manifests/{digest}").status_code == 202
        assert error_code(env.client.delete(f"/v2/app/manifests/{digest}")) == "MANIFEST_UNKNOWN"

    def test_delete_malformed_digest(self, env: Env) -> None:
        assert error_code(env.client.delete("/v2/app/manifests/sha256:zz")) == "DIGEST_INVALID"

    def test_delete_disabled(self, make_env: MakeEnv) -> None:
        env = make_env(delete=False)
        digest = env.push("app", "a", env.image("app"))
        for ref in ("a", digest, "nope"):
            response = env.client.delete(f"/v2/app/manifests/{ref}")
            assert response.status_code == 405
            assert error_code(response) == "UNSUPPORTED"
        assert env.get("app", "a").status_code == 200


def test_read_only_mode(make_env: MakeEnv) -> None:
    env = make_env()
    body = env.image("app")
    digest = env.push("app", "a", body)
    readonly = make_env(readonly=True, share=env)
    for response in (
        readonly.put("app", "b", body),
        readonly.client.delete(f"/v2/app/manifests/{digest}"),
        readonly.client.delete("/v2/app/manifests/a"),
    ):
        assert response.status_code == 405
        assert error_code(response) == "UNSUPPORTED"
    assert readonly.get("app", "a").get_data() == body
    assert readonly.client.get("/v2/app/tags/list").get_json()["tags"] == ["a"]


def test_layout_matches_go(tmp_path: Path) -> None:
    """What a push writes, path by path and byte by byte, is what the Go registry writes."""
    env = build_env("filesystem", tmp_path)
    assert env.root is not None
    body = env.image("lib/app", DOCKER_MANIFEST)
    digest = env.push("lib/app", "v1", body, DOCKER_MANIFEST)
    hex_ = digest.split(":")[1]
    v2 = env.root / "docker/registry/v2"
    repo = v2 / "repositories/lib/app/_manifests"
    assert (v2 / f"blobs/sha256/{hex_[:2]}/{hex_}/data").read_bytes() == body
    expected = {
        f"revisions/sha256/{hex_}/link",
        "tags/v1/current/link",
        f"tags/v1/index/sha256/{hex_}/link",
    }
    written = {str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()}
    assert written == expected
    for link in expected:
        assert (repo / link).read_bytes() == digest.encode()


def test_reads_what_go_writes(tmp_path: Path) -> None:
    """A repository laid out by hand exactly as the Go registry lays it out is served."""
    env = build_env("filesystem", tmp_path)
    assert env.root is not None
    body = env.image("app", DOCKER_MANIFEST)
    digest = digest_of(body)
    hex_ = digest.split(":")[1]
    v2 = env.root / "docker/registry/v2"
    files = {
        f"blobs/sha256/{hex_[:2]}/{hex_}/data": body,
        f"repositories/app/_manifests/revisions/sha256/{hex_}/link": digest.encode(),
        "repositories/app/_manifests/tags/go/current/link": digest.encode(),
        f"repositories/app/_manifests/tags/go/index/sha256/{hex_}/link": digest.encode(),
    }
    for path, content in files.items():
        (v2 / path).parent.mkdir(parents=True, exist_ok=True)
        (v2 / path).write_bytes(content)
    assert env.get("app", "go").get_data() == body
    assert env.client.get("/v2/app/tags/list").get_json() == {"name": "app", "tags": ["go"]}
    assert env.client.get("/v2/_catalog").get_json() == {"repositories": ["app"]}


def test_real_process_round_trip(start_registry: Callable, tmp_path: Path) -> None:
    """PUT, GET, tags and catalog through gunicorn, on the filesystem driver."""
    config = f"version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {tmp_path / 'data'}}}\n"
    server = start_registry(config)
    blobs = Registry.from_config(parse(config, {})).blobs
    config_blob = blobs.put(b'{"os": "linux"}')
    RepositoryBlobs(blobs, "e2e/app").link(config_blob.digest)
    body = dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config_blob.digest),
                "size": config_blob.size,
            },
            "layers": [],
        }
    )
    url = f"{server.url}/v2/e2e/app"
    put = requests.put(
        f"{url}/manifests/v1", data=body, headers={"Content-Type": OCI_MANIFEST}, timeout=10
    )
    assert put.status_code == 201, put.text
    assert put.headers["Location"] == f"{url}/manifests/{digest_of(body)}"
    got = requests.get(f"{url}/manifests/v1", headers={"Accept": OCI_MANIFEST}, timeout=10)
    assert got.status_code == 200 and got.content == body
    assert got.headers["Docker-Content-Digest"] == digest_of(body)
    assert requests.get(f"{url}/tags/list", timeout=10).json() == {
        "name": "e2e/app",
        "tags": ["v1"],
    }
    catalog = requests.get(f"{server.url}/v2/_catalog", timeout=10)
    assert catalog.json() == {"repositories": ["e2e/app"]}


class TestRepositoryClasses:
    """``policy.repository.classes``: Go's ``applyResourcePolicy``."""

    POLICY = "policy:\n  repository:\n    classes: [image]\n"

    def with_config_type(self, env: Env, media_type: str, config_type: str) -> bytes:
        doc = json.loads(env.image("app", media_type))
        doc["config"]["mediaType"] = config_type
        return dumps(doc)

    def test_images_and_indexes_pass(self, make_env: MakeEnv) -> None:
        env = make_env(self.POLICY)
        env.push("app", "oci", env.image("app"))
        env.push("app", "docker", env.image("app", DOCKER_MANIFEST), DOCKER_MANIFEST)
        body, _ = child_index(env, "app")
        env.push("app", "index", body, OCI_INDEX)

    @pytest.mark.parametrize(
        ("media_type", "config_type", "message"),
        [
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.plugin.v1+json",
                "registry does not allow plugin manifest",
            ),
            (
                OCI_MANIFEST,
                "application/vnd.example.sbom+json",
                "unknown manifest class for application/vnd.example.sbom+json",
            ),
        ],
    )
    def test_other_classes_are_denied(
        self, make_env: MakeEnv, media_type: str, config_type: str, message: str
    ) -> None:
        env = make_env(self.POLICY)
        response = env.put(
            "app", "t", self.with_config_type(env, media_type, config_type), media_type
        )
        assert response.status_code == 403
        assert error_code(response) == "DENIED"
        assert response.get_json()["errors"][0]["message"] == message

    def test_without_the_policy_any_class_goes(self, env: Env) -> None:
        body = self.with_config_type(env, OCI_MANIFEST, "application/vnd.example.sbom+json")
        env.push("app", "t", body)
