"""``GET``/``HEAD``/``DELETE /v2/<name>/blobs/<digest>`` on every built-in driver."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from distribution import config as config_module
from distribution.app import create_app
from distribution.digest import Digest
from distribution.storage import paths
from distribution.storage.driver import StorageDriver
from distribution.storage.driver.checked import CheckedDriver
from distribution.storage.driver.inmemory import InMemoryDriver
from distribution.storage.registry import Registry
from tests.api import blob_fixtures
from tests.api.blob_fixtures import config_text, digest_of, error_code, push_blob

# Fixtures: each test runs once per built-in driver.
storage = blob_fixtures.storage
app = blob_fixtures.app
client = blob_fixtures.client
driver = blob_fixtures.driver
make_client = blob_fixtures.make_client

DATA = random.Random(3).randbytes(100_000)


@pytest.fixture
def blob(client: FlaskClient) -> str:
    """The digest of ``DATA``, pushed into ``a/b``."""
    return push_blob(client, "a/b", DATA)


def test_get_streams_the_blob_with_distributions_headers(client: FlaskClient, blob: str) -> None:
    response = client.get(f"/v2/a/b/blobs/{blob}")
    assert response.status_code == 200
    assert response.data == DATA
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["ETag"] == f'"{blob}"'
    assert response.headers["Cache-Control"] == "max-age=31536000"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_head_has_the_headers_and_no_body(client: FlaskClient, blob: str) -> None:
    get = client.get(f"/v2/a/b/blobs/{blob}")
    head = client.head(f"/v2/a/b/blobs/{blob}")
    assert head.status_code == 200
    assert head.data == b""
    for name in ("Content-Length", "Content-Type", "Docker-Content-Digest", "ETag"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-9", 0, 10),
        ("bytes=10-10", 10, 11),
        ("bytes=99990-", 99990, 100_000),
        ("bytes=-25", 99975, 100_000),
        ("bytes=-500000", 0, 100_000),
        ("bytes=99000-1000000", 99000, 100_000),
    ],
)
def test_range_is_206_with_content_range(
    client: FlaskClient, blob: str, header: str, start: int, stop: int
) -> None:
    response = client.get(f"/v2/a/b/blobs/{blob}", headers={"Range": header})
    assert response.status_code == 206
    assert response.data == DATA[start:stop]
    assert response.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{len(DATA)}"
    assert response.headers["Content-Length"] == str(stop - start)
    assert response.headers["Docker-Content-Digest"] == blob


def test_head_with_range_has_the_range_headers(client: FlaskClient, blob: str) -> None:
    response = client.head(f"/v2/a/b/blobs/{blob}", headers={"Range": "bytes=5-9"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 5-9/{len(DATA)}"
    assert response.headers["Content-Length"] == "5"
    assert response.data == b""


def test_unsatisfiable_range_is_416_with_the_size(client: FlaskClient, blob: str) -> None:
    """Go answers ``416`` with ``Content-Range: bytes */<size>``; the body is OCI JSON here."""
    response = client.get(f"/v2/a/b/blobs/{blob}", headers={"Range": "bytes=100000-"})
    assert response.status_code == 416
    assert error_code(response) == "RANGE_INVALID"
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"
    assert response.headers["Docker-Content-Digest"] == blob


@pytest.mark.parametrize("header", ["garbage", "bytes=5-2", "bytes=-0", "items=0-5"])
def test_malformed_range_is_416_as_go(client: FlaskClient, blob: str, header: str) -> None:
    response = client.get(f"/v2/a/b/blobs/{blob}", headers={"Range": header})
    assert response.status_code == 416
    assert error_code(response) == "RANGE_INVALID"
    assert "Content-Range" not in response.headers


def test_multiple_ranges_get_the_whole_blob(client: FlaskClient, blob: str) -> None:
    response = client.get(f"/v2/a/b/blobs/{blob}", headers={"Range": "bytes=0-1,5-6"})
    assert response.status_code == 200
    assert response.data == DATA


def test_if_range_applies_the_range_only_for_this_etag(client: FlaskClient, blob: str) -> None:
    url = f"/v2/a/b/blobs/{blob}"
    same = client.get(url, headers={"Range": "bytes=0-9", "If-Range": f'"{blob}"'})
    assert (same.status_code, same.data) == (206, DATA[:10])
    other = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"sha256:other"'})
    assert (other.status_code, other.data) == (200, DATA)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("etag", ['"{blob}"', 'W/"{blob}"', '"x", "{blob}"', "*"])
def test_if_none_match_is_304(client: FlaskClient, blob: str, method: str, etag: str) -> None:
    response = client.open(
        f"/v2/a/b/blobs/{blob}", method=method, headers={"If-None-Match": etag.format(blob=blob)}
    )
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == f'"{blob}"'
    assert response.headers["Docker-Content-Digest"] == blob
    assert response.headers["Cache-Control"] == "max-age=31536000"


def test_if_none_match_another_etag_is_200(client: FlaskClient, blob: str) -> None:
    response = client.get(f"/v2/a/b/blobs/{blob}", headers={"If-None-Match": '"sha256:x"'})
    assert (response.status_code, response.data) == (200, DATA)


def test_empty_blob(client: FlaskClient) -> None:
    digest = push_blob(client, "a/b", b"")
    response = client.get(f"/v2/a/b/blobs/{digest}")
    assert (response.status_code, response.data) == (200, b"")
    assert response.headers["Content-Length"] == "0"
    ranged = client.get(f"/v2/a/b/blobs/{digest}", headers={"Range": "bytes=0-"})
    assert ranged.status_code == 416
    assert ranged.headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_unknown_blob(client: FlaskClient, method: str) -> None:
    response = client.open(f"/v2/a/b/blobs/{digest_of(b'nothing')}", method=method)
    assert response.status_code == 404
    if method != "HEAD":
        assert error_code(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_blob_of_another_repository_is_unknown_here(
    client: FlaskClient, blob: str, driver: StorageDriver, method: str
) -> None:
    assert driver.stat(paths.blob_data(Digest.parse(blob))).size == len(DATA)
    response = client.open(f"/v2/other/blobs/{blob}", method=method)
    assert response.status_code == 404
    if method != "HEAD":
        assert error_code(response) == "BLOB_UNKNOWN"


@pytest.mark.parametrize(
    "digest", ["sha256:abc", "sha256:" + "G" * 64, "md5:" + "a" * 32, "sha256", "uploads"]
)
def test_invalid_digest(client: FlaskClient, digest: str) -> None:
    for method in ("GET", "DELETE"):
        response = client.open(f"/v2/a/b/blobs/{digest}", method=method)
        assert response.status_code == 400
        assert error_code(response) == "DIGEST_INVALID"


@pytest.mark.parametrize("name", ["A/b", "a//b", "a/../b", "-a", "a" * 256])
def test_invalid_name(client: FlaskClient, name: str) -> None:
    for method in ("GET", "HEAD", "DELETE"):
        response = client.open(f"/v2/{name}/blobs/{digest_of(b'x')}", method=method)
        assert response.status_code == 400
        if method != "HEAD":
            assert error_code(response) == "NAME_INVALID"


def test_delete_unlinks_the_blob_from_the_repository_only(
    client: FlaskClient, blob: str, driver: StorageDriver
) -> None:
    push_blob(client, "other", DATA)
    response = client.delete(f"/v2/a/b/blobs/{blob}")
    assert response.status_code == 202
    assert response.headers["Content-Length"] == "0"
    assert error_code(client.get(f"/v2/a/b/blobs/{blob}")) == "BLOB_UNKNOWN"
    assert client.get(f"/v2/other/blobs/{blob}").data == DATA
    assert driver.stat(paths.blob_data(Digest.parse(blob))).size == len(DATA)
    again = client.delete(f"/v2/a/b/blobs/{blob}")
    assert (again.status_code, error_code(again)) == (404, "BLOB_UNKNOWN")


def test_delete_is_unsupported_unless_enabled(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client(delete=False)
    blob = push_blob(client, "a/b", DATA)
    for digest in (blob, digest_of(b"unknown")):
        response = client.delete(f"/v2/a/b/blobs/{digest}")
        assert (response.status_code, error_code(response)) == (405, "UNSUPPORTED")
    assert client.get(f"/v2/a/b/blobs/{blob}").data == DATA


def test_read_only_mode_serves_blobs_and_refuses_delete(storage: str) -> None:
    writable = create_app(config_module.parse(config_text(storage), {}))
    blob = push_blob(writable.test_client(), "a/b", DATA)
    registry = writable.extensions["registry"]
    read_only = create_app(config_module.parse(config_text(storage, readonly=True), {}), registry)
    client = read_only.test_client()
    assert client.get(f"/v2/a/b/blobs/{blob}").data == DATA
    response = client.delete(f"/v2/a/b/blobs/{blob}")
    assert (response.status_code, error_code(response)) == (405, "UNSUPPORTED")


class _RedirectingDriver(InMemoryDriver):
    """A driver that, like a cloud store, offers a URL for every path."""

    def redirect_url(self, path: str, method: str = "GET") -> str | None:
        return f"https://storage.example{path}?method={method}"


@pytest.mark.parametrize("disable", [False, True])
def test_redirect_to_the_drivers_url(disable: bool) -> None:
    config = config_module.parse(
        f"""
version: 0.1
storage:
  inmemory: {{}}
  redirect: {{disable: {str(disable).lower()}}}
http: {{secret: s}}
""",
        {},
    )
    client = create_app(config, Registry(config, CheckedDriver(_RedirectingDriver()))).test_client()
    blob = push_blob(client, "a", DATA)
    response = client.get(f"/v2/a/blobs/{blob}")
    if disable:
        assert (response.status_code, response.data) == (200, DATA)
    else:
        assert response.status_code == 307
        location = f"https://storage.example{paths.blob_data(Digest.parse(blob))}?method=GET"
        assert response.headers["Location"] == location
    unknown = client.get(f"/v2/a/blobs/{digest_of(b'none')}")
    assert error_code(unknown) == "BLOB_UNKNOWN"
