"""``http.tls.certificate``/``key`` replaced under a running ``registry serve``: new
connections get the new certificate in every worker; a replacement that does not load keeps
the old one in service."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import time
from pathlib import Path

import pytest
from cryptography import x509

from distribution.tls import reload
from distribution.tls.reload import CHECK_INTERVAL, SETTLE, FileCertificates
from tests.conftest import RegistryProcess
from tests.tls.pki import Authority
from tests.tls.test_tls import TIMEOUT

#: Longest wait for a reload (the issue's bound is a minute; it takes a few seconds).
RELOAD_TIMEOUT = 60
#: Connections per look, so that each of the two workers takes some.
CONNECTIONS = 12


def served_serials(registry: RegistryProcess, root: Path) -> set[int]:
    port = int(registry.url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(root))
    serials = set()
    for _ in range(CONNECTIONS):
        with (
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            der = conn.getpeercert(binary_form=True)
        serials.add(x509.load_der_x509_certificate(der).serial_number)
    return serials


def serial_of(cert: Path) -> int:
    return x509.load_pem_x509_certificates(cert.read_bytes())[0].serial_number


def replace(source: Path, target: Path) -> None:
    """Replace ``target`` as certbot and Kubernetes do: a new file renamed over it."""
    shutil.copyfile(source, target.with_suffix(".new"))
    os.replace(target.with_suffix(".new"), target)


def wait_for(registry: RegistryProcess, root: Path, expected: set[int]) -> float:
    """Seconds until connections get ``expected`` only, and keep getting it through a whole
    look at the files: a look of a dozen connections may all land on one worker, while the
    other has not looked at the files since they settled."""
    started = time.monotonic()
    steady_since = None
    while time.monotonic() - started < RELOAD_TIMEOUT:
        now = time.monotonic()
        if served_serials(registry, root) != expected:
            steady_since = None
        elif steady_since is None:
            steady_since = now
        elif now - steady_since >= CHECK_INTERVAL + SETTLE:
            return steady_since - started
        time.sleep(0.3)
    raise AssertionError(f"still not serving {expected} only:\n{registry.log}")


def keeps_serving(registry: RegistryProcess, root: Path, expected: set[int]) -> None:
    """Connections over a few looks at the files all get ``expected``."""
    end = time.monotonic() + 3 * CHECK_INTERVAL + SETTLE
    while time.monotonic() < end:
        assert served_serials(registry, root) == expected
        time.sleep(0.3)


def test_replaced_files_are_served_and_a_broken_replacement_keeps_the_old(
    serve, tmp_path: Path
) -> None:
    authority = Authority.root("Reload Root CA")
    root = authority.write_ca(tmp_path / "root.crt")
    live = tmp_path / "live"
    cert, key = authority.issue("first", live)
    registry = serve(
        {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(key)},
        verify=str(root),
    )
    assert served_serials(registry, root) == {serial_of(cert)}

    second_cert, second_key = authority.issue("second", tmp_path / "second")
    replace(second_cert, cert)
    replace(second_key, key)
    waited = wait_for(registry, root, {serial_of(second_cert)})
    assert waited < RELOAD_TIMEOUT
    # A worker that booted after the replacement (a loaded machine is slow to start the
    # second) loaded the new files at its start; the one that served the first certificate
    # reloaded them, and says so.
    assert "serving the replaced certificate" in registry.log

    # A key that does not match, then a half-written certificate: the second stays in service.
    _, stranger_key = authority.issue("stranger", tmp_path / "stranger")
    replace(stranger_key, key)
    keeps_serving(registry, root, {serial_of(second_cert)})
    mismatch = [line for line in registry.log.splitlines() if "do not load" in line]
    assert mismatch and all("does not match the certificate" in line for line in mismatch)
    assert len(mismatch) <= 2  # one line per worker

    third_cert, third_key = authority.issue("third", tmp_path / "third")
    replace(third_key, key)
    cert.write_bytes(third_cert.read_bytes()[:200])
    keeps_serving(registry, root, {serial_of(second_cert)})

    cert.write_bytes(third_cert.read_bytes())  # completed: now it loads
    wait_for(registry, root, {serial_of(third_cert)})


def test_files_replaced_while_the_first_context_is_built_are_loaded_at_the_next_look(
    tmp_path: Path,
) -> None:
    """A worker starting while certbot replaces the files must not keep the old ones."""
    cert = tmp_path / "tls.crt"
    cert.write_text("first")
    now = [0.0]
    built: list[str] = []

    def build() -> ssl.SSLContext:
        built.append(cert.read_text())
        if len(built) == 1:  # replaced right after this build read it
            cert.with_suffix(".new").write_text("second, longer")
            os.replace(cert.with_suffix(".new"), cert)
        return ssl.create_default_context()

    certificates = FileCertificates(build, [str(cert)], clock=lambda: now[0])
    now[0] += CHECK_INTERVAL
    certificates.context(None)  # the change is seen; it settles by the next look
    now[0] += CHECK_INTERVAL
    certificates.context(None)
    assert built == ["first", "second, longer"]


def test_a_worker_starting_during_a_replacement_waits_for_it(tmp_path: Path) -> None:
    """The certificate replaced, the key not yet: the first build fails, the next loads."""
    authority = Authority.root("Boot Root CA")
    cert, key = authority.issue("first", tmp_path / "live")
    second_cert, second_key = authority.issue("second", tmp_path / "second")
    replace(second_cert, cert)
    attempts: list[int] = []

    def build() -> ssl.SSLContext:
        attempts.append(1)
        if len(attempts) == 2:
            replace(second_key, key)  # the replacement completes
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    certificates = FileCertificates(build, [str(cert), str(key)])
    assert len(attempts) == 2  # a mismatch, then loaded once the key came
    assert certificates.context(None) is not None


def test_files_that_never_load_fail_the_boot_after_the_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reload, "FIRST_LOAD_WAIT", 0.3)
    cert = tmp_path / "tls.crt"
    cert.write_text("not a certificate")

    def build() -> ssl.SSLContext:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert)
        raise AssertionError("loaded")

    started = time.monotonic()
    with pytest.raises(ssl.SSLError):
        FileCertificates(build, [str(cert)])
    assert 0.3 <= time.monotonic() - started < 5
