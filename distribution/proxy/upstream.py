"""The upstream registry as an HTTP client: manifests, blobs and tags, with its authentication.

Credentials (``proxy.username``/``password``) are only ever sent where the upstream asks for
them: a ``401`` with a ``Basic`` challenge gets them as basic auth; one with a ``Bearer``
challenge sends them to the token server (the challenge's ``realm``) if that is the upstream's
own host or domain (:func:`~distribution.proxy.challenge.realm_allowed`; otherwise the token is
asked for anonymously), and the token it returns, cached per repository scope until it
expires, goes to the upstream. Challenges are learnt from the upstream's own answers only,
never from a host a redirect led to, and kept, so later requests authenticate at once, as Go's
challenge manager does. Everything read from the upstream and its token server is bounded.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

import requests

from distribution import errors, manifest
from distribution.digest import Digest
from distribution.proxy import challenge as challenges
from distribution.proxy.challenge import Challenge, Token

#: Seconds to connect to the upstream, and to wait for each read from it.
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
#: Every manifest type, so the upstream hands over what it stores, byte for byte.
MANIFEST_ACCEPT = ", ".join(
    [
        manifest.OCI_INDEX,
        manifest.OCI_MANIFEST,
        manifest.DOCKER_MANIFEST_LIST,
        manifest.DOCKER_MANIFEST,
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)
#: Seconds during which a failed token fetch is answered with its error, not repeated.
TOKEN_RETRY_AFTER = 2.0
#: Pages of a tag list followed at most (the upstream's ``Link`` headers), and the bytes of one.
MAX_TAG_PAGES = 100
MAX_TAG_PAGE_BYTES = 4 << 20
#: Bytes of a token server's answer read at most (a token with a certificate chain is a few KiB).
MAX_TOKEN_BYTES = 1 << 20

log = logging.getLogger(__name__)


class UpstreamError(Exception):
    """The upstream could not be reached, or answered with an unexpected ``status``."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(UpstreamError):
    """The upstream does not have it (404)."""


class Upstream:
    """One upstream registry at ``url``, shared by the threads of a process."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.credentials = (username or "", password or "") if username or password else None
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "distribution-py-proxy"
        # Blobs are read byte for byte (iter_body): a web server in front of the upstream
        # may gzip what a client accepts, which Go's client would decode and ours would not.
        self.session.headers["Accept-Encoding"] = "identity"
        self._lock = threading.Lock()
        self._challenge: Challenge | None = None
        self._tokens: dict[str, Token] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._failures: dict[str, tuple[float, UpstreamError]] = {}

    def manifest_digest(self, name: str, tag: str) -> Digest:
        """The digest ``tag`` points at upstream now (a ``HEAD``, as Go's tag service asks)."""
        with self._request("HEAD", f"/v2/{name}/manifests/{tag}", name, MANIFEST_ACCEPT) as r:
            header = r.headers.get("Docker-Content-Digest")
        if header:
            return _digest(header)
        return Digest.of(self.manifest(name, tag))

    def manifest(self, name: str, reference: str) -> bytes:
        """The manifest's bytes, refused past the size the registry accepts."""
        path = f"/v2/{name}/manifests/{reference}"
        with self._request("GET", path, name, MANIFEST_ACCEPT, stream=True) as response:
            return _read(response, manifest.MAX_SIZE, f"manifest {name}@{reference}")

    def blob_size(self, name: str, digest: Digest) -> int:
        with self._request("HEAD", f"/v2/{name}/blobs/{digest}", name) as response:
            return _length(response)

    def open_blob(self, name: str, digest: Digest) -> requests.Response:
        """The streaming response for the blob (redirects followed); the caller closes it."""
        return self._request("GET", f"/v2/{name}/blobs/{digest}", name, stream=True)

    def tags(self, name: str) -> list[str]:
        """Every tag of ``name`` upstream, following its pages."""
        found: list[str] = []
        path: str | None = f"/v2/{name}/tags/list"
        for _ in range(MAX_TAG_PAGES):
            if path is None:
                break
            with self._request("GET", path, name, stream=True) as response:
                page = _read(response, MAX_TAG_PAGE_BYTES, f"tag list of {name}")
                try:
                    found.extend(str(tag) for tag in json.loads(page).get("tags") or [])
                except (ValueError, AttributeError, TypeError):
                    raise UpstreamError(f"bad tag list for {name}") from None
                link = response.links.get("next", {}).get("url")
                path = urljoin(response.url, link) if link else None
            if path is not None and _origin(path) != _origin(self.url):
                # The credentials go to the upstream only, never to a host a page names.
                raise UpstreamError(f"tag list of {name} links to another host: {path}")
        return sorted(set(found))

    def _request(
        self, method: str, path: str, name: str, accept: str | None = None, stream: bool = False
    ) -> requests.Response:
        """Send to ``path`` under the upstream's URL (or to an absolute URL), answering one
        authentication challenge; a non-2xx answer becomes an exception."""
        url = path if "://" in path else self.url + path
        headers = {"Accept": accept} if accept else {}
        scope = challenges.pull_scope(name)
        auth = self._authorization(scope, rejected=None)
        response = self._send(method, url, {**headers, **auth}, stream)
        if response.status_code == 401 and self._learn(response):
            response.close()
            auth = self._authorization(scope, rejected=auth.get("Authorization"))
            response = self._send(method, url, {**headers, **auth}, stream)
        if response.status_code == 404:
            response.close()
            raise NotFound(f"{method} {url}: not found upstream", 404)
        if not 200 <= response.status_code < 300:
            response.close()
            raise UpstreamError(
                f"{method} {url}: upstream answered {response.status_code}", response.status_code
            )
        return response

    def _send(
        self, method: str, url: str, headers: dict[str, str], stream: bool
    ) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                headers=headers,
                stream=stream,
                allow_redirects=True,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise UpstreamError(f"{method} {url}: {exc}") from None

    def _learn(self, response: requests.Response) -> bool:
        """Remember the challenge of the upstream's 401; whether a retry could now
        authenticate. A host that a redirect led to (blob storage) teaches nothing."""
        if _origin(response.url) != _origin(self.url):
            log.warning(
                "proxy: ignoring the authentication challenge of %s", _origin(response.url)[1]
            )
            return False
        offered = challenges.parse_challenges(response.headers.get("WWW-Authenticate", ""))
        chosen = challenges.bearer(offered)
        if chosen is None and self.credentials is not None:
            chosen = next((c for c in offered if c.scheme == "basic"), None)
        if chosen is None:
            return False
        with self._lock:
            self._challenge = chosen
        log.info("proxy: upstream %s asks for %s authentication", self.url, chosen.scheme)
        return True

    def _authorization(self, scope: str, rejected: str | None) -> dict[str, str]:
        """The header for ``scope``; a token is fetched when none is cached, it expired, or
        the upstream just refused it (``rejected``). Threads that need one at the same time
        wait for a single fetch instead of each asking the token server."""
        with self._lock:
            chosen = self._challenge
        if chosen is None:
            return {}
        if chosen.scheme == "basic":
            return _basic(self.credentials)
        token = self._usable_token(scope, rejected)
        if token is None:
            with self._lock:
                fetching = self._fetching.setdefault(scope, threading.Lock())
            with fetching:
                token = self._usable_token(scope, rejected)
                if token is None:
                    token = self._fetch_token_once(chosen, scope)
        return {"Authorization": f"Bearer {token.value}"}

    def _fetch_token_once(self, chosen: Challenge, scope: str) -> Token:
        """Fetch and cache a token for ``scope``. A fetch that failed moments ago is not
        repeated: the threads that waited for it get its error instead of each waiting out
        the token server again."""
        with self._lock:
            failed_at, failure = self._failures.get(scope, (0.0, None))
        if failure is not None and time.monotonic() - failed_at < TOKEN_RETRY_AFTER:
            raise UpstreamError(str(failure), failure.status)
        try:
            token = self._fetch_token(chosen, scope)
        except UpstreamError as exc:
            with self._lock:
                self._failures[scope] = (time.monotonic(), exc)
            raise
        with self._lock:
            self._failures.pop(scope, None)
            self._tokens = {s: t for s, t in self._tokens.items() if t.valid()}
            self._tokens[scope] = token
        return token

    def _usable_token(self, scope: str, rejected: str | None) -> Token | None:
        with self._lock:
            token = self._tokens.get(scope)
        if token is None or not token.valid() or f"Bearer {token.value}" == rejected:
            return None
        return token

    def _fetch_token(self, chosen: Challenge, scope: str) -> Token:
        """A token for ``scope`` from the challenge's realm, with the credentials if any."""
        params = {"scope": scope}
        if chosen.params.get("service"):
            params["service"] = chosen.params["service"]
        realm = chosen.params["realm"]
        credentials = self.credentials
        if credentials is not None and not challenges.realm_allowed(self.url, realm):
            log.warning(
                "proxy: token server %s is not on the upstream's host or domain: "
                "asking it for a token without the configured credentials",
                realm,
            )
            credentials = None
        try:
            response = self.session.get(
                realm,
                params=params,
                auth=credentials,
                stream=True,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            )
        except requests.RequestException as exc:
            raise UpstreamError(f"token server {realm}: {exc}") from None
        with response:
            if response.status_code != 200:
                raise UpstreamError(
                    f"token server {realm} answered {response.status_code}", response.status_code
                )
            body = _read(response, MAX_TOKEN_BYTES, f"token from {realm}")
            try:
                return challenges.parse_token(json.loads(body))
            except ValueError as exc:
                raise UpstreamError(f"token server {realm}: {exc}") from None


def iter_body(response: requests.Response, chunk: int) -> Iterator[bytes]:
    """The raw bytes of a blob response (no content decoding), ``chunk`` at a time."""
    while data := response.raw.read(chunk, decode_content=False):
        yield data


def _read(response: requests.Response, limit: int, what: str) -> bytes:
    """The whole body of ``response``, refused past ``limit`` bytes."""
    body = bytearray()
    try:
        for chunk in response.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise UpstreamError(f"{what} is larger than {limit} bytes")
    except requests.RequestException as exc:
        raise UpstreamError(f"{what}: {exc}") from None
    return bytes(body)


def _basic(credentials: tuple[str, str] | None) -> dict[str, str]:
    if credentials is None:
        return {}
    pair = f"{credentials[0]}:{credentials[1]}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _digest(text: str) -> Digest:
    try:
        return Digest.parse(text.strip())
    except errors.DigestInvalid:
        raise UpstreamError(f"upstream sent a bad digest {text!r}") from None


def _length(response: requests.Response) -> int:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        raise UpstreamError("upstream sent no Content-Length") from None
