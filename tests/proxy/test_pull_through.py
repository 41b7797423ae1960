"""The pull-through cache against a real upstream (the Go registry), pulled with skopeo."""

from __future__ import annotations

import concurrent.futures
import contextlib
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask

from distribution import config as config_module
from distribution import metrics
from distribution.app import create_app
from distribution.digest import Digest
from distribution.proxy import views
from distribution.storage import paths
from distribution.storage.driver import FileWriter, PathNotFoundError, StorageDriverError
from distribution.storage.driver.checked import CheckedDriver
from distribution.storage.driver.inmemory import InMemoryDriver
from distribution.storage.registry import Registry
from tests.conftest import free_port
from tests.e2e import images
from tests.e2e.harness import REQUEST_TIMEOUT, Skopeo
from tests.notifications.receiver import Receiver, summary
from tests.observability.test_metrics import scrape, value
from tests.proxy.conftest import IMAGE_REF, INDEX_REF, GoRegistry, get, proxy_config

BLOB_GET = r"/v2/[^ ]+/blobs/sha256:[0-9a-f]+"
MANIFEST_GET = r"/v2/[^ ]+/manifests/[^ ]+"


def blob_path(root: Path, digest: str) -> Path:
    hex_ = digest.removeprefix("sha256:")
    return root / "docker/registry/v2/blobs/sha256" / hex_[:2] / hex_ / "data"


def logged(upstream: GoRegistry, path: str, expected: int) -> int:
    """The ``GET``s of ``path`` in the upstream's access log, which it writes just after
    answering: waits (at most 10 s) for ``expected`` of them to appear."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and upstream.requests_seen("GET", path) < expected:
        time.sleep(0.1)
    return upstream.requests_seen("GET", path)


def pull(skopeo: Skopeo, netloc: str, ref: str, out: Path) -> tuple[dict[str, str], dict]:
    out.parent.mkdir(parents=True, exist_ok=True)
    skopeo.copy(f"docker://{netloc}/{ref}", f"oci:{out}:pulled", "--all")
    return images.read_oci_layout(out)


@contextlib.contextmanager
def serving(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A small HTTP server standing in for an upstream, answering with ``handler``: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def breaking_off(data: bytes, broken: threading.Event) -> type[BaseHTTPRequestHandler]:
    """An upstream serving the blob ``data``, which drops the connection half-way while
    ``broken`` is set (no registry does this on purpose)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Docker-Content-Digest", images.sha256(data))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2] if broken.is_set() else data)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def test_pulls_through_and_serves_from_storage_after(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    image, index, _ = test_images
    proxy = start_proxy(upstream.url)
    for ref, expected in [(IMAGE_REF, image), (INDEX_REF, index)]:
        tags, blobs = pull(
            skopeo, proxy.netloc, ref, tmp_path / "first" / ref.replace("/", "_").replace(":", "_")
        )
        assert tags == {"pulled": expected.digest}
        assert blobs.keys() == expected.all_manifests().keys() | expected.all_blobs().keys()
    root = tmp_path / "proxy-data"
    for digest, data in (image.all_blobs() | index.all_blobs()).items():
        assert blob_path(root, digest).read_bytes() == data
    assert not list(root.glob("docker/registry/v2/repositories/*/*/_uploads/*"))
    blob_gets = upstream.requests_seen("GET", BLOB_GET)
    manifest_gets = upstream.requests_seen("GET", MANIFEST_GET)
    assert blob_gets == len(image.all_blobs()) + len(index.all_blobs())

    for ref, expected in [(IMAGE_REF, image), (INDEX_REF, index)]:
        tags, _ = pull(
            skopeo, proxy.netloc, ref, tmp_path / "second" / ref.replace("/", "_").replace(":", "_")
        )
        assert tags == {"pulled": expected.digest}
    # The second pull only asked the upstream which digest each tag has now.
    assert upstream.requests_seen("GET", BLOB_GET) == blob_gets
    assert upstream.requests_seen("GET", MANIFEST_GET) == manifest_gets


def test_upstream_down_serves_what_is_cached(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    image, index, _ = test_images
    proxy = start_proxy(upstream.url)
    pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "before")
    upstream.stop()
    tags, blobs = pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "after")
    assert tags == {"pulled": image.digest}
    assert blobs.keys() == image.all_manifests().keys() | image.all_blobs().keys()
    name = IMAGE_REF.split(":")[0]
    by_digest = get(f"{proxy.url}/v2/{name}/manifests/{image.digest}", Accept=image.media_type)
    assert by_digest.status_code == 200 and by_digest.content == image.manifest
    assert get(f"{proxy.url}/v2/{name}/tags/list").json() == {"name": name, "tags": ["1.0"]}
    # What was never fetched cannot be served: the upstream is unavailable, not the content.
    missing = get(f"{proxy.url}/v2/library/multi/manifests/latest")
    assert missing.status_code == 404, missing.text
    layer = index.children[0].layer_digests[-1]
    response = get(f"{proxy.url}/v2/library/multi/blobs/{layer}")
    assert response.status_code == 503
    assert response.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_writes_are_unsupported(upstream: GoRegistry, start_proxy, test_images) -> None:
    image, _, _ = test_images
    proxy = start_proxy(upstream.url)
    name = IMAGE_REF.split(":")[0]
    attempts = [
        requests.post(f"{proxy.url}/v2/{name}/blobs/uploads/", timeout=REQUEST_TIMEOUT),
        requests.put(
            f"{proxy.url}/v2/{name}/manifests/2.0",
            data=image.manifest,
            headers={"Content-Type": image.media_type},
            timeout=REQUEST_TIMEOUT,
        ),
        requests.delete(f"{proxy.url}/v2/{name}/manifests/{image.digest}", timeout=REQUEST_TIMEOUT),
        requests.delete(
            f"{proxy.url}/v2/{name}/blobs/{image.layer_digests[0]}", timeout=REQUEST_TIMEOUT
        ),
    ]
    for response in attempts:
        assert response.status_code == 405, (response.request.method, response.text)
        assert response.json()["errors"][0]["code"] == "UNSUPPORTED"
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_tags_come_from_the_upstream(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images
) -> None:
    _, _, layout = test_images
    skopeo.copy(f"oci:{layout}:image", f"docker://{upstream.netloc}/library/app:2.0")
    proxy = start_proxy(upstream.url)
    listed = get(f"{proxy.url}/v2/library/app/tags/list")
    assert listed.json() == {"name": "library/app", "tags": ["1.0", "2.0"]}
    page = get(f"{proxy.url}/v2/library/app/tags/list?n=1")
    assert page.json()["tags"] == ["1.0"]
    assert page.headers["Link"] == '</v2/library/app/tags/list?last=1.0&n=1>; rel="next"'


def test_one_download_into_storage_per_blob_per_process(
    upstream: GoRegistry, start_proxy, test_images, tmp_path: Path
) -> None:
    """Parallel requests for a blob on a miss: one stores it while the others stream it from
    the upstream (as Go's proxy does); every body is right and nothing is left half-stored."""
    image, _, _ = test_images
    proxy = start_proxy(
        upstream.url, env={"REGISTRY_HTTP_WORKERS": "1", "REGISTRY_HTTP_THREADS": "8"}
    )
    layer = image.layer_digests[-1]  # the 2 MiB one
    url = f"{proxy.url}/v2/library/app/blobs/{layer}"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        bodies = list(pool.map(lambda _: get(url).content, range(6)))
    assert all(images.sha256(body) == layer for body in bodies)
    root = tmp_path / "proxy-data"
    assert images.sha256(blob_path(root, layer).read_bytes()) == layer
    assert not list(root.glob("docker/registry/v2/repositories/library/app/_uploads/*"))
    assert "Traceback" not in proxy.log


def test_a_stalled_client_holds_up_no_one_else(
    upstream: GoRegistry, start_proxy, tmp_path: Path
) -> None:
    """The client of the download that stores a blob stops reading: another request for the
    blob is served from the upstream meanwhile, not made to wait for the stalled one."""
    data = bytes(range(256)) * (128 * 1024)  # 32 MiB: more than the sockets' buffers hold
    digest = images.sha256(data)
    start = requests.post(f"{upstream.url}/v2/library/big/blobs/uploads/", timeout=30)
    done = requests.put(
        urljoin(upstream.url, start.headers["Location"]),
        params={"digest": digest},
        data=data,
        timeout=60,
    )
    assert done.status_code == 201, done.text
    proxy = start_proxy(
        upstream.url, env={"REGISTRY_HTTP_WORKERS": "1", "REGISTRY_HTTP_THREADS": "8"}
    )
    url = f"{proxy.url}/v2/library/big/blobs/{digest}"
    with requests.get(url, stream=True, timeout=30) as stalled:
        assert stalled.raw.read(1024) == data[:1024]
        other = requests.get(url, timeout=20)
        assert other.status_code == 200
        assert images.sha256(other.content) == digest
    root = tmp_path / "proxy-data"
    uploads = root / "docker/registry/v2/repositories/library/big/_uploads"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and uploads.exists() and list(uploads.iterdir()):
        time.sleep(0.1)
    assert not uploads.exists() or not list(uploads.iterdir())
    assert get(url).content == data  # stored by this download, or fetched again


def test_content_that_does_not_match_its_digest_is_not_stored(
    upstream: GoRegistry, start_proxy, test_images, tmp_path: Path
) -> None:
    image, _, _ = test_images
    layer = image.layer_digests[0]
    stored = blob_path(upstream.root, layer)
    stored.write_bytes(bytes(len(stored.read_bytes())))  # same size, other bytes
    proxy = start_proxy(upstream.url)
    # The connection is dropped before the last byte: the client never holds the wrong blob.
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        get(f"{proxy.url}/v2/library/app/blobs/{layer}")
    root = tmp_path / "proxy-data"
    assert not blob_path(root, layer).exists()
    assert not list(root.glob("docker/registry/v2/repositories/library/app/_layers/sha256/*"))
    assert not list(root.glob("docker/registry/v2/repositories/library/app/_uploads/*"))


def test_ttl_expiry_removes_what_was_fetched(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    image, _, _ = test_images
    proxy = start_proxy(upstream.url, "  ttl: 2s\n")
    pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "first")
    root = tmp_path / "proxy-data"
    layers = [blob_path(root, digest) for digest in image.all_blobs()]
    revision = (
        root
        / "docker/registry/v2/repositories/library/app/_manifests/revisions/sha256"
        / image.digest.removeprefix("sha256:")
        / "link"
    )
    assert all(path.exists() for path in layers) and revision.exists()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not any(path.exists() for path in layers) and not revision.exists():
            break
        time.sleep(0.25)
    assert not any(path.exists() for path in layers), "blobs not expired"
    assert not revision.exists(), "manifest not expired"
    # The job writes the state once it has removed everything due.
    while time.monotonic() < deadline and _state(root) != {}:
        time.sleep(0.1)
    assert _state(root) == {}
    # Expired content is fetched again.
    tags, _ = pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "again")
    assert tags == {"pulled": image.digest}
    assert all(path.exists() for path in layers)


def test_a_go_written_schedule_is_honoured(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    """A data volume coming from the Go registry keeps its schedule: the entry it wrote,
    already due, removes the blob; the entry not yet due stays, in Go's format."""
    image, _, _ = test_images
    proxy = start_proxy(upstream.url, "  ttl: 1h\n")
    pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "first")
    proxy.stop()
    root = tmp_path / "proxy-data"
    due, later = image.layer_digests[0], image.layer_digests[1]
    state = {
        f"library/app@{due}": {
            "Key": f"library/app@{due}",
            "ExpiryData": "2020-01-02T03:04:05.123456789+01:00",
            "EntryType": 0,
        },
        f"library/app@{later}": {
            "Key": f"library/app@{later}",
            "ExpiryData": "2999-01-02T03:04:05.5Z",
            "EntryType": 0,
        },
    }
    (root / "scheduler-state.json").write_text(json.dumps(state))
    for record in root.glob("docker/registry/v2/_maintenance/proxy/scheduled/*"):
        record.unlink()
    start_proxy(upstream.url, "  ttl: 2s\n")
    expected = {f"library/app@{later}": state[f"library/app@{later}"]}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _state(root) != expected:
        time.sleep(0.25)
    assert _state(root) == expected
    assert not blob_path(root, due).exists()
    assert blob_path(root, later).exists()


def _state(root: Path) -> dict:
    return json.loads((root / "scheduler-state.json").read_text())


def test_a_download_broken_off_stores_nothing(start_proxy, tmp_path: Path) -> None:
    """An upstream that drops the connection mid-blob (a small server: no registry does this
    on purpose); the client's connection is dropped too, and nothing is kept."""
    data = bytes(range(256)) * 8192  # 2 MiB
    digest = images.sha256(data)
    broken = threading.Event()
    broken.set()
    with serving(breaking_off(data, broken)) as upstream_url:
        proxy = start_proxy(upstream_url)
        url = f"{proxy.url}/v2/some/repo/blobs/{digest}"
        with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
            get(url)
        root = tmp_path / "proxy-data"
        deadline = time.monotonic() + 10
        uploads = root / "docker/registry/v2/repositories/some/repo/_uploads"
        while time.monotonic() < deadline and uploads.exists() and list(uploads.iterdir()):
            time.sleep(0.1)
        assert not blob_path(root, digest).exists()
        assert not uploads.exists() or not list(uploads.iterdir())
        ranged = get(url, Range="bytes=0-9")  # waits for whole downloads, which all break
        assert ranged.status_code == 503
        assert ranged.json()["errors"][0]["code"] == "UNAVAILABLE"
        broken.clear()
        assert get(url).content == data
        assert blob_path(root, digest).read_bytes() == data


def test_an_empty_blob_pulls_through(upstream: GoRegistry, start_proxy, tmp_path: Path) -> None:
    """A zero-byte blob (an artifact's empty config or file) is served and stored like any
    other, not broken off as a short download."""
    digest = images.sha256(b"")
    start = requests.post(f"{upstream.url}/v2/library/app/blobs/uploads/", timeout=30)
    done = requests.put(
        urljoin(upstream.url, start.headers["Location"]),
        params={"digest": digest},
        data=b"",
        timeout=30,
    )
    assert done.status_code == 201, done.text
    proxy = start_proxy(upstream.url)
    url = f"{proxy.url}/v2/library/app/blobs/{digest}"
    response = get(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["Docker-Content-Digest"] == digest
    assert blob_path(tmp_path / "proxy-data", digest).read_bytes() == b""
    assert get(url).status_code == 200
    assert logged(upstream, f"/v2/library/app/blobs/{digest}", 1) == 1


def test_a_blob_is_fetched_without_content_coding(start_proxy, tmp_path: Path) -> None:
    """An upstream behind a web server that gzips what clients accept (nginx with ``gzip_types
    *``): the proxy asks for the blob's own bytes, as Go's client gets them, and stores it."""
    data = bytes(range(256)) * 4096  # 1 MiB, compresses well
    digest = images.sha256(data)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, gzipped = data, "gzip" in self.headers.get("Accept-Encoding", "")
            self.send_response(200)
            if gzipped:
                body = gzip.compress(data)
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Docker-Content-Digest", digest)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as upstream_url:
        proxy = start_proxy(upstream_url)
        response = get(f"{proxy.url}/v2/some/repo/blobs/{digest}")
        assert response.status_code == 200
        assert response.content == data
        assert blob_path(tmp_path / "proxy-data", digest).read_bytes() == data


def test_an_upstream_answering_with_no_manifest_stores_nothing(start_proxy, tmp_path: Path) -> None:
    """A ``remoteurl`` that is a web site answering every path with a page (or a portal in
    between): Go's client refuses what is no manifest; so does the proxy, storing and tagging
    nothing, instead of keeping the page as a manifest that every pull then fails on."""
    page = b"<html><body>Welcome</body></html>"

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()

        def do_GET(self) -> None:
            self.do_HEAD()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as upstream_url:
        proxy = start_proxy(upstream_url)
        for reference in ("latest", images.sha256(page)):
            response = get(f"{proxy.url}/v2/some/repo/manifests/{reference}")
            assert response.status_code == 503, response.text
            assert response.json()["errors"][0]["code"] == "UNAVAILABLE"
    repository = tmp_path / "proxy-data/docker/registry/v2/repositories/some/repo"
    assert not list(repository.glob("_manifests/*/*/*"))


def test_blob_fetched_for_one_repository_is_linked_into_another(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    image, _, layout = test_images
    skopeo.copy(f"oci:{layout}:image", f"docker://{upstream.netloc}/library/copy:1.0")
    proxy = start_proxy(upstream.url)
    pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "first")
    blob_gets = upstream.requests_seen("GET", BLOB_GET)
    tags, _ = pull(skopeo, proxy.netloc, "library/copy:1.0", tmp_path / "second")
    assert tags == {"pulled": image.digest}
    assert upstream.requests_seen("GET", BLOB_GET) == blob_gets


def test_head_and_range_on_a_miss(upstream: GoRegistry, start_proxy, test_images) -> None:
    image, _, _ = test_images
    proxy = start_proxy(upstream.url)
    layer = image.layer_digests[1]
    url = f"{proxy.url}/v2/library/app/blobs/{layer}"
    head = requests.head(url, timeout=REQUEST_TIMEOUT)
    assert head.status_code == 200
    assert int(head.headers["Content-Length"]) == len(image.blobs[layer])
    assert head.headers["Docker-Content-Digest"] == layer
    part = get(url, Range="bytes=10-19")
    assert part.status_code == 206
    assert part.content == image.blobs[layer][10:20]
    manifest = requests.head(
        f"{proxy.url}/v2/library/app/manifests/1.0",
        headers={"Accept": image.media_type},
        timeout=REQUEST_TIMEOUT,
    )
    assert manifest.headers["Docker-Content-Digest"] == image.digest


def test_head_on_a_miss_posts_a_pull_event_as_go(
    upstream: GoRegistry, start_proxy, test_images
) -> None:
    """Go's proxy answers a ``HEAD`` on a blob it has not stored through the same
    ``ServeBlob`` as a ``GET``, and posts a ``pull`` for it (its descriptor from the
    upstream): so do we, for every blob request that is answered, stored or not."""
    image, _, _ = test_images
    receiver = Receiver().start()
    try:
        proxy = start_proxy(
            upstream.url,
            f"notifications:\n  endpoints:\n    - name: hook\n      url: {receiver.url}\n",
        )
        layer = image.layer_digests[1]
        url = f"{proxy.url}/v2/library/app/blobs/{layer}"
        assert requests.head(url, timeout=REQUEST_TIMEOUT).status_code == 200
        assert get(url).status_code == 200
        assert requests.head(url, timeout=REQUEST_TIMEOUT).status_code == 200
        received = receiver.wait_for(lambda events: len(events) >= 3)
        assert summary(received) == [("pull", "library/app", layer)] * 3
        for event in received:
            assert event["target"]["size"] == len(image.blobs[layer])
            assert event["target"]["mediaType"] == "application/octet-stream"
        # Two worker processes post in parallel: the order may differ.
        assert sorted(event["request"]["method"] for event in received) == ["GET", "HEAD", "HEAD"]
    finally:
        receiver.stop()


def test_a_pull_broken_off_posts_no_event(start_proxy) -> None:
    """Go posts a blob's ``pull`` once ``ServeBlob`` has copied it to the client: a download
    from the upstream that broke off posts none; the next, whole one posts one."""
    data = bytes(range(256)) * 8192  # 2 MiB
    digest = images.sha256(data)
    broken = threading.Event()
    broken.set()
    receiver = Receiver().start()
    try:
        with serving(breaking_off(data, broken)) as upstream_url:
            proxy = start_proxy(
                upstream_url,
                f"notifications:\n  endpoints:\n    - name: hook\n      url: {receiver.url}\n",
                env={"REGISTRY_HTTP_WORKERS": "1"},  # one queue: events arrive in order
            )
            url = f"{proxy.url}/v2/some/repo/blobs/{digest}"
            with pytest.raises(
                (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)
            ):
                get(url)
            broken.clear()
            assert get(url).content == data
            assert requests.head(url, timeout=REQUEST_TIMEOUT).status_code == 200
            received = receiver.wait_for(lambda events: len(events) >= 2)
            assert summary(received) == [("pull", "some/repo", digest)] * 2
            assert [event["request"]["method"] for event in received] == ["GET", "HEAD"]
            assert received[0]["target"]["size"] == len(data)
    finally:
        receiver.stop()


def test_a_range_on_a_miss_needs_no_second_upstream_answer(start_proxy) -> None:
    """Once a ``Range`` request on a miss has stored the blob, it is served from storage: an
    upstream that then refuses (here every ``HEAD`` is rate-limited) does not fail it."""
    data = bytes(range(256)) * 1024
    digest = images.sha256(data)

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.send_response(429)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Docker-Content-Digest", digest)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as upstream_url:
        proxy = start_proxy(upstream_url)
        part = get(f"{proxy.url}/v2/some/repo/blobs/{digest}", Range="bytes=10-19")
        assert part.status_code == 206, part.text
        assert part.content == data[10:20]


def test_our_own_registry_as_the_upstream(
    start_registry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    _, index, layout = test_images
    upstream = start_registry()
    netloc = upstream.url.removeprefix("http://")
    skopeo.copy(f"oci:{layout}:index", f"docker://{netloc}/{INDEX_REF}", "--all")
    proxy = start_proxy(upstream.url)
    tags, blobs = pull(skopeo, proxy.netloc, INDEX_REF, tmp_path / "pulled")
    assert tags == {"pulled": index.digest}
    assert blobs.keys() == index.all_manifests().keys() | index.all_blobs().keys()
    assert "Traceback" not in upstream.log


def test_the_go_registry_takes_over_our_schedule(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, test_images, tmp_path: Path
) -> None:
    """The data volume moves to the Go registry in proxy mode: it reads the schedule we wrote
    and removes the blobs when they are due."""
    image, _, _ = test_images
    proxy = start_proxy(upstream.url, "  ttl: 8s\n")
    pull(skopeo, proxy.netloc, IMAGE_REF, tmp_path / "first")
    root = tmp_path / "proxy-data"
    keys = {f"library/app@{digest}" for digest in [*image.all_blobs(), image.digest]}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and set(_state_or_empty(root)) != keys:
        time.sleep(0.1)
    assert set(_state(root)) == keys
    proxy.stop()
    go_proxy = GoRegistry(
        tmp_path / "go-proxy",
        f"proxy:\n  remoteurl: {upstream.url}\n",
        root=root,
    )
    try:
        layers = [blob_path(root, digest) for digest in image.all_blobs()]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(path.exists() for path in layers):
            time.sleep(0.25)
        assert not any(path.exists() for path in layers), go_proxy.log
    finally:
        go_proxy.stop()


def _state_or_empty(root: Path) -> dict:
    try:
        return _state(root)
    except (FileNotFoundError, ValueError):
        return {}


def test_an_old_client_gets_the_amd64_image_of_a_docker_list(
    upstream: GoRegistry, start_proxy, skopeo: Skopeo, tmp_path: Path
) -> None:
    """A client that does not accept lists gets the list's linux/amd64 image (as from the Go
    registry): the proxy fetches that image too, not only the list the tag points at."""
    docker_list = images.multi_arch_index(seed=74, docker=True)
    layout = tmp_path / "docker-list"
    images.write_dir_layout(layout, docker_list)
    skopeo.copy(f"dir:{layout}", f"docker://{upstream.netloc}/library/old:1", "--all")
    proxy = start_proxy(upstream.url)
    amd64 = docker_list.children[0]
    response = get(f"{proxy.url}/v2/library/old/manifests/1", Accept=amd64.media_type)
    assert response.status_code == 200, response.text
    assert response.content == amd64.manifest
    assert response.headers["Docker-Content-Digest"] == amd64.digest
    # No Accept at all is a schema 1 client: refused as v3 refuses it, not "unknown".
    schema1 = get(f"{proxy.url}/v2/library/old/manifests/1")
    assert schema1.status_code == 400
    assert schema1.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    listed = get(f"{proxy.url}/v2/library/old/manifests/1", Accept=docker_list.media_type)
    assert listed.content == docker_list.manifest


def proxy_app(upstream: GoRegistry, driver: InMemoryDriver, extra: str = "") -> Flask:
    """Our registry in proxy mode in this process, on ``driver`` (one that fails on purpose)."""
    text = proxy_config(Path("/unused"), upstream.url, extra).replace(
        "  filesystem:\n    rootdirectory: /unused\n", "  inmemory: {}\n"
    )
    config = config_module.parse(text, {})
    return create_app(config, Registry(config, CheckedDriver(driver)))


class _NoWriterDriver(InMemoryDriver):
    """Storage that starts uploads but cannot open their data to append to."""

    def writer(self, path: str, append: bool = False) -> FileWriter:
        if append and path.endswith("/data") and "/_uploads/" in path:
            raise StorageDriverError("no space left")
        return super().writer(path, append)


def test_a_storage_failure_opening_the_download_releases_it(
    upstream: GoRegistry, test_images
) -> None:
    """The failed request ends its claim on the blob and leaves no upload behind, so the next
    request downloads it again instead of waiting for a download that never ends."""
    image, _, _ = test_images
    driver = _NoWriterDriver()
    app = proxy_app(upstream, driver)
    layer = Digest.parse(image.layer_digests[0])
    for _ in range(2):
        response = app.test_client().get(f"/v2/library/app/blobs/{layer}")
        assert response.status_code == 503, response.text
        assert app.extensions[views.EXTENSION].claim(layer) is None
        app.extensions[views.EXTENSION].release(layer)
    try:
        left = driver.list("/docker/registry/v2/repositories/library/app/_uploads")
    except PathNotFoundError:
        left = []
    assert left == []
    assert logged(upstream, f"/v2/library/app/blobs/{layer}", 2) == 2


def test_a_tag_page_on_another_host_gets_no_credentials(start_proxy) -> None:
    """An upstream (a small server asking for basic auth) whose tag list links its next page
    on another host: the proxy does not send the upstream's credentials there; it lists the
    local tags instead."""
    elsewhere: list[str | None] = []

    class Other(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            elsewhere.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", free_port()), Other)

    class Upstream(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not self.headers.get("Authorization"):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="upstream"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = json.dumps({"name": "some/repo", "tags": ["a"]}).encode()
            self.send_response(200)
            next_page = f"http://127.0.0.1:{other.server_port}/v2/some/repo/tags/list?last=a"
            self.send_header("Link", f'<{next_page}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    servers = [other, upstream]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        proxy = start_proxy(
            f"http://127.0.0.1:{upstream.server_port}", "  username: u\n  password: secret\n"
        )
        listed = get(f"{proxy.url}/v2/some/repo/tags/list")
        assert listed.status_code == 404
        assert listed.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        assert elsewhere == []
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


class _NoScheduleDriver(InMemoryDriver):
    """Storage that keeps content but cannot record the expiry schedule."""

    def put_content(self, path: str, content: bytes, *, durable: bool = True) -> None:
        if path.startswith(paths.PROXY_SCHEDULED):
            raise StorageDriverError("read-only schedule")
        super().put_content(path, content, durable=durable)


def test_content_that_cannot_be_scheduled_is_served_and_kept(
    upstream: GoRegistry, test_images
) -> None:
    image, _, _ = test_images
    app = proxy_app(upstream, _NoScheduleDriver(), "  ttl: 1h\n")
    layer = image.layer_digests[0]
    response = app.test_client().get(f"/v2/library/app/blobs/{layer}")
    assert response.status_code == 200
    assert response.data == image.blobs[layer]
    again = app.test_client().get(f"/v2/library/app/blobs/{layer}")
    assert again.data == image.blobs[layer]
    assert logged(upstream, f"/v2/library/app/blobs/{layer}", 1) == 1


def test_gos_proxy_metrics(upstream: GoRegistry, test_images) -> None:
    """``registry_proxy_*{type}`` as Go counts them: a miss pulls from the upstream, the next
    request for the same content is a hit; pushed bytes are what clients got."""
    image, _, _ = test_images
    app = proxy_app(upstream, InMemoryDriver())
    metrics.record(True)  # as an app whose debug server exposes metrics sets it
    client = app.test_client()
    name, tag = IMAGE_REF.split(":")
    layer = image.layer_digests[0]
    size = len(image.all_blobs()[layer])
    manifest_path = f"/v2/{name}/manifests/{tag}"
    headers = {"Accept": image.media_type}

    def delta(after: dict, before: dict, kind: str) -> dict[str, float]:
        names = ("requests", "hits", "misses", "pulled_bytes", "pushed_bytes")
        return {
            n: value(after, f"registry_proxy_{n}_total", type=kind)
            - value(before, f"registry_proxy_{n}_total", type=kind)
            for n in names
        }

    before = scrape()
    assert client.get(manifest_path, headers=headers).status_code == 200
    assert client.get(manifest_path, headers=headers).status_code == 200
    assert client.get(f"/v2/{name}/blobs/{layer}").data == image.all_blobs()[layer]
    assert client.get(f"/v2/{name}/blobs/{layer}").status_code == 200
    after = scrape()
    assert delta(after, before, "manifest") == {
        "requests": 2,
        "hits": 1,
        "misses": 1,
        "pulled_bytes": len(image.manifest),
        "pushed_bytes": 2 * len(image.manifest),
    }
    assert delta(after, before, "blob") == {
        "requests": 2,
        "hits": 1,
        "misses": 1,
        "pulled_bytes": size,
        "pushed_bytes": 2 * size,
    }
    metrics.record(False)
