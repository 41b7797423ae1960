"""``http.trustedproxies`` (our extension): which peers may set the forwarding headers.

Unset, every peer may, as in the Go registry. Listed, the headers of any other peer are dropped
before the app, the request logs and the access log see them.
"""

from __future__ import annotations

import pytest
import requests

from distribution import proxyheaders, server
from distribution.config import ConfigError, parse
from tests.conftest import free_port

TIMEOUT = 30
FORGED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "registry.example.com:8443",
    "X-Forwarded-For": "203.0.113.9, 10.1.2.3",
    "User-Agent": "forwarding-probe",
}
BASE = "version: 0.1\nstorage: inmemory\n"


def upload_location_and_log(registry) -> tuple[str, list[str]]:
    response = requests.post(
        f"{registry.url}/v2/trusted/probe/blobs/uploads/", headers=FORGED, timeout=TIMEOUT
    )
    assert response.status_code == 202, response.text
    registry.stop()
    lines = [line for line in registry.log.splitlines() if "forwarding-probe" in line]
    return response.headers["Location"], lines


def test_forwarded_headers_believed_by_default(start_registry) -> None:
    location, lines = upload_location_and_log(start_registry())
    assert location.startswith("https://registry.example.com:8443/v2/trusted/probe/blobs/uploads/")
    assert any("http.request.remoteaddr=203.0.113.9 " in line for line in lines), lines
    assert any(line.startswith("203.0.113.9 - ") for line in lines), lines


def test_forwarded_headers_of_an_untrusted_peer_are_ignored(start_registry) -> None:
    registry = start_registry(env={"REGISTRY_HTTP_TRUSTEDPROXIES": "[10.0.0.0/8]"})
    location, lines = upload_location_and_log(registry)
    assert location.startswith(f"{registry.url}/v2/trusted/probe/blobs/uploads/")
    assert any('http.request.remoteaddr="127.0.0.1:' in line for line in lines), lines
    assert any(line.startswith("127.0.0.1 - ") for line in lines), lines
    assert not any("203.0.113.9" in line for line in lines), lines


def test_listed_peer_is_believed(start_registry) -> None:
    registry = start_registry(env={"REGISTRY_HTTP_TRUSTEDPROXIES": "[10.0.0.0/8, 127.0.0.1]"})
    location, _ = upload_location_and_log(registry)
    assert location.startswith("https://registry.example.com:8443/")


def test_config_field() -> None:
    assert parse(BASE, {}).http.trustedproxies is None
    assert parse(BASE + "http: {trustedproxies: []}", {}).http.trustedproxies == ()
    text = BASE + "http:\n  trustedproxies: [10.0.0.0/8, 192.168.1.7, 'fd00::/8']\n"
    assert parse(text, {}).http.trustedproxies == ("10.0.0.0/8", "192.168.1.7", "fd00::/8")
    env = {"REGISTRY_HTTP_TRUSTEDPROXIES": "[172.16.0.0/12]"}
    assert parse(BASE, env).http.trustedproxies == ("172.16.0.0/12",)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("[10.0.0.0/8, proxy.local]", "http.trustedproxies[1]: expected an IP address or CIDR"),
        ("[10.0.0.0/33]", "http.trustedproxies[0]: expected an IP address or CIDR"),
        ("10.0.0.0/8", "http.trustedproxies: expected a list"),
    ],
)
def test_bad_entries_stop_start_up(entries: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        server.check(parse(BASE + f"http: {{trustedproxies: {entries}}}", {}))
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("peer", "trusted", "believed"),
    [
        ("192.0.2.1", None, True),
        ("192.0.2.1", [], False),
        ("10.9.8.7", ["10.0.0.0/8"], True),
        ("10.9.8.7", ["192.168.0.0/16", "10.9.8.7"], True),
        ("11.0.0.1", ["10.0.0.0/8"], False),
        ("::ffff:10.0.0.1", ["10.0.0.0/8"], True),
        ("fd00::1", ["fd00::/8"], True),
        ("", ["10.0.0.0/8"], True),  # a unix socket: a local proxy
    ],
)
def test_strip_untrusted(peer: str, trusted: list[str] | None, believed: bool) -> None:
    environ = {
        "REMOTE_ADDR": peer,
        "HTTP_X_FORWARDED_FOR": "203.0.113.9",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_X_FORWARDED_HOST": "h",
        "HTTP_X_REAL_IP": "203.0.113.9",
        "HTTP_FORWARDED": "for=203.0.113.9",
        "HTTP_HOST": "kept",
    }
    proxyheaders.strip_untrusted(environ, proxyheaders.networks(trusted))
    assert environ["HTTP_HOST"] == "kept"
    assert ("HTTP_X_FORWARDED_FOR" in environ) is believed
    assert sum(key in environ for key in proxyheaders.FORWARDED_KEYS) == (5 if believed else 0)


@pytest.mark.parametrize(
    ("headers", "client"),
    [
        ({"HTTP_X_FORWARDED_FOR": "203.0.113.9, 10.0.0.1"}, "203.0.113.9"),
        ({"HTTP_X_FORWARDED_FOR": "unknown", "HTTP_X_REAL_IP": "198.51.100.2"}, "198.51.100.2"),
        ({"HTTP_X_FORWARDED_FOR": "not-an-ip"}, None),
        ({}, None),
    ],
)
def test_forwarded_client(headers: dict[str, str], client: str | None) -> None:
    assert proxyheaders.forwarded_client(headers) == client


def test_gunicorn_allow_list() -> None:
    assert proxyheaders.gunicorn_allow_list(None) == "*"
    assert proxyheaders.gunicorn_allow_list([]) == ""
    assert proxyheaders.gunicorn_allow_list(["10.1.2.3/8", "::1"]) == (
        "10.0.0.0/8,::ffff:10.0.0.0/104,::1/128"
    )


def test_listed_ipv4_peer_is_believed_on_a_dual_stack_listener(start_registry) -> None:
    """On ``:port`` (IPv4 and IPv6, as Go) an IPv4 peer arrives as ``::ffff:127.0.0.1``: it is
    still the listed 127.0.0.1, for gunicorn's scheme as for our headers and logs."""
    port = free_port()
    registry = start_registry(
        env={"REGISTRY_HTTP_ADDR": f":{port}", "REGISTRY_HTTP_TRUSTEDPROXIES": "[127.0.0.1]"},
        url=f"http://127.0.0.1:{port}",
    )
    location, lines = upload_location_and_log(registry)
    assert location.startswith("https://registry.example.com:8443/")
    assert any("http.request.remoteaddr=203.0.113.9 " in line for line in lines), lines


def test_clients_cannot_set_wsgi_variables(start_registry) -> None:
    """gunicorn takes ``SCRIPT_NAME`` from a header of a peer it trusts; the registry trusts
    peers for forwarding headers only, never for its routing."""
    registry = start_registry()
    response = requests.get(
        f"{registry.url}/v2/", headers={"SCRIPT_NAME": "/elsewhere"}, timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert response.json() == {}
