"""The blob upload API on every built-in driver: each path, each error code, and storage after."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import PathNotFoundError, StorageDriver
from distribution.uploadstate import UploadState, pack, unpack
from tests.api import blob_fixtures
from tests.api.blob_fixtures import (
    SECRET,
    digest_of,
    error_code,
    path_of,
    push_blob,
    start_upload,
    state_of,
)

# Fixtures: each test runs once per built-in driver.
storage = blob_fixtures.storage
app = blob_fixtures.app
client = blob_fixtures.client
driver = blob_fixtures.driver
make_client = blob_fixtures.make_client

DATA = random.Random(5).randbytes(300_000)
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def upload_id(location: str) -> str:
    return location.split("?")[0].rsplit("/", 1)[1]


def uploads_left(driver: StorageDriver, name: str) -> list[str]:
    try:
        return driver.list(paths.uploads(name))
    except PathNotFoundError:
        return []


def blob_exists(driver: StorageDriver, digest: str) -> bool:
    try:
        driver.stat(paths.blob_data(Digest.parse(digest)))
    except PathNotFoundError:
        return False
    return True


def link_exists(driver: StorageDriver, name: str, digest: str) -> bool:
    try:
        driver.stat(paths.layer_link(name, Digest.parse(digest)))
    except PathNotFoundError:
        return False
    return True


def patch(client: FlaskClient, location: str, data: bytes, **headers: str):
    return client.patch(location, data=data, headers=headers)


def chunks(client: FlaskClient, location: str, *parts: bytes) -> str:
    """PATCH each part in turn; the final ``Location``."""
    for part in parts:
        response = patch(client, location, part)
        assert response.status_code == 202, response.data
        location = path_of(response.headers["Location"])
    return location


class TestStart:
    def test_post_is_202_with_an_upload_session(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        response = client.post("/v2/a/b/blobs/uploads/")
        assert response.status_code == 202
        uuid = response.headers["Docker-Upload-UUID"]
        assert UUID4.fullmatch(uuid)
        location = response.headers["Location"]
        assert location.startswith(f"http://localhost/v2/a/b/blobs/uploads/{uuid}?_state=")
        assert response.headers["Range"] == "0-0"
        assert response.headers["Content-Length"] == "0"
        assert "Content-Type" not in response.headers
        state = unpack(state_of(location), SECRET)
        assert (state.name, state.uuid, state.offset) == ("a/b", uuid, 0)
        stamp = driver.get_content(paths.upload_started_at("a/b", uuid)).decode()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
        assert abs(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z") - datetime.now(UTC)).seconds < 5
        assert driver.list(paths.upload("a/b", uuid)) == [
            paths.upload_data("a/b", uuid),
            paths.upload_started_at("a/b", uuid),
        ]
        assert driver.stat(paths.upload_data("a/b", uuid)).size == 0

    def test_without_trailing_slash(self, client: FlaskClient) -> None:
        assert client.post("/v2/a/blobs/uploads").status_code == 202

    def test_relative_and_forwarded_locations(self, make_client: Callable[..., FlaskClient]):
        relative = make_client(http="relativeurls: true").post("/v2/a/blobs/uploads/")
        assert relative.headers["Location"].startswith("/v2/a/blobs/uploads/")
        forwarded = make_client().post(
            "/v2/a/blobs/uploads/",
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "registry.example"},
        )
        assert forwarded.headers["Location"].startswith("https://registry.example/v2/a/blobs/")
        prefixed = make_client(http="prefix: /reg/")
        location = prefixed.post("/reg/v2/a/blobs/uploads/").headers["Location"]
        assert location.startswith("http://localhost/reg/v2/a/blobs/uploads/")
        assert prefixed.patch(path_of(location), data=b"abc").status_code == 202

    def test_bad_name(self, client: FlaskClient) -> None:
        response = client.post("/v2/A/blobs/uploads/")
        assert (response.status_code, error_code(response)) == (400, "NAME_INVALID")


class TestChunked:
    def test_patches_then_put(self, client: FlaskClient, driver: StorageDriver) -> None:
        location = start_upload(client, "a/b")
        uuid = upload_id(location)
        response = patch(client, location, DATA[:1000])
        assert response.status_code == 202
        assert response.headers["Range"] == "0-999"
        assert response.headers["Docker-Upload-UUID"] == uuid
        assert response.headers["Content-Length"] == "0"
        assert unpack(state_of(response.headers["Location"]), SECRET).offset == 1000
        location = chunks(client, path_of(response.headers["Location"]), DATA[1000:200_000])
        digest = digest_of(DATA)
        done = client.put(f"{location}&digest={digest}", data=DATA[200_000:])
        assert done.status_code == 201
        assert done.headers["Location"] == f"http://localhost/v2/a/b/blobs/{digest}"
        assert done.headers["Docker-Content-Digest"] == digest
        assert done.headers["Content-Length"] == "0"
        assert client.get(f"/v2/a/b/blobs/{digest}").data == DATA
        assert driver.get_content(paths.layer_link("a/b", Digest.parse(digest))) == digest.encode()
        assert uploads_left(driver, "a/b") == []

    def test_content_range_in_order(self, client: FlaskClient) -> None:
        location = start_upload(client, "a")
        for start, stop in ((0, 100), (100, 250), (250, len(DATA))):
            response = patch(
                client, location, DATA[start:stop], **{"Content-Range": f"{start}-{stop - 1}"}
            )
            assert response.status_code == 202, response.data
            assert response.headers["Range"] == f"0-{stop - 1}"
            location = path_of(response.headers["Location"])
        assert client.put(f"{location}&digest={digest_of(DATA)}").status_code == 201

    @pytest.mark.parametrize(
        "content_range",
        ["200-299", "50-149", "0-99", "100-99", "bytes=x", "100", "-5-10", "100-" + "9" * 5000],
    )
    def test_out_of_order_overlapping_or_malformed_chunk_is_416(
        self, client: FlaskClient, content_range: str
    ) -> None:
        location = chunks(client, start_upload(client, "a"), DATA[:100])
        response = patch(client, location, DATA[100:200], **{"Content-Range": content_range})
        assert response.status_code == 416
        assert error_code(response) == "RANGE_INVALID"
        assert response.headers["Range"] == "0-99"
        fresh = path_of(response.headers["Location"])
        assert upload_id(fresh) == upload_id(location)
        assert client.get(location.split("?")[0]).headers["Range"] == "0-99"
        location = chunks(client, fresh, DATA[100:])
        assert client.put(f"{location}&digest={digest_of(DATA)}").status_code == 201

    @pytest.mark.parametrize("content_range", ["200-299", "0-99", "bytes=x"])
    def test_closing_put_with_an_out_of_order_chunk_is_416_and_the_upload_stays(
        self, client: FlaskClient, driver: StorageDriver, content_range: str
    ) -> None:
        """The spec: a final chunk sent out of order with the closing PUT is 416, and the
        client recovers from the upload's status (the OCI conformance suite does this)."""
        location = chunks(client, start_upload(client, "a"), DATA[:100])
        digest = digest_of(DATA[:200])
        response = client.put(
            f"{location}&digest={digest}",
            data=DATA[100:200],
            headers={"Content-Range": content_range},
        )
        assert (response.status_code, error_code(response)) == (416, "RANGE_INVALID")
        assert response.headers["Range"] == "0-99"
        assert not blob_exists(driver, digest)
        status = client.get(location.split("?")[0])
        assert (status.status_code, status.headers["Range"]) == (204, "0-99")
        fresh = path_of(status.headers["Location"])
        response = client.put(
            f"{fresh}&digest={digest}", data=DATA[100:200], headers={"Content-Range": "100-199"}
        )
        assert response.status_code == 201, response.data
        assert client.get(f"/v2/a/blobs/{digest}").data == DATA[:200]

    def test_content_range_disagreeing_with_content_length_is_size_invalid(
        self, client: FlaskClient
    ) -> None:
        location = start_upload(client, "a")
        response = patch(client, location, DATA[:100], **{"Content-Range": "0-49"})
        assert (response.status_code, error_code(response)) == (400, "SIZE_INVALID")
        assert client.get(location.split("?")[0]).headers["Range"] == "0-0"

    @pytest.mark.parametrize("length", ["9" * 20, "9" * 5000, "1e3", "-1"])
    def test_a_content_length_beyond_64_bits_is_size_invalid(
        self, client: FlaskClient, length: str
    ) -> None:
        location = start_upload(client, "a")
        response = client.patch(
            location, input_stream=io.BytesIO(b"abc"), environ_overrides={"CONTENT_LENGTH": length}
        )
        assert (response.status_code, error_code(response)) == (400, "SIZE_INVALID")

    def test_stale_state_is_416_as_go_v3(self, client: FlaskClient) -> None:
        """A replayed PATCH carries the offset it was issued at, no longer the stored size."""
        first = start_upload(client, "a")
        second = chunks(client, first, DATA[:10])
        for method in ("PATCH", "PUT", "DELETE"):
            response = client.open(f"{first}&digest={digest_of(DATA)}", method=method, data=b"x")
            assert (response.status_code, error_code(response)) == (416, "RANGE_INVALID")
            assert response.headers["Range"] == "0-9"
        assert client.get(second.split("?")[0]).headers["Range"] == "0-9"

    def test_transfer_encoding_chunked(self, client: FlaskClient) -> None:
        """docker streams PATCH bodies without a Content-Length."""
        location = start_upload(client, "a")
        response = client.patch(
            location,
            input_stream=io.BytesIO(DATA),
            headers={"Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        )
        assert response.status_code == 202, response.data
        assert response.headers["Range"] == f"0-{len(DATA) - 1}"
        location = path_of(response.headers["Location"])
        misplaced = client.patch(
            location,
            input_stream=io.BytesIO(b"abc"),
            headers={"Transfer-Encoding": "chunked", "Content-Range": "0-2"},
            environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
        )
        assert (misplaced.status_code, error_code(misplaced)) == (416, "RANGE_INVALID")
        assert client.put(f"{location}&digest={digest_of(DATA)}").status_code == 201

    def test_truncated_body_keeps_what_arrived(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        location = start_upload(client, "a")
        response = client.patch(
            location,
            input_stream=io.BytesIO(DATA[:1000]),
            environ_overrides={"CONTENT_LENGTH": "5000"},
        )
        assert (response.status_code, error_code(response)) == (400, "SIZE_INVALID")
        status = client.get(location.split("?")[0])
        assert status.headers["Range"] == "0-999"
        rest = chunks(client, path_of(status.headers["Location"]), DATA[1000:])
        assert client.put(f"{rest}&digest={digest_of(DATA)}").status_code == 201

    def test_invalid_content_length(self, client: FlaskClient) -> None:
        location = start_upload(client, "a")
        response = client.patch(location, data=b"abc", environ_overrides={"CONTENT_LENGTH": "x"})
        assert (response.status_code, error_code(response)) == (400, "SIZE_INVALID")

    def test_any_content_type_is_accepted(self, client: FlaskClient) -> None:
        """Go answers a 500 to a PATCH that is not application/octet-stream; no 500s here."""
        location = start_upload(client, "a")
        response = patch(client, location, b"abc", **{"Content-Type": "text/plain"})
        assert response.status_code == 202

    def test_same_content_twice_stores_one_blob(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        digest = push_blob(client, "a", DATA)
        assert push_blob(client, "b", DATA) == digest
        assert client.get(f"/v2/b/blobs/{digest}").data == DATA
        assert uploads_left(driver, "b") == []

    def test_other_algorithm_is_stored_under_sha256_and_linked(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        """As distribution: content lives under its canonical digest, the alias links to it."""
        sha512 = "sha512:" + hashlib.sha512(DATA).hexdigest()
        location = chunks(client, start_upload(client, "a"), DATA[:7])
        response = client.put(f"{location}&digest={sha512}", data=DATA[7:])
        assert response.status_code == 201
        assert response.headers["Docker-Content-Digest"] == digest_of(DATA)
        alias = paths.layer_link("a", Digest.parse(sha512))
        assert driver.get_content(alias) == digest_of(DATA).encode()
        assert client.get(f"/v2/a/blobs/{sha512}").data == DATA
        wrong = "sha512:" + hashlib.sha512(b"other").hexdigest()
        location = chunks(client, start_upload(client, "a"), DATA)
        assert error_code(client.put(f"{location}&digest={wrong}")) == "DIGEST_INVALID"


class TestComplete:
    def test_empty_blob(self, client: FlaskClient, driver: StorageDriver) -> None:
        digest = digest_of(b"")
        response = client.put(f"{start_upload(client, 'a')}&digest={digest}")
        assert response.status_code == 201
        assert driver.stat(paths.blob_data(Digest.parse(digest))).size == 0

    @pytest.mark.parametrize("query", ["", "&digest=", "&digest=sha256:abc", "&digest=md5:aa"])
    def test_missing_or_malformed_digest_allows_a_retry(
        self, client: FlaskClient, query: str
    ) -> None:
        location = chunks(client, start_upload(client, "a"), DATA)
        response = client.put(f"{location}{query}")
        assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
        assert client.put(f"{location}&digest={digest_of(DATA)}").status_code == 201

    def test_wrong_digest_stores_nothing(self, client: FlaskClient, driver: StorageDriver) -> None:
        claimed = digest_of(b"something else")
        location = chunks(client, start_upload(client, "a"), DATA[:500])
        response = client.put(f"{location}&digest={claimed}", data=DATA[500:])
        assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
        for digest in (claimed, digest_of(DATA)):
            assert not blob_exists(driver, digest)
            assert not link_exists(driver, "a", digest)
        assert uploads_left(driver, "a") == []
        again = client.get(location.split("?")[0])
        assert (again.status_code, error_code(again)) == (404, "BLOB_UPLOAD_UNKNOWN")

    def test_commit_rehashes_when_this_process_lost_the_live_hash(
        self, app: Flask, client: FlaskClient
    ) -> None:
        """Another worker, replica or a restart: the stored data is hashed again."""
        hashes = app.extensions["distribution.live_hashes"]
        location = chunks(client, start_upload(client, "a"), DATA[:1000])
        hashes.clear()
        location = chunks(client, location, DATA[1000:2000])
        hashes.clear()
        bad = client.put(f"{location}&digest={digest_of(DATA[:2000] + b'x')}")
        assert error_code(bad) == "DIGEST_INVALID"
        location = chunks(client, start_upload(client, "a"), DATA[:1000])
        hashes.clear()
        location = chunks(client, location, DATA[1000:2000])
        response = client.put(f"{location}&digest={digest_of(DATA)}", data=DATA[2000:])
        assert response.status_code == 201
        assert client.get(f"/v2/a/blobs/{digest_of(DATA)}").data == DATA


class TestMonolithic:
    def test_post_with_digest_and_body_is_201(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        digest = digest_of(DATA)
        response = client.post(f"/v2/a/blobs/uploads/?digest={digest}", data=DATA)
        assert response.status_code == 201
        assert response.headers["Location"] == f"http://localhost/v2/a/blobs/{digest}"
        assert response.headers["Docker-Content-Digest"] == digest
        assert client.get(f"/v2/a/blobs/{digest}").data == DATA
        assert uploads_left(driver, "a") == []

    def test_wrong_digest_stores_nothing(self, client: FlaskClient, driver: StorageDriver) -> None:
        claimed = digest_of(b"other")
        response = client.post(f"/v2/a/blobs/uploads/?digest={claimed}", data=DATA)
        assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
        assert not blob_exists(driver, claimed)
        assert not blob_exists(driver, digest_of(DATA))
        assert not link_exists(driver, "a", claimed)
        assert uploads_left(driver, "a") == []

    def test_malformed_digest(self, client: FlaskClient, driver: StorageDriver) -> None:
        response = client.post("/v2/a/blobs/uploads/?digest=sha256:zz", data=DATA)
        assert (response.status_code, error_code(response)) == (400, "DIGEST_INVALID")
        assert uploads_left(driver, "a") == []

    def test_truncated_body_leaves_no_upload(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        response = client.post(
            f"/v2/a/blobs/uploads/?digest={digest_of(DATA)}",
            input_stream=io.BytesIO(DATA[:10]),
            environ_overrides={"CONTENT_LENGTH": str(len(DATA))},
        )
        assert (response.status_code, error_code(response)) == (400, "SIZE_INVALID")
        assert uploads_left(driver, "a") == []
        assert not blob_exists(driver, digest_of(DATA))

    def test_empty_digest_starts_an_ordinary_upload(self, client: FlaskClient) -> None:
        assert client.post("/v2/a/blobs/uploads/?digest=").status_code == 202


class TestMount:
    def test_mount_links_a_blob_from_another_repository(
        self, client: FlaskClient, driver: StorageDriver
    ) -> None:
        digest = push_blob(client, "from/here", DATA)
        response = client.post(f"/v2/to/there/blobs/uploads/?mount={digest}&from=from/here")
        assert response.status_code == 201
        assert response.headers["Location"] == f"http://localhost/v2/to/there/blobs/{digest}"
        assert response.headers["Docker-Content-Digest"] == digest
        assert client.get(f"/v2/to/there/blobs/{digest}").data == DATA
        assert uploads_left(driver, "to/there") == []

    @pytest.mark.parametrize(
        "query",
        [
            "mount={digest}&from=elsewhere",
            "mount={digest}&from=Bad/Name",
            "mount={digest}&from=../from/here",
            "mount=sha256:zz&from=from/here",
            "mount={missing}&from=from/here",
            "mount={digest}",
            "from=from/here",
        ],
    )
    def test_mount_that_cannot_happen_is_an_ordinary_upload(
        self, client: FlaskClient, driver: StorageDriver, query: str
    ) -> None:
        digest = push_blob(client, "from/here", DATA)
        push_blob(client, "elsewhere-not-linked", b"x")
        query = query.format(digest=digest, missing=digest_of(b"missing"))
        response = client.post(f"/v2/to/blobs/uploads/?{query}")
        assert response.status_code == 202
        assert response.headers["Range"] == "0-0"
        assert not link_exists(driver, "to", digest)


class TestStatus:
    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    def test_status_needs_no_state_and_gives_a_fresh_one(
        self, client: FlaskClient, method: str
    ) -> None:
        location = chunks(client, start_upload(client, "a"), DATA[:42])
        uuid = upload_id(location)
        response = client.open(f"/v2/a/blobs/uploads/{uuid}", method=method)
        assert response.status_code == 204
        assert response.headers["Range"] == "0-41"
        assert response.headers["Docker-Upload-UUID"] == uuid
        assert unpack(state_of(response.headers["Location"]), SECRET).offset == 42
        resumed = chunks(client, path_of(response.headers["Location"]), DATA[42:])
        assert client.put(f"{resumed}&digest={digest_of(DATA)}").status_code == 201

    @pytest.mark.parametrize("uuid", ["0b5fdb4e-0f4b-4b48-9b5c-0b0a4b1c1a11", "abc", "..", "a.b"])
    def test_unknown_upload(self, client: FlaskClient, uuid: str) -> None:
        response = client.get(f"/v2/a/blobs/uploads/{uuid}")
        assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_UNKNOWN")

    def test_upload_of_another_repository_is_unknown(self, client: FlaskClient) -> None:
        uuid = upload_id(start_upload(client, "a"))
        response = client.get(f"/v2/b/blobs/uploads/{uuid}")
        assert error_code(response) == "BLOB_UPLOAD_UNKNOWN"


class TestCancel:
    def test_delete_cancels(self, client: FlaskClient, driver: StorageDriver) -> None:
        location = chunks(client, start_upload(client, "a"), DATA[:10])
        response = client.delete(location)
        assert response.status_code == 204
        assert response.headers["Docker-Upload-UUID"] == upload_id(location)
        assert uploads_left(driver, "a") == []
        for method in ("GET", "PATCH", "PUT", "DELETE"):
            again = client.open(f"{location}&digest={digest_of(b'')}", method=method)
            assert (again.status_code, error_code(again)) == (404, "BLOB_UPLOAD_UNKNOWN")


class TestState:
    """PATCH, PUT and DELETE need the token; anything wrong with it is BLOB_UPLOAD_INVALID."""

    METHODS = ("PATCH", "PUT", "DELETE")

    def _assert_invalid(self, client: FlaskClient, url: str) -> None:
        for method in self.METHODS:
            response = client.open(url, method=method, data=b"abc")
            assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_INVALID")

    def test_missing_or_garbage(self, client: FlaskClient) -> None:
        uuid = upload_id(start_upload(client, "a"))
        for query in ("", "?_state=", "?_state=garbage", "?_state=%00%01"):
            self._assert_invalid(client, f"/v2/a/blobs/uploads/{uuid}{query}")

    def test_tampered(self, client: FlaskClient) -> None:
        location = start_upload(client, "a")
        raw = bytearray(base64.urlsafe_b64decode(state_of(location)))
        raw[-5] ^= 0x01
        tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
        self._assert_invalid(client, f"{location.split('?')[0]}?_state={tampered}")

    def test_other_repository(self, client: FlaskClient) -> None:
        """A token for repository a on b's URL (the upload id is a's)."""
        location = start_upload(client, "a")
        start_upload(client, "b")
        self._assert_invalid(client, location.replace("/v2/a/", "/v2/b/"))

    def test_other_upload(self, client: FlaskClient) -> None:
        one, two = start_upload(client, "a"), start_upload(client, "a")
        self._assert_invalid(client, f"{one.split('?')[0]}?{two.split('?')[1]}")

    def test_other_secret(self, client: FlaskClient) -> None:
        location = start_upload(client, "a")
        uuid = upload_id(location)
        forged = pack(UploadState("a", uuid, 0, datetime.now(UTC)), "not-the-secret")
        self._assert_invalid(client, f"/v2/a/blobs/uploads/{uuid}?_state={forged}")

    def test_valid_token_for_a_missing_upload_is_unknown(self, client: FlaskClient) -> None:
        uuid = "0b5fdb4e-0f4b-4b48-9b5c-0b0a4b1c1a11"
        token = pack(UploadState("a", uuid, 0, datetime.now(UTC)), SECRET)
        for method in self.METHODS:
            response = client.open(f"/v2/a/blobs/uploads/{uuid}?_state={token}", method=method)
            assert (response.status_code, error_code(response)) == (404, "BLOB_UPLOAD_UNKNOWN")


class TestReadOnly:
    def test_writes_are_unsupported_status_is_served(self, storage: str) -> None:
        from distribution import config as config_module
        from distribution.app import create_app

        writable = create_app(config_module.parse(blob_fixtures.config_text(storage), {}))
        location = chunks(writable.test_client(), start_upload(writable.test_client(), "a"), b"x")
        read_only = create_app(
            config_module.parse(blob_fixtures.config_text(storage, readonly=True), {}),
            writable.extensions["registry"],
        )
        client = read_only.test_client()
        for method, url in [
            ("POST", "/v2/a/blobs/uploads/"),
            ("POST", f"/v2/a/blobs/uploads/?digest={digest_of(b'x')}"),
            ("PATCH", location),
            ("PUT", f"{location}&digest={digest_of(b'x')}"),
            ("DELETE", location),
        ]:
            response = client.open(url, method=method, data=b"x")
            assert (response.status_code, error_code(response)) == (405, "UNSUPPORTED")
        assert client.get(location.split("?")[0]).headers["Range"] == "0-0"
