"""TLS in gunicorn: an intermediate chain, mutual TLS, the minimum version, bad files.

Every registry here is a real ``registry serve`` process; certificates come from
:mod:`tests.tls.pki`; skopeo trusts only the root CA, as a client of a private PKI would.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from distribution import config as config_module
from distribution import tlsconfig
from distribution.config import ConfigError
from tests.conftest import RegistryProcess, free_port
from tests.e2e.harness import Skopeo
from tests.process import START_TIMEOUT
from tests.tls import transfer
from tests.tls.pki import Authority

TIMEOUT = 30


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A root CA, an intermediate, the server's leaf (bundle with the intermediate), a client
    CA and a client certificate, all written under ``tmp_path/pki``."""
    directory = tmp_path / "pki"
    directory.mkdir()
    root = Authority.root("Test Root CA")
    intermediate = root.intermediate("Test Intermediate CA")
    server_cert, server_key = intermediate.issue("domain", directory)
    client_ca = Authority.root("Test Client CA")
    client_cert, client_key = client_ca.issue("client", directory, client=True)
    stranger_cert, stranger_key = Authority.root("Other CA").issue(
        "stranger", directory, client=True
    )
    return {
        "root": root.write_ca(directory / "root.crt"),
        "cert": server_cert,
        "key": server_key,
        "client_ca": client_ca.write_ca(directory / "client-ca.crt"),
        "client_cert": client_cert,
        "client_key": client_key,
        "stranger_cert": stranger_cert,
        "stranger_key": stranger_key,
    }


@pytest.fixture
def serve(tmp_path: Path):
    """``serve(env, verify, cert=None)``: a registry configured only by the deployment guide's
    variables, on ``0.0.0.0`` (``REGISTRY_HTTP_ADDR=0.0.0.0:443`` in the guide; a free port
    here), with a filesystem root in the test's directory."""
    started: list[RegistryProcess] = []

    def start(
        env: dict[str, str], verify: str, cert: tuple[Path, Path] | None = None
    ) -> RegistryProcess:
        port = free_port()
        workdir = tmp_path / f"registry-{len(started)}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        full_env.update(
            REGISTRY_HTTP_ADDR=f"0.0.0.0:{port}",
            REGISTRY_HTTP_WORKERS="2",
            REGISTRY_HTTP_THREADS="4",
            REGISTRY_HTTP_SECRET="tls-test",
            REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=str(workdir / "data"),
            **env,
        )
        registry = RegistryProcess(workdir, ["serve"], full_env, f"https://127.0.0.1:{port}")
        started.append(registry)
        wait_ready(registry, verify, cert)
        return registry

    yield start
    for registry in started:
        registry.stop()
        assert "Traceback" not in registry.log, registry.log


def wait_ready(registry: RegistryProcess, verify: str, cert: tuple[Path, Path] | None) -> None:
    """Wait until ``GET /v2/`` answers, presenting ``cert`` (mutual TLS refuses a bare client)."""
    if cert is None:
        registry.wait_ready(verify)
        return
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if registry.proc.poll() is not None:
            raise AssertionError(f"{registry} exited:\n{registry.log}")
        try:
            requests.get(
                f"{registry.url}/v2/", verify=verify, cert=tuple(map(str, cert)), timeout=1
            )
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{registry} not ready after {START_TIMEOUT}s:\n{registry.log}")


def tls_env(pki: dict[str, Path], **extra: str) -> dict[str, str]:
    return {
        "REGISTRY_HTTP_TLS_CERTIFICATE": str(pki["cert"]),
        "REGISTRY_HTTP_TLS_KEY": str(pki["key"]),
        **extra,
    }


def test_intermediate_chain_push_and_pull_trusting_only_the_root(
    serve, pki, tmp_path: Path
) -> None:
    registry = serve(tls_env(pki), verify=str(pki["root"]))
    # Verified against the root alone: the server sends the intermediate from its bundle.
    response = requests.get(f"{registry.url}/v2/", verify=str(pki["root"]), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"

    certs = transfer.cert_dir(tmp_path / "certs", pki["root"])
    skopeo = Skopeo(tmp_path / "skopeo")
    ref = f"{registry.url.removeprefix('https://')}/tls/chain:v1"
    transfer.round_trip(
        skopeo,
        tmp_path / "work",
        ref,
        transfer.small_image(seed=11),
        f"--dest-cert-dir={certs}",
        src_flags=(f"--src-cert-dir={certs}",),
    )


def test_mutual_tls_refuses_a_client_without_a_certificate(serve, pki, tmp_path: Path) -> None:
    client = (pki["client_cert"], pki["client_key"])
    env = tls_env(pki, REGISTRY_HTTP_TLS_CLIENTCAS_0=str(pki["client_ca"]))
    registry = serve(env, verify=str(pki["root"]), cert=client)
    url = f"{registry.url}/v2/"

    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=str(pki["root"]), timeout=TIMEOUT)
    stranger = (str(pki["stranger_cert"]), str(pki["stranger_key"]))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=str(pki["root"]), cert=stranger, timeout=TIMEOUT)
    response = requests.get(
        url, verify=str(pki["root"]), cert=(str(client[0]), str(client[1])), timeout=TIMEOUT
    )
    assert response.status_code == 200

    skopeo = Skopeo(tmp_path / "skopeo")
    ref = f"{registry.url.removeprefix('https://')}/tls/mutual:v1"
    bare = transfer.cert_dir(tmp_path / "bare-certs", pki["root"])
    refused = skopeo.run("inspect", f"--cert-dir={bare}", f"docker://{ref}", check=False)
    assert refused.returncode != 0
    certs = transfer.cert_dir(tmp_path / "certs", pki["root"], client)
    transfer.round_trip(
        skopeo,
        tmp_path / "work",
        ref,
        transfer.small_image(seed=21),
        f"--dest-cert-dir={certs}",
        src_flags=(f"--src-cert-dir={certs}",),
    )


def test_client_certificate_optional_when_asked(serve, pki) -> None:
    env = tls_env(
        pki,
        REGISTRY_HTTP_TLS_CLIENTCAS_0=str(pki["client_ca"]),
        REGISTRY_HTTP_TLS_CLIENTAUTH="verify-client-cert-if-given",
    )
    registry = serve(env, verify=str(pki["root"]))
    url = f"{registry.url}/v2/"
    assert requests.get(url, verify=str(pki["root"]), timeout=TIMEOUT).status_code == 200
    stranger = (str(pki["stranger_cert"]), str(pki["stranger_key"]))
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=str(pki["root"]), cert=stranger, timeout=TIMEOUT)


def test_minimum_tls_version(serve, pki) -> None:
    registry = serve(tls_env(pki, REGISTRY_HTTP_TLS_MINIMUMTLS="tls1.3"), verify=str(pki["root"]))
    port = int(registry.url.rsplit(":", 1)[1])

    def handshake(maximum: ssl.TLSVersion) -> str:
        context = ssl.create_default_context(cafile=str(pki["root"]))
        context.maximum_version = maximum
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            return conn.version() or ""

    assert handshake(ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError):
        handshake(ssl.TLSVersion.TLSv1_2)


def configured(pki: dict[str, Path], **tls: object) -> config_module.TLS:
    values = {"certificate": str(pki["cert"]), "key": str(pki["key"]), **tls}
    return config_module.TLS(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (
            lambda p, d: {"certificate": str(d / "missing.crt")},
            "http.tls.certificate",
            "cannot read",
        ),
        (lambda p, d: {"key": str(d / "missing.key")}, "http.tls.key", "cannot read"),
        (lambda p, d: {"certificate": str(p["key"])}, "http.tls.certificate", "no PEM certificate"),
        (lambda p, d: {"key": str(p["cert"])}, "http.tls.key", "no usable PEM private key"),
        (lambda p, d: {"key": str(p["client_key"])}, "http.tls.key", "does not match"),
        (lambda p, d: {"key": None}, "http.tls.key", "missing"),
        (lambda p, d: {"certificate": None}, "http.tls.certificate", "missing"),
        (
            lambda p, d: {"clientcas": (str(p["root"]), str(d / "nope.crt"))},
            "http.tls.clientcas[1]",
            "cannot read",
        ),
        (lambda p, d: {"clientcas": (str(p["key"]),)}, "http.tls.clientcas[0]", "no PEM"),
        (
            lambda p, d: {"clientauth": "require-any-client-cert", "clientcas": (str(p["root"]),)},
            "http.tls.clientauth",
            "not supported",
        ),
        (
            lambda p, d: {"ciphersuites": ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "RC4")},
            "http.tls.ciphersuites[1]",
            "unknown TLS cipher suite 'RC4'",
        ),
    ],
)
def test_bad_tls_files_name_their_key(pki, tmp_path: Path, change, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        tlsconfig.check(configured(pki, **change(pki, tmp_path)))
    assert raised.value.key == key
    assert words in raised.value.message


def test_good_files_pass_the_check(pki) -> None:
    tlsconfig.check(configured(pki, clientcas=(str(pki["client_ca"]),)))


def test_bad_certificate_stops_start_up_with_one_line(tmp_path: Path, pki) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_HTTP_ADDR=f"0.0.0.0:{free_port()}",
        REGISTRY_HTTP_TLS_CERTIFICATE=str(tmp_path / "absent.crt"),
        REGISTRY_HTTP_TLS_KEY=str(pki["key"]),
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=str(tmp_path / "data"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "distribution", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "configuration error" in line]
    assert errors == [
        f"registry: configuration error: http.tls.certificate: cannot read {tmp_path}/absent.crt:"
        " No such file or directory"
    ]
    assert "Traceback" not in result.stderr


def test_debug_server_speaks_plain_http_beside_a_tls_api(serve, pki) -> None:
    """As Go's debug server: plain HTTP for Prometheus and probes, no client certificate asked
    even under mutual TLS, while the API stays TLS only."""
    debug_port = free_port()
    client = (str(pki["client_cert"]), str(pki["client_key"]))
    env = tls_env(
        pki,
        REGISTRY_HTTP_DEBUG_ADDR=f"127.0.0.1:{debug_port}",
        REGISTRY_HTTP_DEBUG_PROMETHEUS_ENABLED="true",
        REGISTRY_HTTP_TLS_CLIENTCAS_0=str(pki["client_ca"]),
    )
    registry = serve(env, verify=str(pki["root"]), cert=(pki["client_cert"], pki["client_key"]))
    debug = f"http://127.0.0.1:{debug_port}"

    for _ in range(4):  # on both workers, over fresh connections
        health = requests.get(f"{debug}/debug/health", timeout=TIMEOUT)
        assert (health.status_code, health.json()) == (200, {})
    metrics = requests.get(f"{debug}/metrics", timeout=TIMEOUT)
    assert metrics.status_code == 200 and "registry_http_requests_total" in metrics.text
    with pytest.raises(requests.RequestException):  # no TLS handshake there
        requests.get(f"https://127.0.0.1:{debug_port}/debug/health", verify=False, timeout=2)

    api = requests.get(f"{registry.url}/v2/", verify=str(pki["root"]), cert=client, timeout=30)
    assert api.status_code == 200
    plain_api = registry.url.replace("https://", "http://")
    refused = requests.get(f"{plain_api}/v2/", timeout=5)  # Go's answer on a TLS port
    assert refused.status_code == 400 and "HTTPS server" in refused.text


def test_clientauth_without_clientcas_is_not_used_as_in_go(pki, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="distribution.tlsconfig"):
        tlsconfig.check(configured(pki, clientauth="verify-client-cert-if-given"))
    assert caplog.messages == [
        "http.tls.clientauth verify-client-cert-if-given is not used without http.tls.clientcas"
        " (as in Go)"
    ]


def test_tls_settings_without_a_certificate_are_not_used_as_in_go(caplog) -> None:
    """A deployment that left out the certificate served plain HTTP without a word."""
    tls = config_module.TLS(
        clientauth="verify-client-cert-if-given",
        ciphersuites=("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",),
    )
    with caplog.at_level(logging.WARNING, logger="distribution.tlsconfig"):
        tlsconfig.check(tls)
    assert caplog.messages == [
        "http.tls.clientauth, http.tls.ciphersuites are not used without http.tls.certificate"
        " or http.tls.letsencrypt.cachefile (as in Go): the registry serves plain HTTP"
    ]


def test_request_client_cert_lets_every_client_in_as_go(serve, pki) -> None:
    """Go's ``request-client-cert`` never checks the certificate: a stranger's, or none."""
    env = tls_env(
        pki,
        REGISTRY_HTTP_TLS_CLIENTCAS_0=str(pki["client_ca"]),
        REGISTRY_HTTP_TLS_CLIENTAUTH="request-client-cert",
    )
    registry = serve(env, verify=str(pki["root"]))
    url = f"{registry.url}/v2/"
    stranger = (str(pki["stranger_cert"]), str(pki["stranger_key"]))
    assert requests.get(url, verify=str(pki["root"]), cert=stranger, timeout=30).status_code == 200
    assert requests.get(url, verify=str(pki["root"]), timeout=TIMEOUT).status_code == 200


def _tls12_handshake(port: int, root: Path, cipher: str) -> str:
    context = ssl.create_default_context(cafile=str(root))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(cipher)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        return conn.cipher()[0]


def test_ciphersuites_with_gos_names_and_gos_default(serve, pki) -> None:
    """The test PKI's keys are ECDSA: ECDHE-ECDSA suites are the ones a handshake can use."""
    chosen = serve(
        tls_env(pki, REGISTRY_HTTP_TLS_CIPHERSUITES="[TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]"),
        verify=str(pki["root"]),
    )
    port = int(chosen.url.rsplit(":", 1)[1])
    aes256 = "ECDHE-ECDSA-AES256-GCM-SHA384"
    assert _tls12_handshake(port, pki["root"], aes256) == aes256
    with pytest.raises(ssl.SSLError):
        _tls12_handshake(port, pki["root"], "ECDHE-ECDSA-AES128-GCM-SHA256")

    default = serve(tls_env(pki), verify=str(pki["root"]))
    port = int(default.url.rsplit(":", 1)[1])
    aes128 = "ECDHE-ECDSA-AES128-GCM-SHA256"
    assert _tls12_handshake(port, pki["root"], aes128) == aes128
    with pytest.raises(ssl.SSLError):  # CBC is not in Go's default list
        _tls12_handshake(port, pki["root"], "ECDHE-ECDSA-AES128-SHA")


def test_ciphersuites_of_go_2_8_are_known(serve, pki) -> None:
    """Go 2.8 takes the CBC-SHA256 and RC4 suites too (3.x dropped them): a 2.8 config that
    names them starts, serves the ones OpenSSL has, and says which it leaves out (RC4)."""
    registry = serve(
        tls_env(
            pki,
            REGISTRY_HTTP_TLS_CIPHERSUITES="[TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,"
            " TLS_ECDHE_ECDSA_WITH_RC4_128_SHA]",
        ),
        verify=str(pki["root"]),
    )
    port = int(registry.url.rsplit(":", 1)[1])
    cbc = "ECDHE-ECDSA-AES128-SHA256"
    assert _tls12_handshake(port, pki["root"], cbc) == cbc
    assert (
        "http.tls.ciphersuites[1]: TLS_ECDHE_ECDSA_WITH_RC4_128_SHA is not available in this"
        " OpenSSL and is left out" in registry.log
    )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", ["tls1.0", "tls1.1"])
def test_minimumtls_below_1_2_is_served_as_in_go(serve, pki, version: str) -> None:
    """OpenSSL 3 refuses TLS 1.0 and 1.1 at its default security level (their handshake signs
    with SHA-1); Go 2.8 serves them when asked: the handshake failed with internal_error."""
    cbc = "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"
    env = tls_env(
        pki, REGISTRY_HTTP_TLS_MINIMUMTLS=version, REGISTRY_HTTP_TLS_CIPHERSUITES=f"[{cbc}]"
    )
    registry = serve(env, verify=str(pki["root"]))
    port = int(registry.url.rsplit(":", 1)[1])
    oldest = {"tls1.0": ssl.TLSVersion.TLSv1, "tls1.1": ssl.TLSVersion.TLSv1_1}[version]

    context = ssl.create_default_context(cafile=str(pki["root"]))
    context.set_ciphers("ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = oldest
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        assert conn.version() == {"tls1.0": "TLSv1", "tls1.1": "TLSv1.1"}[version]
