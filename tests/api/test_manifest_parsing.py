"""distribution.manifest: parsing, validation and negotiation rules, without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from distribution import errors, manifest
from distribution.digest import Digest
from distribution.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    SCHEMA1,
    SCHEMA1_SIGNED,
    Descriptor,
    URLPolicy,
)

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def desc(digest: str = D1, media_type: str = "application/octet-stream", **more: Any) -> dict:
    return {"mediaType": media_type, "digest": digest, "size": 10, **more}


def image(media_type: str | None = OCI_MANIFEST, **more: Any) -> dict:
    doc: dict[str, Any] = {"schemaVersion": 2, "config": desc(D1), "layers": [desc(D2)]}
    if media_type is not None:
        doc["mediaType"] = media_type
    doc.update(more)
    return doc


def index(media_type: str | None = OCI_INDEX, **more: Any) -> dict:
    child = desc(D3, OCI_MANIFEST, platform={"architecture": "amd64", "os": "linux"})
    doc: dict[str, Any] = {"schemaVersion": 2, "manifests": [child]}
    if media_type is not None:
        doc["mediaType"] = media_type
    doc.update(more)
    return doc


def parse(content_type: str | None, doc: Any) -> manifest.Manifest:
    return manifest.parse(content_type, json.dumps(doc).encode())


def invalid(content_type: str | None, doc: Any) -> str:
    with pytest.raises(errors.ManifestInvalid) as caught:
        parse(content_type, doc)
    return str(caught.value.detail)


class TestParse:
    def test_oci_image_manifest(self) -> None:
        parsed = parse(OCI_MANIFEST, image(annotations={"a": "b"}))
        assert parsed.media_type == OCI_MANIFEST
        assert str(parsed.config.digest) == D1
        assert [str(layer.digest) for layer in parsed.layers] == [D2]
        assert parsed.annotations == {"a": "b"}
        assert not parsed.is_index

    def test_oci_manifest_without_media_type_field(self) -> None:
        assert parse(OCI_MANIFEST, image(None)).media_type == OCI_MANIFEST

    def test_content_type_parameters_are_ignored(self) -> None:
        assert parse(f"{OCI_MANIFEST}; charset=utf-8", image()).media_type == OCI_MANIFEST

    def test_docker_manifest(self) -> None:
        assert parse(DOCKER_MANIFEST, image(DOCKER_MANIFEST)).media_type == DOCKER_MANIFEST

    def test_oci_index_with_and_without_media_type(self) -> None:
        for doc in (index(), index(None)):
            parsed = parse(OCI_INDEX, doc)
            assert parsed.is_index
            assert parsed.manifests[0].platform == ("amd64", "linux")

    def test_docker_manifest_list(self) -> None:
        parsed = parse(DOCKER_MANIFEST_LIST, index(DOCKER_MANIFEST_LIST))
        assert parsed.media_type == DOCKER_MANIFEST_LIST and parsed.is_index

    def test_subject_and_artifact_type(self) -> None:
        parsed = parse(OCI_MANIFEST, image(subject=desc(D3, OCI_MANIFEST), artifactType="x/y"))
        assert str(parsed.subject.digest) == D3
        assert parsed.referrer_artifact_type == "x/y"

    def test_referrer_artifact_type_falls_back_to_config_media_type(self) -> None:
        doc = image(config=desc(D1, "application/vnd.example.sig"))
        assert parse(OCI_MANIFEST, doc).referrer_artifact_type == "application/vnd.example.sig"
        assert parse(OCI_INDEX, index()).referrer_artifact_type is None

    def test_missing_layers_is_an_empty_list(self) -> None:
        doc = image()
        del doc["layers"]
        assert parse(OCI_MANIFEST, doc).layers == ()


class TestMediaTypeRules:
    """Content-Type against the ``mediaType`` field, as v3's manifest packages check them."""

    @pytest.mark.parametrize(
        "content_type", [None, "", "application/json", SCHEMA1, SCHEMA1_SIGNED]
    )
    def test_unsupported_content_types(self, content_type: str | None) -> None:
        detail = invalid(content_type, image())
        assert detail.startswith("unsupported manifest media type and no default available")

    def test_docker_manifest_requires_its_media_type_field(self) -> None:
        assert "should be" in invalid(DOCKER_MANIFEST, image(None))
        assert "should be" in invalid(DOCKER_MANIFEST, image(OCI_MANIFEST))

    def test_docker_list_requires_its_media_type_field(self) -> None:
        assert "manifest list should be" in invalid(DOCKER_MANIFEST_LIST, index(None))
        assert "should be" in invalid(DOCKER_MANIFEST_LIST, index(OCI_INDEX))

    def test_oci_manifest_media_type_field_if_present_must_match(self) -> None:
        assert "if present" in invalid(OCI_MANIFEST, image(DOCKER_MANIFEST))

    def test_oci_index_media_type_field_if_present_must_match(self) -> None:
        assert "if present" in invalid(OCI_INDEX, index(DOCKER_MANIFEST_LIST))

    def test_oci_manifest_that_is_an_index(self) -> None:
        assert invalid(OCI_MANIFEST, index(None)) == (
            "oci manifest: expected manifest but found index"
        )

    def test_oci_index_that_is_a_manifest(self) -> None:
        assert invalid(OCI_INDEX, image(None)) == "index: expected index but found manifest"


class TestMalformed:
    @pytest.mark.parametrize("body", [b"", b"{", b"not json", b"\xff\xfe", b"[" * 100000])
    def test_not_json(self, body: bytes) -> None:
        with pytest.raises(errors.ManifestInvalid):
            manifest.parse(OCI_MANIFEST, body)

    @pytest.mark.parametrize(
        "body",
        [
            json.dumps(image()).encode("utf-16"),
            json.dumps(image()).encode("utf-16-le"),
            json.dumps(image()).encode("utf-32"),
            b"\xef\xbb\xbf" + json.dumps(image()).encode(),
            json.dumps(image(x=float("nan"))).encode(),
            json.dumps(image(x=[float("inf"), float("-inf")])).encode(),
        ],
    )
    def test_json_go_refuses(self, body: bytes) -> None:
        """Go's decoder takes UTF-8 without a BOM and no NaN/Infinity: a push it would refuse
        is refused, not stored for clients to choke on."""
        with pytest.raises(errors.ManifestInvalid):
            manifest.parse(OCI_MANIFEST, body)

    def test_bytes_that_are_not_utf8_in_a_string_are_taken_as_go_takes_them(self) -> None:
        body = json.dumps(image(annotations={"a": "@"})).encode().replace(b"@", b"\xff")
        assert manifest.parse(OCI_MANIFEST, body).annotations == {"a": "\ufffd"}

    def test_stored_with_bom_still_served(self) -> None:
        body = b"\xef\xbb\xbf" + json.dumps(image()).encode()
        assert manifest.classify(body) == OCI_MANIFEST

    def test_stored_in_utf16_or_with_bytes_that_are_not_utf8_still_read(self) -> None:
        assert manifest.classify(json.dumps(image()).encode("utf-16")) == OCI_MANIFEST
        body = json.dumps(image(annotations={"a": "@"})).encode().replace(b"@", b"\xff")
        assert manifest.parse_stored(body).annotations == {"a": "\ufffd"}

    @pytest.mark.parametrize("doc", [[], "x", 2, None])
    def test_not_an_object(self, doc: Any) -> None:
        invalid(OCI_MANIFEST, doc)

    @pytest.mark.parametrize("version", [None, 1, 3, "2", 2.5, True])
    def test_schema_version(self, version: Any) -> None:
        doc = image()
        if version is None:
            del doc["schemaVersion"]
        else:
            doc["schemaVersion"] = version
        invalid(OCI_MANIFEST, doc)

    @pytest.mark.parametrize(
        "change",
        [
            {"layers": "x"},
            {"layers": ["x"]},
            {"config": "x"},
            {"config": desc(size="10")},
            {"config": desc(mediaType=5)},
            {"layers": [desc(urls="http://a")]},
            {"layers": [desc(urls=[1])]},
            {"annotations": {"a": 1}},
            {"annotations": []},
            {"artifactType": 3},
            {"subject": "x"},
            {"mediaType": 7},
        ],
    )
    def test_wrong_types(self, change: dict) -> None:
        invalid(OCI_MANIFEST, image(**change))

    @pytest.mark.parametrize("change", [{"manifests": {}}, {"manifests": [desc(platform="linux")]}])
    def test_wrong_index_types(self, change: dict) -> None:
        invalid(OCI_INDEX, index(**change))

    @pytest.mark.parametrize("digest", ["", "sha256:abc", "md5:" + "0" * 32, "nope"])
    def test_malformed_descriptor_digest_is_digest_invalid(self, digest: str) -> None:
        with pytest.raises(errors.DigestInvalid):
            parse(OCI_MANIFEST, image(layers=[desc(digest)]))

    def test_missing_config_is_digest_invalid_as_in_go(self) -> None:
        doc = image()
        del doc["config"]
        with pytest.raises(errors.DigestInvalid):
            parse(OCI_MANIFEST, doc)


class TestClassify:
    """How stored manifests are typed: v3's manifest store, plus schema 1 for old data."""

    @pytest.mark.parametrize(
        ("doc", "media_type"),
        [
            (image(), OCI_MANIFEST),
            (image(None), OCI_MANIFEST),
            (image(DOCKER_MANIFEST), DOCKER_MANIFEST),
            (index(), OCI_INDEX),
            (index(None), OCI_INDEX),
            (index(DOCKER_MANIFEST_LIST), DOCKER_MANIFEST_LIST),
            ({"schemaVersion": 1, "name": "x", "fsLayers": []}, SCHEMA1),
            ({"schemaVersion": 1, "signatures": []}, SCHEMA1_SIGNED),
        ],
    )
    def test_types(self, doc: dict, media_type: str) -> None:
        assert manifest.classify(json.dumps(doc).encode()) == media_type

    @pytest.mark.parametrize(
        "body", [b"nope", b"[]", b'{"schemaVersion": 3}', b'{"schemaVersion": 2, "mediaType": "x"}']
    )
    def test_unrecognised_storage_is_unknown(self, body: bytes) -> None:
        with pytest.raises(errors.Unknown):
            manifest.classify(body)


class TestNegotiation:
    def test_accepted_types_ignore_parameters_and_case(self) -> None:
        assert manifest.accepted_types(" Application/VND.OCI.image.index.v1+json") == {OCI_INDEX}
        header = f"{OCI_INDEX};q=0.5, , {OCI_MANIFEST} ;charset=x,*/*"
        assert manifest.accepted_types(header) == {OCI_INDEX, OCI_MANIFEST, "*/*"}
        assert manifest.accepted_types("") == frozenset()

    @pytest.mark.parametrize("accepted", [set(), {"*/*"}, {DOCKER_MANIFEST}])
    def test_oci_refused_to_clients_that_do_not_ask_for_it(self, accepted: set) -> None:
        with pytest.raises(errors.ManifestUnknown):
            manifest.check_acceptable(OCI_MANIFEST, frozenset(accepted))
        with pytest.raises(errors.ManifestUnknown):
            manifest.check_acceptable(OCI_INDEX, frozenset(accepted))

    @pytest.mark.parametrize("media_type", [DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, SCHEMA1_SIGNED])
    def test_docker_types_always_served(self, media_type: str) -> None:
        manifest.check_acceptable(media_type, frozenset())

    def test_list_fallback_only_by_tag_and_only_when_lists_not_accepted(self) -> None:
        assert manifest.needs_list_fallback(DOCKER_MANIFEST_LIST, frozenset(), by_tag=True)
        assert not manifest.needs_list_fallback(DOCKER_MANIFEST_LIST, frozenset(), by_tag=False)
        accepted = frozenset({DOCKER_MANIFEST_LIST})
        assert not manifest.needs_list_fallback(DOCKER_MANIFEST_LIST, accepted, by_tag=True)
        assert not manifest.needs_list_fallback(OCI_INDEX, frozenset(), by_tag=True)

    def test_default_platform_child(self) -> None:
        doc = index(DOCKER_MANIFEST_LIST)
        doc["manifests"].insert(
            0, desc(D1, DOCKER_MANIFEST, platform={"architecture": "arm64", "os": "linux"})
        )
        parsed = parse(DOCKER_MANIFEST_LIST, doc)
        assert str(manifest.default_platform_child(parsed)) == D3
        doc["manifests"].pop()
        with pytest.raises(errors.ManifestUnknown):
            manifest.default_platform_child(parse(DOCKER_MANIFEST_LIST, doc))

    def test_fallback_child_must_be_accepted_if_schema2(self) -> None:
        with pytest.raises(errors.ManifestInvalid):
            manifest.check_fallback_child(DOCKER_MANIFEST, frozenset())
        manifest.check_fallback_child(DOCKER_MANIFEST, frozenset({DOCKER_MANIFEST}))
        manifest.check_fallback_child(OCI_MANIFEST, frozenset())


class TestURLPolicy:
    @pytest.mark.parametrize(
        ("url", "ok"),
        [
            ("http://foo/bar", True),
            ("https://foo/bar", True),
            ("file:///local/file", False),
            ("http://foo/bar#baz", False),
            ("", False),
            ("http://nope/bar", False),
            ("http://foo/nope", False),
            ("http://[::1", False),
        ],
    )
    def test_go_cases(self, url: str, ok: bool) -> None:
        policy = URLPolicy(allow=(r"^https?://foo",), deny=(r"^https?://foo/nope",))
        assert policy.permits(url) is ok

    def test_no_patterns_allow_any_http_url(self) -> None:
        assert URLPolicy().permits("https://example.com/layer")

    def test_any_allow_pattern_suffices(self) -> None:
        policy = URLPolicy(allow=("^http://a/", "^http://b/"))
        assert policy.permits("http://b/x") and not policy.permits("http://c/x")

    def test_gos_default_permits_no_url(self) -> None:
        policy = URLPolicy.from_config((), (), active=True)
        assert policy == URLPolicy(allow=("^$",))
        assert not policy.permits("https://example.com/layer")

    def test_a_deny_list_alone_permits_the_rest(self) -> None:
        policy = URLPolicy.from_config((), ("nope",), active=True)
        assert policy.permits("https://foo/x") and not policy.permits("https://foo/nope")

    def test_validation_off_permits_any_http_url(self) -> None:
        policy = URLPolicy.from_config(("^https://a/",), ("x",), active=False)
        assert policy.permits("https://b/x") and not policy.permits("ftp://b/x")

    def layer(self, urls: tuple[str, ...], media_type: str) -> Descriptor:
        return Descriptor(media_type, Digest.parse(D1), 1, urls=urls)

    # (manifest type, layer type, urls, permitted by the policy) -> needs the blob, or the error
    @pytest.mark.parametrize(
        ("manifest_type", "layer_type", "urls", "outcome"),
        [
            (DOCKER_MANIFEST, manifest.DOCKER_FOREIGN_LAYER, ("https://ok/x",), False),
            (DOCKER_MANIFEST, manifest.DOCKER_FOREIGN_LAYER, ("https://no/x",), "invalid"),
            (DOCKER_MANIFEST, manifest.DOCKER_FOREIGN_LAYER, (), "missing"),
            (DOCKER_MANIFEST, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP, ("https://no/x",), True),
            (
                DOCKER_MANIFEST,
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
                ("https://no/x",),
                True,
            ),
            (OCI_MANIFEST, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP, ("https://ok/x",), False),
            (OCI_MANIFEST, manifest.OCI_LAYER_NONDISTRIBUTABLE, ("https://no/x",), "invalid"),
            (OCI_MANIFEST, manifest.OCI_LAYER_NONDISTRIBUTABLE_GZIP, (), True),
            (OCI_MANIFEST, manifest.OCI_LAYER_GZIP, ("https://ok/x",), True),
            (OCI_MANIFEST, manifest.OCI_LAYER, ("https://no/x",), "invalid"),
            (OCI_MANIFEST, manifest.OCI_LAYER_GZIP, (), True),
            (OCI_MANIFEST, manifest.DOCKER_FOREIGN_LAYER, ("https://no/x",), True),
            (OCI_MANIFEST, "application/vnd.oci.image.layer.v1.tar+zstd", ("https://no/x",), True),
        ],
    )
    def test_gos_handlers(
        self, manifest_type: str, layer_type: str, urls: tuple[str, ...], outcome: bool | str
    ) -> None:
        policy = URLPolicy(allow=("^https://ok/",))
        layer = self.layer(urls, layer_type)
        if isinstance(outcome, bool):
            assert manifest.layer_needs_blob(manifest_type, layer, policy) is outcome
        else:
            with pytest.raises(errors.ManifestInvalid) as info:
                manifest.layer_needs_blob(manifest_type, layer, policy)
            assert info.value.detail == f"{outcome} URL on layer {D1}"


def test_referrers_index_shape() -> None:
    parsed = parse(OCI_MANIFEST, image(artifactType="x/y", annotations={"k": "v"}))
    digest = Digest.parse(D3)
    assert manifest.image_index([manifest.referrer_descriptor(parsed, digest, 12)]) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": D3,
                "size": 12,
                "artifactType": "x/y",
                "annotations": {"k": "v"},
            }
        ],
    }
