"""Storage middleware (``middleware.storage``) over the S3 driver on moto, and the names Go
refuses. Blob GETs go through the app; CloudFront signatures are checked with the public key."""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from distribution import config as config_module
from distribution.app import create_app
from distribution.config import ConfigError, Configuration
from distribution.digest import Digest
from distribution.storage import middleware, paths
from distribution.storage.middleware import cloudfront
from tests.api.blob_fixtures import push_blob
from tests.cloud.test_drivers import _serve
from tests.storage.s3_emulator import BUCKET, parameters

DATA = b"blob behind a middleware"


def configure(
    storage: dict[str, Any], entries: list[dict[str, Any]], **sections: Any
) -> Configuration:
    document = {
        "version": "0.1",
        "storage": storage,
        "http": {"secret": "s"},
        "middleware": {"storage": entries, **sections},
    }
    return config_module.parse(yaml.safe_dump(document), {})


def redirected(config: Configuration, client_ip: str = "127.0.0.1") -> tuple[str, str]:
    """Push a blob through the app, GET it: ``(Location, the blob's storage path)``."""
    client = create_app(config).test_client()
    digest = push_blob(client, "mw/repo", DATA)
    response = client.get(f"/v2/mw/repo/blobs/{digest}", headers={"X-Forwarded-For": client_ip})
    assert response.status_code == 307, response.data
    return response.headers["Location"], paths.blob_data(Digest.parse(digest))


@pytest.fixture
def s3(moto_s3: str) -> dict[str, Any]:
    return {"s3": parameters(moto_s3, rootdirectory="/middleware")}


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rsa.RSAPublicKey]:
    """A PKCS #1 PEM key, the format Go reads, and its public half."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("cloudfront") / "pk.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


@pytest.fixture
def ip_ranges() -> Iterator[str]:
    """AWS's ip-ranges.json served on loopback, claiming 127.0.0.0/8 for us-east-1."""
    document = json.dumps(
        {
            "prefixes": [{"ip_prefix": "127.0.0.0/8", "region": "us-east-1", "service": "S3"}],
            "ipv6_prefixes": [{"ipv6_prefix": "::1/128", "region": "us-east-1"}],
        }
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/ip-ranges.json"
    server.shutdown()
    server.server_close()


def test_no_middleware_redirects_to_a_presigned_url(s3: dict[str, Any], moto_s3: str) -> None:
    location, path = redirected(configure(s3, []))
    assert location.startswith(f"{moto_s3}/{BUCKET}/middleware{path}?")
    assert "X-Amz-Signature=" in location


def test_redirect(s3: dict[str, Any]) -> None:
    config = configure(
        s3, [{"name": "redirect", "options": {"baseurl": "https://mirror.test/base"}}]
    )
    location, path = redirected(config)
    assert location == f"https://mirror.test/base{path}"


def test_rewrite_keeps_the_signature(s3: dict[str, Any], moto_s3: str) -> None:
    entry = {
        "name": "rewrite",
        "options": {"scheme": "https", "host": "cdn.test", "trimpathprefix": f"/{BUCKET}"},
    }
    location, path = redirected(configure(s3, [entry]))
    assert location.startswith(f"https://cdn.test/middleware{path}?")
    assert "X-Amz-Signature=" in location


def test_cloudfront_signs_a_canned_policy(
    s3: dict[str, Any], key_pair: tuple[Path, rsa.RSAPublicKey]
) -> None:
    keyfile, public = key_pair
    options = {
        "baseurl": "d111.cloudfront.test",
        "privatekey": str(keyfile),
        "keypairid": "K2JCJMDEHXQW5F",
        "duration": "60s",
    }
    before = int(time.time())
    location, path = redirected(configure(s3, [{"name": "cloudfront", "options": options}]))
    resource, _, query = location.partition("?")
    assert resource == f"https://d111.cloudfront.test/middleware{path}"
    fields = dict(urllib.parse.parse_qsl(query))
    assert fields["Key-Pair-Id"] == "K2JCJMDEHXQW5F"
    expires = int(fields["Expires"])
    assert before + 60 <= expires <= int(time.time()) + 60
    condition = f'{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}'
    policy = f'{{"Statement":[{{"Resource":"{resource}","Condition":{condition}}}]}}'
    signature = base64.b64decode(fields["Signature"].translate(str.maketrans("-_~", "+=/")))
    public.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())


@pytest.mark.parametrize(
    ("filtered", "client_ip", "direct"),
    [
        ({"ipfilteredby": "aws"}, "127.0.0.1", True),
        ({"ipfilteredby": "aws"}, "192.0.2.10", False),
        ({"ipfilteredby": "awsregion", "awsregion": "eu-west-1, us-east-1"}, "127.0.0.1", True),
        ({"ipfilteredby": "awsregion", "awsregion": "eu-west-1"}, "127.0.0.1", False),
        ({"ipfilteredby": "none"}, "127.0.0.1", False),
    ],
)
def test_cloudfront_lets_aws_addresses_go_to_s3(
    s3: dict[str, Any],
    moto_s3: str,
    key_pair: tuple[Path, rsa.RSAPublicKey],
    ip_ranges: str,
    filtered: dict[str, str],
    client_ip: str,
    direct: bool,
) -> None:
    """Only the client's address matters (X-Forwarded-For here); no request goes to it."""
    options = {
        "baseurl": "https://cdn.test/",
        "privatekey": str(key_pair[0]),
        "keypairid": "K",
        "iprangesurl": ip_ranges,
        **filtered,
    }
    config = configure(s3, [{"name": "cloudfront", "options": options}])
    location, _ = redirected(config, client_ip)
    assert location.startswith(moto_s3 if direct else "https://cdn.test/middleware/")


def test_aws_ranges_refresh_in_the_process_that_reads_them(ip_ranges: str) -> None:
    """Fetched where the storage is built (gunicorn's master) with no thread started there; a
    process forked later refreshes them at its first redirect, once ``every`` has passed."""
    ranges = cloudfront.AWSRanges(ip_ranges, (), every=0.2)
    ranges.start()
    assert ranges.contains("127.0.0.1") and not _refreshers(ip_ranges)
    child = os.fork()
    if child == 0:  # a worker respawned after the ranges went stale
        status = 1
        try:
            time.sleep(0.3)
            ranges.networks = []
            ranges.keep_fresh()
            deadline = time.monotonic() + 5
            while not ranges.contains("127.0.0.1") and time.monotonic() < deadline:
                time.sleep(0.02)
            status = 0 if ranges.contains("127.0.0.1") else 1
        finally:
            os._exit(status)
    assert os.waitpid(child, 0)[1] == 0
    assert not _refreshers(ip_ranges)


def _refreshers(url: str) -> list[threading.Thread]:
    """This process's threads refreshing the ranges at ``url`` (earlier tests leave their own
    refreshers, and servers run threads too)."""
    return [thread for thread in threading.enumerate() if thread.name == f"aws-ip-ranges {url}"]


@pytest.mark.parametrize(
    ("entries", "sections", "key", "message"),
    [
        ([{"name": "nosuch"}], {}, "middleware.storage[0].name", "no storage middleware"),
        ([{"name": "redirect"}], {}, "middleware.storage[0].options.baseurl", "no baseurl"),
        (
            [{"name": "redirect", "options": {"baseurl": "mirror.test"}}],
            {},
            "middleware.storage[0].options.baseurl",
            "no scheme specified",
        ),
        (
            [{"name": "redirect", "disabled": True, "options": {"baseurl": "https://m.test"}}],
            {},
            "middleware.storage[0].disabled",
            "the Go registry ignores it",
        ),
        (
            [{"name": "cloudfront", "options": {"baseurl": "x", "privatekey": "/nonexistent"}}],
            {},
            "middleware.storage[0].options.keypairid",
            "no keypairid provided",
        ),
        (
            [
                {
                    "name": "cloudfront",
                    "options": {"baseurl": "x", "privatekey": "/nonexistent", "keypairid": "K"},
                }
            ],
            {},
            "middleware.storage[0].options.privatekey",
            "failed to read privatekey file",
        ),
        (
            [{"name": "rewrite", "options": {"host": 5}}],
            {},
            "middleware.storage[0].options.host",
            "host must be a string",
        ),
        (
            [],
            {"registry": [{"name": "ARegistryMiddleware"}]},
            "middleware.registry[0].name",
            "no registry middleware registered with name: ARegistryMiddleware",
        ),
        (
            [],
            {"repository": [{"name": "x"}]},
            "middleware.repository[0].name",
            "no repository middleware registered with name: x",
        ),
    ],
)
def test_refused_at_start(
    entries: list[dict[str, Any]], sections: dict[str, Any], key: str, message: str
) -> None:
    config = configure({"inmemory": {}}, entries, **sections)
    with pytest.raises(ConfigError) as info:
        middleware.check(config)
    assert info.value.key == key
    assert message in info.value.message


def test_cloudfront_over_another_driver_passes_through(
    key_pair: tuple[Path, rsa.RSAPublicKey],
) -> None:
    """As in Go, CloudFront only knows S3 keys; the filesystem/inmemory driver redirects nowhere."""
    options = {"baseurl": "https://cdn.test/", "privatekey": str(key_pair[0]), "keypairid": "K"}
    config = configure({"inmemory": {}}, [{"name": "cloudfront", "options": options}])
    client = create_app(config).test_client()
    digest = push_blob(client, "mw/repo", DATA)
    response = client.get(f"/v2/mw/repo/blobs/{digest}")
    assert (response.status_code, response.data) == (200, DATA)


def test_serve_refuses_an_unknown_middleware_in_one_line(tmp_path: Path) -> None:
    result = _serve(tmp_path, {"inmemory": {}}, middleware={"storage": [{"name": "nosuch"}]})
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "registry: configuration error: middleware.storage[0].name: no storage middleware "
        "registered with name: nosuch (available: cloudfront, redirect, rewrite)"
    )
    assert "Traceback" not in result.stderr
