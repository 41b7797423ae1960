"""An upstream with token authentication: the Go registry (``auth: token``) trusting a CA made
here, and a small token server issuing JWTs signed by it, as Docker Hub's flow works."""

from __future__ import annotations

import base64
import concurrent.futures
import datetime
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bcrypt
import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import free_port
from tests.e2e.harness import Skopeo
from tests.proxy.conftest import IMAGE_REF, GoRegistry
from tests.proxy.test_pull_through import pull

SERVICE = "proxy-test-registry"
ISSUER = "proxy-test-issuer"
USER, PASSWORD = "puller", "s3cret"
#: Seconds a token lives.
TOKEN_LIFETIME = 300


class TokenServer:
    """Issues a token for every scope asked, to ``USER`` with ``PASSWORD`` only; remembers
    who asked (user agent, user, scopes)."""

    def __init__(self, directory: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy test token CA")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = directory / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        #: Scopes whose token requests wait for their event (at most 30 s) before answering.
        self.held: dict[str, threading.Event] = {}
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def issue(self, user: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = datetime.datetime.now(datetime.UTC)
        claims = {
            "iss": ISSUER,
            "sub": user,
            "aud": SERVICE,
            "exp": now + datetime.timedelta(seconds=TOKEN_LIFETIME),
            "nbf": now - datetime.timedelta(seconds=10),
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        chain = [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"x5c": chain})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                user = _basic_user(self.headers.get("Authorization", ""))
                server.requests.append(
                    {
                        "agent": self.headers.get("User-Agent", ""),
                        "user": user,
                        "scopes": query.get("scope", []),
                        "service": query.get("service", [""])[0],
                    }
                )
                for scope in query.get("scope", []):
                    if scope in server.held:
                        server.held[scope].wait(30)
                if user != USER:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                token = server.issue(user, query.get("scope", []))
                body = json.dumps({"token": token, "expires_in": TOKEN_LIFETIME}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def _basic_user(header: str) -> str | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(value).decode().partition(":")
    return user if password == PASSWORD else f"{user} (wrong password)"


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[TokenServer]:
    server = TokenServer(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def token_upstream(
    tmp_path: Path, token_server: TokenServer, skopeo: Skopeo, test_images
) -> Iterator[GoRegistry]:
    auth = f"""\
auth:
  token:
    realm: {token_server.realm}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {token_server.bundle}
"""
    registry = GoRegistry(tmp_path / "upstream", auth)
    _, _, layout = test_images
    skopeo.copy(
        f"oci:{layout}:image",
        f"docker://{registry.netloc}/{IMAGE_REF}",
        f"--dest-creds={USER}:{PASSWORD}",
    )
    yield registry
    registry.stop()


def test_pulls_through_a_token_authenticated_upstream(
    token_upstream: GoRegistry,
    token_server: TokenServer,
    start_proxy,
    skopeo: Skopeo,
    test_images,
    tmp_path: Path,
) -> None:
    image, _, _ = test_images
    proxy = start_proxy(token_upstream.url, f"  username: {USER}\n  password: {PASSWORD}\n")
    tags, blobs = pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "pulled")
    assert tags == {"pulled": image.digest}
    assert blobs.keys() == image.all_manifests().keys() | image.all_blobs().keys()
    ours = [r for r in token_server.requests if r["agent"] == "distribution-py-proxy"]
    assert ours, "the proxy never asked the token server"
    assert all(r["user"] == USER for r in ours)
    assert all(r["scopes"] == ["repository:library/app:pull"] for r in ours)
    assert all(r["service"] == SERVICE for r in ours)
    # Tokens are cached: at most one per worker, not one per upstream request.
    assert len(ours) <= 2, ours


def test_wrong_credentials_get_no_content(
    token_upstream: GoRegistry, token_server: TokenServer, start_proxy, test_images
) -> None:
    image, _, _ = test_images
    proxy = start_proxy(token_upstream.url, f"  username: {USER}\n  password: wrong\n")
    response = requests.get(
        f"{proxy.url}/v2/library/app/blobs/{image.layer_digests[0]}", timeout=30
    )
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert any(r["user"] == f"{USER} (wrong password)" for r in token_server.requests)


def test_a_slow_token_fetch_holds_up_only_its_own_repository(
    token_upstream: GoRegistry, token_server: TokenServer, start_proxy, skopeo: Skopeo, test_images
) -> None:
    image, _, layout = test_images
    skopeo.copy(
        f"oci:{layout}:image",
        f"docker://{token_upstream.netloc}/library/other:1.0",
        f"--dest-creds={USER}:{PASSWORD}",
    )
    proxy = start_proxy(
        token_upstream.url,
        f"  username: {USER}\n  password: {PASSWORD}\n",
        env={"REGISTRY_HTTP_WORKERS": "1", "REGISTRY_HTTP_THREADS": "4"},
    )
    accept = {"Accept": image.media_type}
    first = requests.get(f"{proxy.url}/v2/library/app/manifests/1.0", headers=accept, timeout=30)
    assert first.status_code == 200  # the proxy knows the upstream's challenge now
    release = threading.Event()
    token_server.held["repository:library/slow:pull"] = release
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            requests.get, f"{proxy.url}/v2/library/slow/manifests/1.0", headers=accept, timeout=60
        )
        try:
            for _ in range(100):
                if any(
                    "repository:library/slow:pull" in r["scopes"] for r in token_server.requests
                ):
                    break
                time.sleep(0.1)
            else:
                raise AssertionError("the proxy never asked for the slow scope's token")
            other = requests.get(
                f"{proxy.url}/v2/library/other/manifests/1.0", headers=accept, timeout=15
            )
        finally:
            release.set()
        assert other.status_code == 200
        assert other.content == image.manifest
        assert slow.result().status_code == 404


def test_a_failed_token_fetch_is_not_repeated_by_each_waiting_request(
    token_upstream: GoRegistry, token_server: TokenServer, start_proxy, test_images
) -> None:
    image, _, _ = test_images
    proxy = start_proxy(
        token_upstream.url,
        f"  username: {USER}\n  password: wrong\n",
        env={"REGISTRY_HTTP_WORKERS": "1", "REGISTRY_HTTP_THREADS": "8"},
    )
    release = threading.Event()
    token_server.held["repository:library/app:pull"] = release
    url = f"{proxy.url}/v2/library/app/blobs/{image.layer_digests[0]}"
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        responses = [pool.submit(requests.get, url, timeout=60) for _ in range(4)]
        time.sleep(1)  # the other requests queue up behind the one token fetch
        release.set()
        statuses = [response.result().status_code for response in responses]
    assert statuses == [503] * 4
    ours = [r for r in token_server.requests if r["agent"] == "distribution-py-proxy"]
    assert len(ours) == 1, ours


def test_credentials_never_go_to_a_token_server_off_the_upstreams_host(
    tmp_path: Path, token_server: TokenServer, start_proxy, skopeo: Skopeo, test_images
) -> None:
    """The upstream (127.0.0.1) names a realm on ``localhost``: another host, and a local one,
    so the token is asked for without the configured credentials (and is refused here)."""
    realm = token_server.realm.replace("127.0.0.1", "localhost")
    auth = f"""\
auth:
  token:
    realm: {realm}
    service: {SERVICE}
    issuer: {ISSUER}
    rootcertbundle: {token_server.bundle}
"""
    upstream = GoRegistry(tmp_path / "upstream", auth)
    try:
        image, _, _ = test_images
        proxy = start_proxy(upstream.url, f"  username: {USER}\n  password: {PASSWORD}\n")
        response = requests.get(
            f"{proxy.url}/v2/library/app/blobs/{image.layer_digests[0]}", timeout=30
        )
    finally:
        upstream.stop()
    assert response.status_code == 503
    ours = [r for r in token_server.requests if r["agent"] == "distribution-py-proxy"]
    assert ours, "the proxy never asked the token server"
    assert all(r["user"] is None for r in ours), ours
    assert "is not on the upstream's host or domain" in proxy.log


class ChallengingServer:
    """Where the upstream's blob redirects lead: it answers every request with a 401 naming
    its own token realm, and records any credentials sent to it."""

    def __init__(self) -> None:
        self.credentials: list[str] = []
        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization"):
                    server.credentials.append(self.headers["Authorization"])
                realm = f"http://127.0.0.1:{server.port}/token"
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service=evil')
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def test_a_redirect_target_teaches_the_proxy_no_challenge(
    tmp_path: Path, start_proxy, skopeo: Skopeo, test_images
) -> None:
    """The upstream (htpasswd, behind nginx) sends blob GETs on to another host that answers
    401 with a token realm of its own: the proxy must not learn that challenge, or it would
    send the upstream's credentials to that realm."""
    from tests.nginx import Nginx

    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(
        USER.encode() + b":" + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)) + b"\n"
    )
    upstream = GoRegistry(
        tmp_path / "upstream", f"auth:\n  htpasswd:\n    realm: up\n    path: {htpasswd}\n"
    )
    evil = ChallengingServer()
    nginx_port = free_port()
    nginx = Nginx(tmp_path / "nginx").start(
        f"""
  server {{
    listen 127.0.0.1:{nginx_port};
    location ~ /blobs/sha256: {{ return 307 http://127.0.0.1:{evil.port}$request_uri; }}
    location / {{ proxy_pass http://{upstream.netloc}; proxy_set_header Host $http_host; }}
  }}"""
    )
    try:
        image, _, layout = test_images
        skopeo.copy(
            f"oci:{layout}:image",
            f"docker://{upstream.netloc}/{IMAGE_REF}",
            f"--dest-creds={USER}:{PASSWORD}",
        )
        proxy = start_proxy(
            f"http://127.0.0.1:{nginx_port}", f"  username: {USER}\n  password: {PASSWORD}\n"
        )
        manifest = requests.get(
            f"{proxy.url}/v2/library/app/manifests/1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            timeout=30,
        )
        assert manifest.status_code == 200  # Basic to the upstream itself works
        for _ in range(2):
            blob = requests.get(
                f"{proxy.url}/v2/library/app/blobs/{image.layer_digests[0]}", timeout=30
            )
            assert blob.status_code == 503
    finally:
        nginx.stop()
        evil.stop()
        upstream.stop()
    assert evil.credentials == []
    assert "ignoring the authentication challenge of 127.0.0.1:" in proxy.log
