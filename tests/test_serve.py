"""``registry serve`` as a real process: gunicorn, the config file and env, TLS, SIGTERM."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import bcrypt
import pytest
import requests

from distribution import __version__, cli, server
from tests.api.test_uploads_process import workers
from tests.conftest import free_port, make_certificate
from tests.notifications.receiver import Receiver
from tests.process import resident_kib
from tests.test_balance import _shares

API_HEADER = "Docker-Distribution-API-Version"


def test_embedded_default_answers_the_version_check(start_registry) -> None:
    registry = start_registry()

    response = requests.get(f"{registry.url}/v2/")
    assert response.status_code == 200
    assert response.json() == {}
    assert response.headers[API_HEADER] == "registry/2.0"
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    root = requests.get(f"{registry.url}/")
    assert (root.status_code, root.content) == (200, b"")
    assert requests.head(f"{registry.url}/v2/").status_code == 200


def test_unknown_routes_and_methods_answer_oci_errors(start_registry) -> None:
    registry = start_registry()

    missing = requests.get(f"{registry.url}/v2/no/such/endpoint")
    assert missing.status_code == 404
    assert missing.headers[API_HEADER] == "registry/2.0"
    assert missing.json()["errors"][0]["code"] == "UNSUPPORTED"

    wrong_method = requests.post(f"{registry.url}/v2/")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["errors"][0]["code"] == "UNSUPPORTED"
    assert "GET" in wrong_method.headers["Allow"]


def test_http_addr_from_env_overrides_the_file(start_registry) -> None:
    file_port = free_port()
    config = f"version: 0.1\nstorage: {{inmemory: {{}}}}\nhttp: {{addr: '127.0.0.1:{file_port}'}}\n"

    registry = start_registry(config)

    assert not registry.url.endswith(f":{file_port}")
    assert requests.get(f"{registry.url}/v2/").status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{file_port}/v2/", timeout=2)


def test_http_host_without_a_scheme_is_not_used_as_in_go(start_registry) -> None:
    """Go uses ``http.host`` only when it has a scheme and a host: ``registry.example.com``
    left Locations to the request there, and made them ``registry.example.com/v2/...`` here,
    which clients resolved against the request's path."""
    registry = start_registry(env={"REGISTRY_HTTP_HOST": "registry.example.com"})

    response = requests.post(f"{registry.url}/v2/app/blobs/uploads/", timeout=10)

    assert response.status_code == 202
    assert response.headers["Location"].startswith(f"{registry.url}/v2/app/blobs/uploads/")
    registry.stop()
    assert (
        "http.host 'registry.example.com' is not used: it needs a scheme and a host, such as"
        " https://registry.example.com:5000 (Go ignores it too)" in registry.log
    )


def test_http_host_that_holds_the_prefix_is_not_given_it_twice(start_registry) -> None:
    """Go builds URLs from ``http.host`` alone, leaving ``http.prefix`` out, so a Go registry
    behind ``https://example.com/reg/`` names that path in its host; it got ``/reg/reg/v2/``
    here. A host without the prefix's path still gets it, which Go's URLs lacked."""
    config = "version: 0.1\nstorage: inmemory\nhttp: {prefix: /reg/, host: %s}\n"
    for host in ("https://example.com/reg/", "https://example.com/reg", "https://example.com"):
        registry = start_registry(config % host)
        response = requests.post(f"{registry.url}/reg/v2/app/blobs/uploads/", timeout=10)
        assert response.status_code == 202
        location = response.headers["Location"]
        assert location.startswith("https://example.com/reg/v2/app/blobs/uploads/"), host
        registry.stop()


def test_access_log_follows_config(start_registry) -> None:
    logged = start_registry()
    quiet = start_registry(
        "version: 0.1\nstorage: {inmemory: {}}\nlog: {accesslog: {disabled: true}}\n"
    )

    requests.get(f"{logged.url}/v2/")
    requests.get(f"{quiet.url}/v2/")
    logged.stop()
    quiet.stop()

    assert '"GET /v2/ HTTP/1.1" 200' in logged.stdout
    assert "GET /v2/" not in quiet.stdout


def test_access_log_names_only_authenticated_users_and_escapes_control_characters(
    start_registry, tmp_path: Path
) -> None:
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_bytes(b"alice:" + bcrypt.hashpw(b"secret", bcrypt.gensalt(4)) + b"\n")
    registry = start_registry(
        f"version: 0.1\nstorage: {{inmemory: {{}}}}\n"
        f"auth: {{htpasswd: {{realm: test, path: {htpasswd}}}}}\n"
    )
    forged = '1.2.3.4 - admin [01/Jan/2026:00:00:00 +0000] "DELETE /v2/x HTTP/1.1" 202'
    refused = requests.get(
        f"{registry.url}/v2/",
        auth=(f"mallory\n{forged}", "wrong"),
        headers={"User-Agent": "agent\\red"},
    )
    allowed = requests.get(f"{registry.url}/v2/", auth=("alice", "secret"))
    registry.stop()

    assert (refused.status_code, allowed.status_code) == (401, 200)
    lines = [line for line in registry.stdout.splitlines() if '"GET /v2/ HTTP/1.1"' in line]
    # Each thread logs after it answers: the two lines may come in either order.
    refused_line = next(line for line in lines if line.endswith('"agent\\x5Cred"'))
    assert " - - [" in refused_line and '" 401 ' in refused_line
    assert "mallory" not in registry.stdout and forged not in registry.stdout
    assert '" 200 ' in next(line for line in lines if " - alice [" in line)


def test_sigterm_lets_a_slow_request_finish(start_registry) -> None:
    registry = start_registry()
    host, port = registry.url.removeprefix("http://").split(":")

    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n")
        time.sleep(0.5)
        registry.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert registry.proc.poll() is None, "the server exited with a request in flight"
        conn.sendall(b"Connection: close\r\n\r\n")
        response = b""
        while chunk := conn.recv(65536):
            response += chunk

    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(b"{}\n") or response.endswith(b"{}")
    assert registry.proc.wait(timeout=30) == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{registry.url}/v2/", timeout=2)


def test_negative_draintimeout_stops_at_once_as_in_go(start_registry) -> None:
    """Go's Shutdown under an expired deadline returns at once; gunicorn refused the negative
    graceful timeout with its own line ("Value must be positive: -5"), naming no key."""
    registry = start_registry("version: 0.1\nstorage: inmemory\nhttp: {draintimeout: -5s}\n")
    assert requests.get(f"{registry.url}/v2/", timeout=10).status_code == 200
    started = time.monotonic()
    registry.proc.send_signal(signal.SIGTERM)
    assert registry.proc.wait(timeout=30) == 0
    assert time.monotonic() - started < 5


def test_tls_from_config(start_registry, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    env = {"REGISTRY_HTTP_TLS_CERTIFICATE": str(cert), "REGISTRY_HTTP_TLS_KEY": str(key)}

    registry = start_registry(env=env, scheme="https", verify=str(cert))

    response = requests.get(f"{registry.url}/v2/", verify=str(cert))
    assert response.status_code == 200
    assert response.headers[API_HEADER] == "registry/2.0"


def test_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "distribution", "--version"], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, f"registry {__version__}\n")


def test_embedded_default_falls_back_to_a_local_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("REGISTRY_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "writable_dir", lambda path: False)

    config = cli.prepare(None)

    assert config.storage.driver == "filesystem"
    assert config.storage.parameters["rootdirectory"] == str(tmp_path / "registry-data")


def test_writable_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert cli.writable_dir(str(tmp_path / "new" / "dir"))
    assert not cli.writable_dir(str(blocker / "dir"))


def test_server_messages_follow_the_log_format(start_registry) -> None:
    registry = start_registry(
        "version: 0.1\nstorage: {inmemory: {}}\n"
        "log: {formatter: json, fields: {service: registry}}\nhttp: {secret: s}\n"
    )
    registry.stop()

    lines = [json.loads(line) for line in registry.stderr.splitlines()]
    assert any(line["msg"].startswith("Listening at: ") for line in lines)
    assert all(line["service"] == "registry" and "time" in line for line in lines)


@pytest.mark.parametrize("host", ["", "0.0.0.0", "[::]"])
def test_an_unspecified_host_listens_on_ipv4_and_ipv6_as_go(start_registry, host: str) -> None:
    port = free_port()
    registry = start_registry(
        env={"REGISTRY_HTTP_ADDR": f"{host}:{port}"}, url=f"http://127.0.0.1:{port}"
    )

    assert requests.get(f"http://127.0.0.1:{port}/v2/", timeout=10).status_code == 200
    assert requests.get(f"http://[::1]:{port}/v2/", timeout=10).status_code == 200
    registry.stop()
    # An IPv4 client is logged as Go logs it, not as the IPv4-mapped address the socket gives.
    assert 'http.request.remoteaddr="127.0.0.1:' in registry.log
    assert 'http.request.remoteaddr="[::1]:' in registry.log
    assert "::ffff:" not in registry.log
    assert "\n127.0.0.1 - " in "\n" + registry.stdout


@pytest.mark.parametrize(
    ("ipv6", "addr", "binds"),
    [
        ("dual", ":5000", ["[::]:5000"]),
        ("dual", "0.0.0.0:5000", ["[::]:5000"]),
        ("v6only", ":5000", ["0.0.0.0:5000", "[::]:5000"]),
        (None, ":5000", ["0.0.0.0:5000"]),
        (None, "[::]:5000", ["0.0.0.0:5000"]),
        ("dual", "127.0.0.1:5000", ["127.0.0.1:5000"]),
        ("dual", "[::1]:5000", ["[::1]:5000"]),
        ("dual", "localhost:5000", ["localhost:5000"]),
    ],
)
def test_bind_addresses(monkeypatch, ipv6: str | None, addr: str, binds: list[str]) -> None:
    monkeypatch.setattr(server, "_ipv6_listening", lambda: ipv6)
    assert server.bind_addresses("tcp", addr) == binds


def test_unix_socket_bind() -> None:
    assert server.bind_addresses("unix", "/run/registry.sock") == ["unix:/run/registry.sock"]


@pytest.mark.parametrize("net", ["tcp4", "tcp6"])
def test_tcp4_and_tcp6_are_refused_as_gos_listener_refuses_them(tmp_path: Path, net: str) -> None:
    """Go's ``listener.NewListener`` knows only ``tcp`` and ``unix`` ("unknown address type")."""
    config = tmp_path / "config.yml"
    config.write_text(f"version: 0.1\nstorage: inmemory\nhttp: {{net: {net}}}\n")
    result = subprocess.run(
        [sys.executable, "-m", "distribution", "serve", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"registry: configuration error: http.net: expected one of tcp, unix, got '{net}'"
    )


def test_inmemory_storage_runs_one_worker_so_every_request_sees_the_push(start_registry) -> None:
    """Before, each of the workers had a store of its own: 11 of 12 HEADs after a push 404ed."""
    registry = start_registry(
        "version: 0.1\nstorage: {inmemory: {}}\nhttp: {secret: s}\n",
        env={"REGISTRY_HTTP_WORKERS": "4"},
    )
    blob = b"one store for all"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    response = requests.post(
        f"{registry.url}/v2/app/blobs/uploads/?digest={digest}", data=blob, timeout=10
    )
    assert response.status_code == 201, response.text
    statuses = [
        requests.head(f"{registry.url}/v2/app/blobs/{digest}", timeout=10).status_code
        for _ in range(24)
    ]
    assert statuses == [200] * 24
    registry.stop()
    assert "http.workers 4 is not used with storage inmemory" in registry.log
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", registry.log))) == 1


def test_a_filesystem_registry_loads_no_library_it_does_not_use(tmp_path: Path) -> None:
    """Cloud clients, Redis, cryptography and the like cost every process memory and start-up
    time: only a config that uses them loads them (issue 24). Nor does ``registry serve`` load
    what only another command, metrics, mail hooks or online collection use."""
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {tmp_path}/data}}\n"
        "  cache: {blobdescriptor: inmemory}\nhttp: {secret: x}\n"
    )
    unused = [
        *("acme", "azure", "boto3", "botocore", "cryptography", "google", "redis", "requests"),
        *("bcrypt", "prometheus_client", "smtplib", "urllib.request"),
        *("distribution.auth.htpasswd_tool", "distribution.retention.run"),
        *("distribution.storage.gc", "distribution.storage.scrub"),
    ]
    script = (
        "import sys\n"
        "from distribution import cli, config, server, worker\n"
        "from distribution.app import create_app\n"
        f"create_app(config.load({str(config)!r}))\n"
        "loaded = set(sys.modules) | {name.split('.')[0] for name in sys.modules}\n"
        f"print(sorted(loaded & set({unused!r})))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_the_master_builds_the_app_once_and_each_worker_runs_its_threads(
    start_registry, tmp_path: Path
) -> None:
    """The app is built in the master before the fork (its pages shared, issue 24); the health
    checks and the notification delivery, threads that do not survive a fork, run in each
    worker and never in the master."""
    receiver = Receiver().start()
    drain = tmp_path / "drain"
    try:
        registry = start_registry(
            f"""
version: 0.1
storage: {{filesystem: {{rootdirectory: {tmp_path / "data"}}}}}
http: {{secret: s}}
health: {{file: [{{file: {drain}, interval: 10ms}}]}}
notifications:
  endpoints: [{{name: hook, url: {receiver.url}, timeout: 5s, threshold: 3, backoff: 1s}}]
"""
        )
        master = registry.proc.pid
        workers(registry)
        assert os.listdir(f"/proc/{master}/task") == [str(master)]  # no thread
        blob = b"built once"
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        path = f"/v2/app/blobs/{digest}"
        pushed = requests.post(f"{registry.url}/v2/app/blobs/uploads/?digest={digest}", data=blob)
        assert pushed.status_code == 201, pushed.text

        assert _on_every_worker(registry, path) == {200}
        events = receiver.wait_for(lambda got: sum(e["action"] == "pull" for e in got) >= 16)
        assert len({event["source"]["instanceID"] for event in events}) == 1  # one registry

        drain.touch()
        deadline = time.monotonic() + 10
        while (statuses := _on_every_worker(registry, path)) != {503}:
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        assert os.listdir(f"/proc/{master}/task") == [str(master)]
    finally:
        receiver.stop()


def test_the_master_lets_go_of_the_library_code_it_ran_to_start(start_registry) -> None:
    """Starting up runs OpenSSL's set-up, which the master never runs again; it unmaps
    that code before it forks (:mod:`distribution.codepages`), so it maps no more of
    ``libcrypto`` than a worker does. It held 3.4 MiB of it, against a worker's 0.4."""
    registry = start_registry()
    master = registry.proc.pid
    children = workers(registry)
    assert len(children) == 2
    requests.get(f"{registry.url}/v2/", timeout=10).raise_for_status()
    held = {pid: resident_kib(pid, "libcrypto") for pid in (master, *children)}
    assert all(held.values()), held  # the interpreter's OpenSSL is loaded in each
    assert held[master] <= min(held[child] for child in children) + 256, held  # a few pages back


def _on_every_worker(registry, path: str, count: int = 16) -> set[int]:
    """The statuses of ``GET path`` on ``count`` connections held together, which the workers
    share (:mod:`distribution.balance`): every worker answers some."""
    port = int(registry.url.rsplit(":", 1)[1])
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(count)]
    try:
        for connection in connections:
            connection.connect()
        shares = _shares(registry, port, count)
        assert len(shares) == 2 and min(shares) > 0, shares
        statuses = set()
        for connection in connections:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            statuses.add(response.status)
        return statuses
    finally:
        for connection in connections:
            connection.close()


def test_a_worker_stopped_as_it_boots_stops(tmp_path: Path) -> None:
    """A SIGTERM that reaches a worker between its fork and its own handlers (the master
    stopping just as it forked) stops that worker at once; it used to serve on, and the
    registry took its whole drain timeout (30 s) to stop. gunicorn's ``post_fork`` hook runs
    in that window, so it sends the signal there."""
    config = tmp_path / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem: {{rootdirectory: {tmp_path}/data}}\n"
        f"http: {{addr: '127.0.0.1:{free_port()}', secret: x, workers: 1}}\n"
    )
    stopped = tmp_path / "stopped"  # the first worker's pid: only it is stopped
    script = (
        "import os, signal\n"
        "from distribution import config, server\n"
        f"registry = server.RegistryServer(config.load({str(config)!r}))\n"
        "previous = registry.cfg.post_fork\n"
        "def post_fork(arbiter, worker):\n"
        "    previous(arbiter, worker)\n"
        f"    if not os.path.exists({str(stopped)!r}):\n"
        f"        open({str(stopped)!r}, 'w').write(str(os.getpid()))\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "registry.cfg.set('post_fork', post_fork)\n"
        "registry.run()\n"
    )
    log = tmp_path / "stderr.log"
    with open(log, "wb") as stderr:
        master = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=stderr
        )
    try:
        deadline = time.monotonic() + 10
        while not stopped.exists() or f"Worker exiting (pid: {stopped.read_text()})" not in (
            log.read_text()
        ):
            assert master.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        master.terminate()
        assert master.wait(timeout=40) == 0
    assert "Traceback" not in log.read_text()
