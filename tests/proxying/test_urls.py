"""Location URLs from the forwarding headers a proxy sets, as Go's URL builder reads them."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from distribution.api import urls

UPLOADS = "/v2/urls/probe/blobs/uploads/"


def location(client: FlaskClient, headers: dict[str, str], base: str = "http://localhost") -> str:
    response = client.post(UPLOADS, headers=headers, base_url=base)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.headers["Location"].split("/v2/", 1)[0]


@pytest.mark.parametrize(
    ("headers", "base", "expected"),
    [
        ({}, "http://localhost", "http://localhost"),
        ({}, "https://registry.local:5443", "https://registry.local:5443"),
        ({"X-Forwarded-Proto": "https"}, "http://r.example", "https://r.example"),
        ({"X-Forwarded-Proto": "https, http"}, "http://r.example", "https://r.example"),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "a.example:8443, b.example"},
            "http://internal:5000",
            "https://a.example:8443",
        ),
        (
            {"Forwarded": 'for=192.0.2.1;proto=https;host="f.example"'},
            "http://i",
            "https://f.example",
        ),
        ({"Forwarded": "proto=https", "X-Forwarded-Proto": "http"}, "http://i", "http://i"),
        ({"X-Forwarded-Port": "8443"}, "http://r.example", "http://r.example:8443"),
        ({"X-Forwarded-Port": "8443"}, "http://r.example:5000", "http://r.example:5000"),
        ({"X-Forwarded-Port": "nope"}, "http://r.example", "http://r.example"),
        ({"X-Forwarded-Host": "[2001:db8::1]:5000"}, "http://i", "http://[2001:db8::1]:5000"),
        ({"X-Forwarded-Host": "2001:db8::1"}, "http://i", "http://[2001:db8::1]"),
    ],
)
def test_location_base(
    client: FlaskClient, headers: dict[str, str], base: str, expected: str
) -> None:
    assert location(client, headers, base) == expected


@pytest.mark.parametrize(
    ("header", "params"),
    [
        ("", {}),
        ('For="[2001:db8::1]:80";Proto=https', {"for": "[2001:db8::1]:80", "proto": "https"}),
        ("proto=https;host=a, proto=http;host=b", {"proto": "https", "host": "a"}),
        ("garbage;=x;host=h", {"host": "h"}),
    ],
)
def test_parse_forwarded(header: str, params: dict[str, str]) -> None:
    assert urls.parse_forwarded(header) == params


@pytest.mark.parametrize(
    ("host", "split"),
    [
        ("example.com", ("example.com", "")),
        ("example.com:443", ("example.com", "443")),
        ("[::1]:5000", ("::1", "5000")),
        ("[::1]", ("::1", "")),
        ("::1", ("::1", "")),
    ],
)
def test_split_host_port(host: str, split: tuple[str, str]) -> None:
    assert urls.split_host_port(host) == split
