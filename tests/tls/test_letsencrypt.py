"""``http.tls.letsencrypt`` against Pebble: every certificate here is ordered by a real
``registry serve`` and validated by Pebble connecting to it (TLS-ALPN-01 on the registry's
port), never by a validation Pebble skips.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from distribution import config as config_module
from distribution import tlsconfig
from distribution.config import ConfigError
from distribution.container import healthcheck
from distribution.tls import letsencrypt
from tests.conftest import RegistryProcess, free_port
from tests.e2e.harness import Skopeo
from tests.process import START_TIMEOUT
from tests.tls import transfer
from tests.tls.pebble import Pebble
from tests.tls.pki import Authority
from tests.tls.test_clienthello import openssl_hello as client_hello

TIMEOUT = 60
#: A test name: challtestsrv resolves it to 127.0.0.1 for Pebble; clients here connect to
#: 127.0.0.1 and ask for it by SNI.
NAME = "registry.example.test"

Start = Callable[..., RegistryProcess]


@pytest.fixture
def pebbles(tmp_path: Path) -> Iterator[Callable[..., Pebble]]:
    """``pebbles(tls_port, **options)``: Pebble validating on ``tls_port``."""
    started: list[Pebble] = []

    def start(tls_port: int, **options: object) -> Pebble:
        pebble = Pebble(tmp_path / f"pebble-{len(started)}", tls_port, **options)  # type: ignore[arg-type]
        started.append(pebble)
        return pebble

    yield start
    for pebble in started:
        pebble.stop()


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[Start]:
    """``registries(port, directory_url, ca, cache=..., hosts=(NAME,))``: ``registry serve``
    with Let's Encrypt on ``port``, trusting ``ca`` for the ACME server's HTTPS; ready once it
    answers plain HTTP on its TLS port (which asks for no certificate)."""
    started: list[RegistryProcess] = []

    def start(
        port: int,
        directory_url: str,
        ca: Path,
        cache: Path | None = None,
        hosts: tuple[str, ...] = (NAME,),
        workers: int = 2,
    ) -> RegistryProcess:
        workdir = tmp_path / f"registry-{len(started)}"
        workdir.mkdir()
        config = f"""
version: 0.1
log: {{level: info, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {tmp_path / "data"}}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http:
  addr: 0.0.0.0:{port}
  secret: letsencrypt-test
  tls:
    letsencrypt:
      cachefile: {cache or tmp_path / "acme-cache"}
      email: registry-admin@example.test
      hosts: [{", ".join(hosts)}]
      directoryurl: {directory_url}
"""
        (workdir / "config.yml").write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        env.update(
            REGISTRY_HTTP_WORKERS=str(workers),
            REGISTRY_HTTP_THREADS="4",
            REQUESTS_CA_BUNDLE=str(ca),
        )
        registry = RegistryProcess(
            workdir, ["serve", str(workdir / "config.yml")], env, f"https://localhost:{port}"
        )
        started.append(registry)
        wait_listening(registry, port)
        return registry

    yield start
    for registry in started:
        registry.stop()
        assert "Traceback" not in registry.log, registry.log


def wait_listening(registry: RegistryProcess, port: int) -> None:
    """Wait until plain HTTP to the TLS port gets the Go registry's 400 answer."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if registry.proc.poll() is not None:
            raise AssertionError(f"{registry} exited:\n{registry.log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if conn.recv(100).startswith(b"HTTP/1.0 400"):
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{registry} not listening after {START_TIMEOUT}s:\n{registry.log}")


def handshake(
    port: int, name: str | None, root: Path | None = None, alpn: list[str] | None = None
) -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1 asking for ``name``, verified against ``root`` if given."""
    if root is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(root))
    if alpn:
        context.set_alpn_protocols(alpn)
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    try:
        return context.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


def serial(port: int, name: str, root: Path) -> int:
    """The serial number of the certificate served for ``name``, verified against ``root``."""
    with handshake(port, name, root) as conn:
        der = conn.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def any_ca(tmp_path: Path) -> Path:
    """A CA file for a registry that never reaches its ACME server."""
    return Authority.root("Unused CA").write_ca(tmp_path / "unused-ca.pem")


def split_handshake(port: int, name: str, root: Path, pause: float) -> int:
    """A verified handshake whose ClientHello arrives in two pieces ``pause`` seconds apart;
    the serial of the certificate served."""
    context = ssl.create_default_context(cafile=str(root))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        first_flight = True
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                data = outgoing.read()
                if first_flight:
                    raw.sendall(data[:40])
                    time.sleep(pause)
                    data, first_flight = data[40:], False
                raw.sendall(data)
                received = raw.recv(65536)
                if not received:
                    raise ConnectionError("closed during the handshake") from None
                incoming.write(received)
        raw.sendall(outgoing.read())
        der = tls.getpeercert(binary_form=True)
    from cryptography import x509

    return x509.load_der_x509_certificate(der).serial_number


def lines(log: str, words: str) -> list[str]:
    return [line for line in log.splitlines() if words in line]


def cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its children (the workers)."""
    total = 0.0
    for proc in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()]


def test_obtains_a_certificate_skopeo_pushes_and_pulls_and_a_restart_orders_nothing(
    pebbles, registries, tmp_path: Path
) -> None:
    port = free_port()
    pebble = pebbles(port)
    cache = tmp_path / "cache"
    registry = registries(port, pebble.directory_url, pebble.listener_ca, cache, ("localhost",))
    root = pebble.root(tmp_path / "pebble-root.pem")

    # The first connection waits while the certificate is ordered, then gets it.
    first = serial(port, "localhost", root)
    assert pebble.orders() == 1
    assert len(lines(registry.log, "obtained a certificate for localhost")) == 1
    assert re.search(r"authz \S+ set VALID by completed challenge", pebble.log), pebble.log
    assert sorted(p.name for p in cache.iterdir()) == [
        "acme+lock",
        "acme_account+key",
        "localhost",
    ]

    certs = transfer.cert_dir(tmp_path / "certs", root)
    skopeo = Skopeo(tmp_path / "skopeo")
    transfer.round_trip(
        skopeo,
        tmp_path / "work",
        f"localhost:{port}/letsencrypt/image:v1",
        transfer.small_image(seed=20),
        f"--dest-cert-dir={certs}",
        src_flags=(f"--src-cert-dir={certs}",),
    )
    response = requests.get(f"https://localhost:{port}/v2/", verify=str(root), timeout=TIMEOUT)
    assert response.status_code == 200

    registry.stop()
    again = registries(port, pebble.directory_url, pebble.listener_ca, cache, ("localhost",))
    assert serial(port, "localhost", root) == first
    # A ClientHello that comes in two pieces is read once whole; the wait costs no CPU.
    cpu = cpu_seconds(again.proc.pid)
    assert split_handshake(port, "localhost", root, pause=2) == first
    assert cpu_seconds(again.proc.pid) - cpu < 1.0
    assert pebble.orders() == 1
    assert lines(again.log, "obtained a certificate") == []


def test_renews_while_a_pull_loop_runs_without_a_failed_request(
    pebbles, registries, tmp_path: Path
) -> None:
    port = free_port()
    # 30-second certificates: renewed with a third of their life left, about every 20 s.
    pebble = pebbles(port, validity=30)
    registry = registries(port, pebble.directory_url, pebble.listener_ca, hosts=("localhost",))
    root = pebble.root(tmp_path / "pebble-root.pem")
    certs = transfer.cert_dir(tmp_path / "certs", root)
    Skopeo(tmp_path / "skopeo").run(
        "copy",
        f"--dest-cert-dir={certs}",
        f"oci:{_layout(tmp_path)}:t",
        f"docker://localhost:{port}/letsencrypt/renew:v1",
    )
    url = f"https://localhost:{port}/v2/letsencrypt/renew/manifests/v1"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
    serials, failures, pulls = [], [], 0
    deadline, renewed = time.monotonic() + 60, 0.0
    while time.monotonic() < deadline and not (renewed and time.monotonic() > renewed + 3):
        try:
            response = requests.get(url, headers=accept, verify=str(root), timeout=TIMEOUT)
            if response.status_code != 200:
                failures.append(response.status_code)
        except requests.RequestException as err:
            failures.append(err)
        pulls += 1
        current = serial(port, "localhost", root)
        if not serials or serials[-1] != current:
            serials.append(current)
            renewed = time.monotonic() if len(serials) > 1 else 0.0
        time.sleep(0.05)
    assert failures == [], registry.log
    assert len(serials) >= 2, f"no renewal seen in {pulls} pulls:\n{registry.log}"
    assert pebble.orders() == len(lines(registry.log, "obtained a certificate for localhost"))


def _layout(tmp_path: Path) -> Path:
    from tests.e2e import images

    layout = tmp_path / "layout"
    images.write_oci_layout(layout, {"t": transfer.small_image(seed=21)})
    return layout


def test_two_workers_and_two_replicas_on_one_folder_order_once(
    pebbles, registries, tmp_path: Path
) -> None:
    port, other_port = free_port(), free_port()
    pebble = pebbles(port)  # validates on the first replica's port only
    cache = tmp_path / "shared-cache"
    first = registries(port, pebble.directory_url, pebble.listener_ca, cache)
    second = registries(other_port, pebble.directory_url, pebble.listener_ca, cache)
    root = pebble.root(tmp_path / "pebble-root.pem")

    seen: list[int] = []
    errors: list[BaseException] = []

    def connect(to: int) -> None:
        try:
            seen.append(serial(to, NAME, root))
        except BaseException as err:
            errors.append(err)

    # The second replica is asked first, so it orders, and Pebble's validation reaches the
    # first, which answers with the challenge certificate it finds in the shared folder.
    threads = [threading.Thread(target=connect, args=(other_port,))]
    threads[0].start()
    time.sleep(0.3)
    for to in [port, other_port] * 4:
        threads.append(threading.Thread(target=connect, args=(to,)))
        threads[-1].start()
    for thread in threads:
        thread.join(TIMEOUT)
    assert errors == []
    assert len(seen) == 9 and len(set(seen)) == 1
    assert pebble.orders() == 1
    assert len(lines(second.log, "obtained a certificate")) == 1
    assert lines(first.log, "obtained a certificate") == []
    for to in (port, other_port):  # every worker of both serves it
        assert {serial(to, NAME, root) for _ in range(8)} == set(seen)


def test_a_host_outside_hosts_is_refused_with_one_line(registries, tmp_path: Path) -> None:
    port = free_port()
    unused = f"https://127.0.0.1:{free_port()}/dir"
    registry = registries(port, unused, any_ca(tmp_path), workers=1)
    for _ in range(3):
        with pytest.raises(ssl.SSLError, match=r"(?i)unrecognized.name"):
            handshake(port, "intruder.example.test")
    # A ClientHello in two pieces is refused once whole; one cut short and closed, dropped.
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        hello = client_hello("intruder.example.test")
        raw.sendall(hello[:40])
        time.sleep(1)
        raw.sendall(hello[40:])
        assert raw.recv(100) == bytes((21, 3, 3, 0, 2, 2, 112))  # alert: unrecognized_name
    cpu = cpu_seconds(registry.proc.pid)
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw:
        raw.sendall(client_hello(NAME)[:40])
        time.sleep(2)
        raw.shutdown(socket.SHUT_WR)
        with contextlib.suppress(ConnectionResetError):  # a reset (the piece unread) is fine
            assert raw.recv(100) == b""
    assert cpu_seconds(registry.proc.pid) - cpu < 1.0
    # A validation connection for a name with no challenge in progress is refused too.
    with pytest.raises(ssl.SSLError, match=r"(?i)no.application.protocol"):
        handshake(port, NAME, alpn=["acme-tls/1"])
    # So is a client that names no host while there is no certificate yet.
    with pytest.raises(ssl.SSLError, match=r"(?i)unrecognized.name"):
        handshake(port, None)
    time.sleep(1)
    refused = lines(registry.log, "refused a TLS connection")
    assert refused == [refused[0]] and "intruder.example.test" in refused[0]
    assert "not in http.tls.letsencrypt.hosts" in refused[0]
    assert lines(registry.log, "certificate for") == []


def test_an_unreachable_directory_is_one_line_and_a_backoff(registries, tmp_path: Path) -> None:
    port, closed = free_port(), free_port()
    registry = registries(port, f"https://127.0.0.1:{closed}/dir", any_ca(tmp_path))
    started = time.monotonic()
    with pytest.raises(ssl.SSLError, match=r"(?i)internal.error"):
        handshake(port, NAME)
    assert time.monotonic() - started < 20  # refused once the order failed, not at a timeout
    cpu = cpu_seconds(registry.proc.pid)
    time.sleep(4)
    with pytest.raises(ssl.SSLError, match=r"(?i)internal.error"):
        handshake(port, NAME)
    assert cpu_seconds(registry.proc.pid) - cpu < 1.0  # nothing spins while it waits
    failed = lines(registry.log, "cannot obtain a certificate")
    assert len(failed) == 1, registry.log
    assert f"cannot reach the ACME server at https://127.0.0.1:{closed}/dir" in failed[0]
    assert "Connection refused" in failed[0] and "next try in 60s" in failed[0]
    # Plain HTTP to the TLS port still gets a clear answer.
    wait_listening(registry, port)


def test_a_connection_waiting_for_its_certificate_costs_no_cpu(registries, tmp_path: Path) -> None:
    # An ACME server that takes connections and never answers: the order stays in progress.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        directory = f"https://127.0.0.1:{silent.getsockname()[1]}/dir"
        port = free_port()
        registry = registries(port, directory, any_ca(tmp_path), workers=1)
        refused: list[BaseException] = []

        def connect() -> None:
            try:
                handshake(port, NAME)
            except (OSError, ssl.SSLError) as err:
                refused.append(err)

        client = threading.Thread(target=connect)
        client.start()
        silent.settimeout(TIMEOUT)
        ordering, _ = silent.accept()  # the registry orders: the connection waits
        with ordering:
            cpu = cpu_seconds(registry.proc.pid)
            time.sleep(4)
            assert cpu_seconds(registry.proc.pid) - cpu < 1.0  # nothing spins while it waits
            assert client.is_alive() and not refused
    # The ACME server gone, the order fails and the waiting connection is refused.
    client.join(TIMEOUT)
    assert len(refused) == 1 and re.search(r"(?i)internal.error", str(refused[0])), refused
    assert len(lines(registry.log, "cannot obtain a certificate")) == 1, registry.log


def test_a_ca_that_refuses_the_order_is_one_line(pebbles, registries, tmp_path: Path) -> None:
    port = free_port()
    pebble = pebbles(port, blocked=(NAME,))
    registry = registries(port, pebble.directory_url, pebble.listener_ca)
    with pytest.raises(ssl.SSLError, match=r"(?i)internal.error"):
        handshake(port, NAME)
    time.sleep(3)
    with pytest.raises(ssl.SSLError, match=r"(?i)internal.error"):
        handshake(port, NAME)
    failed = lines(registry.log, "cannot obtain a certificate")
    assert len(failed) == 1, registry.log
    assert f"for {NAME}: the CA refused: rejectedIdentifier:" in failed[0]
    assert pebble.orders() == 0


def serve_with_cachefile(tmp_path: Path, cachefile: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_HTTP_ADDR=f"127.0.0.1:{free_port()}",
        REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=str(tmp_path / "data"),
        REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE=str(cachefile),
        REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS=f"[{NAME}]",
    )
    return subprocess.run(
        [sys.executable, "-m", "distribution", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_an_unwritable_cache_folder_stops_start_up(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = serve_with_cachefile(tmp_path, blocker / "acme")
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "registry: configuration error: http.tls.letsencrypt.cachefile: cannot use "
        f"{blocker}/acme as the certificate folder: Not a directory"
    )
    assert "Traceback" not in result.stderr


def test_a_cache_file_of_go_2_8_stops_start_up_saying_why(tmp_path: Path) -> None:
    """Go 2.8 (ACME v1, which Let's Encrypt retired) kept its state in one JSON file."""
    old = tmp_path / "letsencrypt.json"
    old.write_text('{"Account": {}}')
    result = serve_with_cachefile(tmp_path, old)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        f"registry: configuration error: http.tls.letsencrypt.cachefile: {old} is a file: "
        "Go 2.8 kept its ACME v1 state in one"
    )
    assert old.read_text() == '{"Account": {}}' and "Traceback" not in result.stderr


def letsencrypt_tls(tmp_path: Path, **values: object) -> config_module.TLS:
    settings = {"cachefile": str(tmp_path / "cache"), "hosts": (NAME,), **values}
    return config_module.TLS(letsencrypt=config_module.LetsEncrypt(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "key", "words"),
    [
        ({"hosts": ()}, "http.tls.letsencrypt.hosts", "required"),
        ({"hosts": (NAME, "*.example.test")}, "http.tls.letsencrypt.hosts[1]", "wildcard"),
        ({"hosts": ("192.0.2.1",)}, "http.tls.letsencrypt.hosts[0]", "IP address"),
        ({"hosts": ("bad_name.test",)}, "http.tls.letsencrypt.hosts[0]", "not a host name"),
        ({"directoryurl": "acme.example.test/dir"}, "http.tls.letsencrypt.directoryurl", "URL"),
    ],
)
def test_bad_settings_name_their_key(tmp_path: Path, values, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as raised:
        tlsconfig.check(letsencrypt_tls(tmp_path, **values))
    assert raised.value.key == key
    assert words in raised.value.message


def test_certificate_and_letsencrypt_together_is_an_error_as_in_go(tmp_path: Path) -> None:
    tls = dataclasses.replace(letsencrypt_tls(tmp_path), certificate="/c.pem", key="/k.pem")
    with pytest.raises(ConfigError) as raised:
        tlsconfig.check(tls)
    assert raised.value.key == "http.tls.letsencrypt"
    assert "http.tls.certificate" in raised.value.message


def test_hosts_are_lower_case_and_idna_encoded(tmp_path: Path) -> None:
    tls = letsencrypt_tls(tmp_path, hosts=("Registry.Example.TEST.", "bücher.example.test"))
    tlsconfig.check(tls)
    assert letsencrypt.hosts(tls) == (NAME, "xn--bcher-kva.example.test")
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700


def test_the_guides_variables_set_every_key(tmp_path: Path) -> None:
    config = config_module.parse(
        "version: 0.1\nstorage: {inmemory: {}}\n",
        {
            "REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE": "/etc/registry-acme",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_EMAIL": "admin@example.test",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS": "[registry.example.test, other.example.test]",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_DIRECTORYURL": "https://acme.example.test/dir",
        },
    )
    assert config.http.tls.letsencrypt == config_module.LetsEncrypt(
        cachefile="/etc/registry-acme",
        email="admin@example.test",
        hosts=("registry.example.test", "other.example.test"),
        directoryurl="https://acme.example.test/dir",
    )


def test_a_name_that_does_not_lead_to_the_registry_is_one_line(
    pebbles, registries, tmp_path: Path
) -> None:
    port, elsewhere = free_port(), free_port()
    pebble = pebbles(elsewhere)  # validates where nothing listens
    registry = registries(port, pebble.directory_url, pebble.listener_ca)
    with pytest.raises(ssl.SSLError, match=r"(?i)internal.error"):
        handshake(port, NAME)
    failed = lines(registry.log, "cannot obtain a certificate")
    assert len(failed) == 1, registry.log
    assert f"the CA could not validate {NAME}: unauthorized: Failed to connect" in failed[0]
    assert pebble.orders() == 1


def test_settings_without_cachefile_serve_plain_http_and_say_so(start_registry) -> None:
    """Go turns Let's Encrypt on by ``cachefile`` alone and ignores the rest without it; a
    deployment that left it out served plain HTTP here without a word."""
    registry = start_registry(
        env={
            "REGISTRY_HTTP_TLS_LETSENCRYPT_EMAIL": "admin@example.test",
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS": f"[{NAME}]",
        }
    )
    assert requests.get(f"{registry.url}/v2/", timeout=TIMEOUT).status_code == 200
    registry.stop()
    warned = lines(registry.log, "are not used without")
    assert len(warned) == 1, registry.log
    assert (
        'msg="http.tls.letsencrypt.email, http.tls.letsencrypt.hosts are not used without'
        " http.tls.certificate or http.tls.letsencrypt.cachefile (as in Go): the registry serves"
        ' plain HTTP"' in warned[0]
    )


def test_the_images_health_check_asks_for_a_name_of_hosts(
    pebbles, registries, tmp_path: Path
) -> None:
    """The image's HEALTHCHECK spoke plain HTTP to a Let's Encrypt registry (TLS only with
    ``certificate``) and got the 400 of plain HTTP on a TLS port: unhealthy for ever."""
    port = free_port()
    pebble = pebbles(port)
    registries(port, pebble.directory_url, pebble.listener_ca)
    serial(port, NAME, pebble.root(tmp_path / "pebble-root.pem"))  # the certificate is in

    config = config_module.load(str(tmp_path / "registry-0" / "config.yml"), environ={})
    assert healthcheck.probe(config) == 200
