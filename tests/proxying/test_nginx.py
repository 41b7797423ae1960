"""The registry behind a real nginx terminating TLS with contrib/nginx/registry.conf.

skopeo verifies nginx's self-signed certificate (it is the CA in skopeo's cert dir) and never
talks to the registry directly: every upload URL the registry hands out must lead back through
nginx, with nginx's scheme and host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.e2e.harness import Skopeo
from tests.tls import transfer

TIMEOUT = 30


def test_skopeo_copies_in_and_out_through_nginx(start_proxy, tmp_path: Path) -> None:
    proxy = start_proxy()
    certs = transfer.cert_dir(tmp_path / "certs", proxy.cert)
    skopeo = Skopeo(tmp_path / "skopeo")
    transfer.round_trip(
        skopeo,
        tmp_path / "work",
        f"{proxy.netloc()}/behind/nginx:v1",
        transfer.small_image(seed=31),
        f"--dest-cert-dir={certs}",
        src_flags=(f"--src-cert-dir={certs}",),
    )
    tags = skopeo.run("list-tags", f"--cert-dir={certs}", f"docker://{proxy.netloc()}/behind/nginx")
    assert b'"v1"' in tags.stdout
    assert "Traceback" not in proxy.registry.log
    # Streamed both ways: nginx warns when it spools a body to disk.
    assert "buffered to a temporary file" not in proxy.nginx.error_log


def test_location_points_at_nginx_scheme_and_host(start_proxy) -> None:
    proxy = start_proxy()
    for host in ("127.0.0.1", "localhost"):
        response = requests.post(
            f"{proxy.url(host)}/v2/behind/location/blobs/uploads/",
            verify=str(proxy.cert),
            timeout=TIMEOUT,
        )
        assert response.status_code == 202, response.text
        assert response.headers["Location"].startswith(
            f"https://{host}:{proxy.port}/v2/behind/location/blobs/uploads/"
        )
        assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"

        patched = requests.patch(
            response.headers["Location"],
            data=iter([b"chunk-1", b"chunk-2"]),  # chunked: streamed through unbuffered
            verify=str(proxy.cert),
            timeout=TIMEOUT,
        )
        assert patched.status_code == 202, patched.text
        assert patched.headers["Range"] == "0-13"
        assert patched.headers["Location"].startswith(f"https://{host}:{proxy.port}/v2/")


class FromAddress(HTTPAdapter):
    """Connections from a given local address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


def test_logs_show_the_client_address(start_proxy) -> None:
    """The client connects to nginx from 127.0.0.2; nginx reaches the registry from
    127.0.0.1. The request log and the access log name the client."""
    proxy = start_proxy()
    session = requests.Session()
    session.mount("https://", FromAddress("127.0.0.2"))
    response = session.get(
        f"{proxy.url()}/v2/behind/logs/tags/list",
        verify=str(proxy.cert),
        headers={"User-Agent": "client-address-probe"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 404
    proxy.registry.stop()

    lines = [line for line in proxy.registry.log.splitlines() if "/v2/behind/logs/" in line]
    request_lines = [line for line in lines if "http.request.remoteaddr" in line]
    assert request_lines, proxy.registry.log
    assert all("http.request.remoteaddr=127.0.0.2" in line for line in request_lines), lines
    access_lines = [line for line in lines if '"GET /v2/behind/logs/' in line]
    assert access_lines and all(re.match(r"127\.0\.0\.2 - ", line) for line in access_lines), lines


def test_an_early_error_reaches_the_client_whole(start_proxy) -> None:
    """An answer given before the body was read (an unknown upload) is the client's answer,
    not nginx's 502: the registry drops the unread body instead of cutting the connection."""
    proxy = start_proxy()
    body = bytes(8 << 20)
    url = f"{proxy.url()}/v2/behind/early/blobs/uploads/0b8f9d52-58a1-4f4a-8d6e-7a5e3c1e0d11"
    with requests.Session() as session:
        for _ in range(5):
            response = session.patch(url, data=body, verify=str(proxy.cert), timeout=TIMEOUT)
            assert response.status_code == 404, response.text
            assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
    assert "prematurely closed" not in proxy.nginx.error_log
