"""Blob pushes and reads with plain HTTP, aimed at any replica."""

from __future__ import annotations

import hashlib
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

from tests.replicas.cluster import REQUEST_TIMEOUT


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def aim(location: str, base: str) -> str:
    """An upload ``Location`` (absolute or relative, from any replica) sent to ``base``."""
    parts = urlsplit(urljoin(base, location))
    target = urlsplit(base)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))


def start_upload(base: str, name: str) -> str:
    response = requests.post(f"{base}/v2/{name}/blobs/uploads/", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 202, response.text
    return response.headers["Location"]


def patch(base: str, location: str, data: bytes, start: int) -> requests.Response:
    return requests.patch(
        aim(location, base),
        data=data,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{start}-{start + len(data) - 1}",
        },
        timeout=REQUEST_TIMEOUT,
    )


def finish(base: str, location: str, digest: str) -> requests.Response:
    url = aim(location, base)
    separator = "&" if "?" in url else "?"
    return requests.put(f"{url}{separator}digest={digest}", timeout=REQUEST_TIMEOUT)


def push_blob(base: str, name: str, data: bytes) -> str:
    """POST, then PUT with the whole body: what every registry accepts."""
    location = start_upload(base, name)
    digest = digest_of(data)
    url = aim(location, base)
    separator = "&" if "?" in url else "?"
    response = requests.put(
        f"{url}{separator}digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 201, response.text
    return digest


def head_blob(base: str, name: str, digest: str) -> requests.Response:
    return requests.head(f"{base}/v2/{name}/blobs/{digest}", timeout=REQUEST_TIMEOUT)


def get_blob(base: str, name: str, digest: str) -> requests.Response:
    return requests.get(f"{base}/v2/{name}/blobs/{digest}", timeout=REQUEST_TIMEOUT)


def delete_blob(base: str, name: str, digest: str) -> requests.Response:
    return requests.delete(f"{base}/v2/{name}/blobs/{digest}", timeout=REQUEST_TIMEOUT)
