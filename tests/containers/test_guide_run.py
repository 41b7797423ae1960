"""Every ``docker run`` of the deployment guide, against the image, with podman as docker.

Each test runs the guide's command (ports published on 127.0.0.1 at a free port instead of a
fixed one), pushes and pulls with podman, and fetches every blob back with skopeo.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import requests

from tests.conftest import free_port
from tests.containers.conftest import StartContainer
from tests.containers.harness import Client, Container, podman
from tests.e2e.harness import Server
from tests.tls.pki import Authority

#: The guide's htpasswd user.
USER, PASSWORD = "testuser", "testpassword"
#: /proc/PID/status of a process without any capability, and with only NET_BIND_SERVICE.
NO_CAPS, BIND_ONLY = "0000000000000000", "0000000000000400"


def published(port: int, inside: int = 5000) -> list[str]:
    return ["-p", f"127.0.0.1:{port}:{inside}"]


def owners(root: Path) -> set[tuple[int, int]]:
    """The (uid, gid) of everything under ``root``."""
    found = set()
    for directory, names, files in os.walk(root):
        for name in [*names, *files]:
            info = os.lstat(os.path.join(directory, name))
            found.add((info.st_uid, info.st_gid))
    return found


def serve_volume(start: StartContainer, data: Path, *options: str) -> tuple[Container, str]:
    """The image run with ``data`` as its volume and ``options``, published on a free port of
    127.0.0.1, once it answers; and that host:port."""
    port = free_port()
    registry = start(
        options=[*published(port), *options, "-v", f"{data}:/var/lib/registry"],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    return registry, f"127.0.0.1:{port}"


def healthy(name: str) -> bool:
    return podman("healthcheck", "run", name, check=False).returncode == 0


def test_run_push_pull_stop_start(start, client: Client, pushable: str, tmp_path: Path) -> None:
    """``docker run -d -p 5000:5000 --restart=always --name registry registry:2``, push, pull,
    stop, start: the data stays in the container's volume."""
    port = free_port()
    registry = start(options=[*published(port), "--restart=always"], url=f"http://127.0.0.1:{port}")
    registry.wait_ready()
    assert registry.inspect("{{.HostConfig.RestartPolicy.Name}}") == "always"
    remote = f"127.0.0.1:{port}/my-ubuntu"
    client.push(pushable, remote)
    client.pull(remote)
    pushed = client.download(remote, tmp_path / "before")

    assert registry.stop()[0] == 0
    registry.start()
    registry.wait_ready()
    assert client.download(remote, tmp_path / "after") == pushed
    # The image's own volume belongs to `registry`: the registry runs as it, without privileges.
    status = registry.status_of_pid_1()
    assert status["Uid"].split() == ["1000"] * 4 and status["Gid"].split() == ["1000"] * 4
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == NO_CAPS
    assert status["NoNewPrivs"] == "1"
    assert healthy(registry.name)
    # It cannot write bytecode, yet runs -OO (distribution/entry.py): the image carries it.
    listed = "for line in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $line; echo; done"
    lines = registry.exec("sh", "-c", listed).stdout.splitlines()
    servers = [line for line in lines if "bin/registry serve" in line]  # not dumb-init
    assert len(servers) >= 2 and all(" -OO " in line for line in servers), lines


def test_other_host_port_and_listen_address(start) -> None:
    """``-p 5001:5000``, and ``-e REGISTRY_HTTP_ADDR=0.0.0.0:5001 -p 5001:5001``; the health
    check follows the address."""
    port = free_port()
    mapped = start(options=published(port), url=f"http://127.0.0.1:{port}")
    moved_port = free_port()
    moved = start(
        options=["-e", "REGISTRY_HTTP_ADDR=0.0.0.0:5001", *published(moved_port, 5001)],
        url=f"http://127.0.0.1:{moved_port}",
    )
    for registry in (mapped, moved):
        registry.wait_ready()
        assert healthy(registry.name)


def test_root_owned_bind_mount(start, client: Client, pushable: str, tmp_path: Path) -> None:
    """``-v /mnt/registry:/var/lib/registry``, the directory root's as a user's ``sudo mkdir``
    makes it: the push works as with the Go image, written as root, by a process that has no
    capability at all."""
    data = tmp_path / "mnt-registry"
    data.mkdir(mode=0o755)
    port = free_port()
    registry = start(
        options=[*published(port), "-v", f"{data}:/var/lib/registry"],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    remote = f"127.0.0.1:{port}/my-ubuntu"
    client.push(pushable, remote)
    client.download(remote, tmp_path / "pulled")
    assert (data / "docker" / "registry" / "v2" / "repositories" / "my-ubuntu").is_dir()
    assert owners(data) == {(0, 0)}
    status = registry.status_of_pid_1()
    assert status["Uid"].split()[0] == "0"
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == NO_CAPS
    assert status["NoNewPrivs"] == "1"


def test_volume_the_go_registry_wrote(start, skopeo, image_set, tmp_path: Path) -> None:
    """Data the Go registry (root) wrote is served by the image, which adds to it; the Go
    registry then serves what the image wrote: the same volume, either way."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    go = Server("go", data, tmp_path / "go-1")
    skopeo.copy(image_set.oci("image"), f"docker://{go.netloc}/from-go:1")
    go.stop()

    port = free_port()
    registry = start(
        options=[*published(port), "-v", f"{data}:/var/lib/registry"],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    ours = f"127.0.0.1:{port}"
    assert skopeo.inspect_raw(f"docker://{ours}/from-go:1") == image_set.oci_image.manifest
    skopeo.copy(f"docker://{ours}/from-go:1", f"docker://{ours}/from-python:1")
    registry.stop()

    go = Server("go", data, tmp_path / "go-2")
    try:
        raw = skopeo.inspect_raw(f"docker://{go.netloc}/from-python:1")
        assert raw == image_set.oci_image.manifest
    finally:
        go.stop()
    assert owners(data) == {(0, 0)}


def test_bind_mount_of_another_user(start, client: Client, pushable: str, tmp_path: Path) -> None:
    """A data directory someone else owns (``chown 4242``, mode 0700): the registry runs as its
    owner and leaves its files to it."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    os.chown(data, 4242, 4242)
    port = free_port()
    registry = start(
        options=[*published(port), "-v", f"{data}:/var/lib/registry"],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    client.push(pushable, f"127.0.0.1:{port}/mine")
    assert owners(data) == {(4242, 4242)}
    assert registry.status_of_pid_1()["Uid"].split()[0] == "4242"


def test_kubernetes_style_non_root(start, client: Client, pushable: str, tmp_path: Path) -> None:
    """As contrib/kubernetes runs it: ``runAsUser``/``runAsGroup`` 1000, every capability
    dropped, no privilege escalation, a read-only root file system; a volume of uid 1000."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chown(data, 1000, 1000)
    port = free_port()
    registry = start(
        options=[
            *published(port),
            *("--user", "1000:1000", "--cap-drop", "all"),
            *("--security-opt", "no-new-privileges", "--read-only"),
            *("-v", f"{data}:/var/lib/registry"),
        ],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    client.push(pushable, f"127.0.0.1:{port}/k8s")
    assert owners(data) == {(1000, 1000)}
    status = registry.status_of_pid_1()
    assert status["Uid"].split()[0] == "1000" and status["CapEff"] == NO_CAPS
    assert healthy(registry.name)


def test_read_only_root_without_a_tmpfs(
    start, client: Client, pushable: str, tmp_path: Path
) -> None:
    """``docker run --read-only``, which (unlike podman's) mounts nothing writable on /tmp:
    the registry needs no temporary folder, as registry:2 needs none."""
    data = tmp_path / "data"
    data.mkdir()
    registry, netloc = serve_volume(start, data, "--read-only", "--read-only-tmpfs=false")
    remote = f"{netloc}/read-only"
    client.push(pushable, remote)
    client.pull(remote)
    assert "runs this replica's maintenance" in registry.logs()
    assert healthy(registry.name)


def test_tls_by_environment_with_intermediate(start, pushable: str, tmp_path: Path) -> None:
    """The guide's TLS run: ``-v certs:/certs``, port 443, certificate and key by ``REGISTRY_*``
    variables; the certificate file carries the intermediate after the leaf, and the key is
    root's and 0600, as openssl writes it. Only the root CA is given to the client."""
    authority = Authority.root("Guide Root CA")
    certs = tmp_path / "certs"
    _, key = authority.intermediate("Guide Intermediate CA").issue("domain", certs)
    key.chmod(0o600)
    ca = authority.write_ca(tmp_path / "ca.crt")
    port = free_port()
    registry = start(
        options=[
            *("-v", f"{certs}:/certs", "-e", "REGISTRY_HTTP_ADDR=0.0.0.0:443"),
            *("-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt"),
            *("-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key"),
            *published(port, 443),
        ],
        url=f"https://127.0.0.1:{port}",
    )
    registry.wait_ready(verify=str(ca))
    client = Client(tmp_path / "client", ca=ca)
    remote = f"127.0.0.1:{port}/my-ubuntu"
    client.push(pushable, remote)
    client.download(remote, tmp_path / "pulled")
    assert healthy(registry.name)
    # Root alone reads the key, so root it is, with nothing but binding port 443.
    status = registry.status_of_pid_1()
    assert status["Uid"].split()[0] == "0"
    assert status["CapEff"] == status["CapBnd"] == BIND_ONLY


def test_tls_key_the_registry_user_may_read(start, tmp_path: Path) -> None:
    """With a key its group may read (chgrp 1000, 0640), the registry stays unprivileged and
    binds 443 with NET_BIND_SERVICE alone."""
    authority = Authority.root("Root CA")
    certs = tmp_path / "certs"
    _, key = authority.issue("domain", certs)
    key.chmod(0o640)
    os.chown(key, 0, 1000)
    ca = authority.write_ca(tmp_path / "ca.crt")
    port = free_port()
    registry = start(
        options=[
            *("-v", f"{certs}:/certs", "-e", "REGISTRY_HTTP_ADDR=0.0.0.0:443"),
            *("-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt"),
            *("-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key"),
            *published(port, 443),
        ],
        url=f"https://127.0.0.1:{port}",
    )
    registry.wait_ready(verify=str(ca))
    status = registry.status_of_pid_1()
    assert status["Uid"].split()[0] == "1000"
    assert status["CapEff"] == status["CapAmb"] == BIND_ONLY


def test_unusable_files_stop_start_up_with_one_line(start, tmp_path: Path) -> None:
    """A data directory of uid 4242 with data in it and a key only root may read: no identity
    without privileges can use both, and the container says which file and what to do."""
    data = tmp_path / "data"
    (data / "docker").mkdir(parents=True)
    os.chown(data, 4242, 4242)
    certs = tmp_path / "certs"
    _, key = Authority.root("Root CA").issue("domain", certs)
    key.chmod(0o600)
    registry = start(
        options=[
            *("-v", f"{data}:/var/lib/registry", "-v", f"{certs}:/certs"),
            *("-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt"),
            *("-e", "REGISTRY_HTTP_TLS_KEY=/certs/domain.key"),
        ]
    )
    deadline = time.monotonic() + 30
    while registry.inspect("{{.State.Running}}") == "true" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert registry.inspect("{{.State.ExitCode}}") == "1"
    lines = [line for line in registry.logs().splitlines() if "level=" not in line]
    assert lines == [
        "registry: cannot start: as uid 4242, the owner of /var/lib/registry, it cannot read "
        "/certs/domain.key (http.tls.key; owner uid 0, group 0, mode 0600). Make it readable by "
        "uid 4242, or give the storage root (/var/lib/registry) the owner that can, or run with "
        "--user."
    ]


def test_htpasswd_then_authenticated_registry(
    start, image: str, client: Client, pushable: str, tmp_path: Path
) -> None:
    """``docker run --entrypoint htpasswd IMAGE -Bbn testuser testpassword > auth/htpasswd``,
    then the ``REGISTRY_AUTH=htpasswd`` run: login, push, pull; nothing without login."""
    made = podman("run", "--rm", "--entrypoint", "htpasswd", image, "-Bbn", USER, PASSWORD)
    auth = tmp_path / "auth"
    auth.mkdir()
    (auth / "htpasswd").write_text(made.stdout)
    port = free_port()
    registry = start(
        options=[
            *published(port),
            *("-v", f"{auth}:/auth", "-e", "REGISTRY_AUTH=htpasswd"),
            *("-e", "REGISTRY_AUTH_HTPASSWD_REALM=Registry Realm"),
            *("-e", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd"),
        ],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready(status=401)
    remote = f"127.0.0.1:{port}/my-ubuntu"
    assert client.push(pushable, remote, check=False).returncode != 0
    assert client.login(f"127.0.0.1:{port}", USER, "wrong", check=False).returncode != 0
    client.login(f"127.0.0.1:{port}", USER, PASSWORD)
    client.push(pushable, remote)
    client.pull(remote)
    client.download(remote, tmp_path / "pulled")
    assert requests.get(f"{registry.url}/v2/_catalog", timeout=10).status_code == 401


def test_htpasswd_flags_in_the_image(image: str, tmp_path: Path) -> None:
    """Apache's -c -b -B -C -v -D -n, run in the image on a mounted file."""
    auth = tmp_path / "auth"
    auth.mkdir()

    def htpasswd(*args: str):
        return podman(
            *("run", "--rm", "-v", f"{auth}:/auth", "--entrypoint", "htpasswd", image, *args),
            check=False,
        )

    assert htpasswd("-Bbc", "/auth/htpasswd", "alice", "a").returncode == 0
    assert htpasswd("-bC", "6", "/auth/htpasswd", "bob", "b").returncode == 0
    assert htpasswd("-bv", "/auth/htpasswd", "bob", "b").returncode == 0
    assert htpasswd("-bv", "/auth/htpasswd", "bob", "nope").returncode == 3
    assert htpasswd("-D", "/auth/htpasswd", "alice").returncode == 0
    lines = (auth / "htpasswd").read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["bob"]
    assert lines[0].startswith("bob:$2y$06$")
    # The image's command form runs it too (as `docker run IMAGE htpasswd ...`).
    assert podman("run", "--rm", image, "htpasswd", "-Bbn", "u", "p").stdout.startswith("u:$2y$")


def test_config_path_argument(start, client: Client, pushable: str, tmp_path: Path) -> None:
    """``docker run IMAGE /path/to/config.yml``: that file, its port and storage, and the health
    check reads it too."""
    config = tmp_path / "custom.yml"
    config.write_text(
        "version: 0.1\n"
        "storage:\n  filesystem:\n    rootdirectory: /srv/registry\n"
        "http:\n  addr: :5005\n  headers:\n    X-Custom: [yes]\n"
    )
    port = free_port()
    registry = start(
        "/etc/registry/custom.yml",
        options=[*published(port, 5005), "-v", f"{config}:/etc/registry/custom.yml:ro"],
        url=f"http://127.0.0.1:{port}",
    )
    registry.wait_ready()
    assert requests.get(f"{registry.url}/v2/", timeout=10).headers["X-Custom"] == "yes"
    assert healthy(registry.name)
    # /srv/registry did not exist: its parent is root's, so root without capabilities makes it.
    client.push(pushable, f"127.0.0.1:{port}/custom")
    assert registry.exec("stat", "-c", "%u", "/srv/registry/docker").stdout.strip() == "0"
    assert registry.status_of_pid_1()["CapEff"] == NO_CAPS


def test_garbage_collect_command(start, image: str, skopeo, image_set, tmp_path: Path) -> None:
    """``docker run IMAGE garbage-collect /etc/docker/registry/config.yml`` on the volume: the
    blobs of a deleted manifest go, those still referenced stay."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    registry, netloc = serve_volume(start, data, "-e", "REGISTRY_STORAGE_DELETE_ENABLED=true")
    kept, dropped = image_set.oci_image, image_set.docker_image
    skopeo.copy(image_set.oci("image"), f"docker://{netloc}/kept:1")
    skopeo.copy(f"dir:{image_set.docker_image_dir}", f"docker://{netloc}/dropped:1")
    skopeo.delete(f"docker://{netloc}/dropped:1")
    assert registry.stop()[0] == 0

    done = podman(
        *("run", "--rm", "-v", f"{data}:/var/lib/registry", image),
        *("garbage-collect", "/etc/docker/registry/config.yml"),
    )
    assert "blobs marked" in done.stdout, done.stdout
    blobs = data / "docker" / "registry" / "v2" / "blobs" / "sha256"
    for digest in kept.layer_digests:
        assert (blobs / digest[7:9] / digest[7:] / "data").exists()
    for digest in set(dropped.layer_digests) - set(kept.layer_digests):
        assert not (blobs / digest[7:9] / digest[7:]).exists()


def test_stop_finishes_requests_in_flight(start) -> None:
    """``docker stop``: SIGTERM to PID 1 (dumb-init), which hands it to the registry; an upload
    still sending its body finishes, the container exits 0 well before the stop timeout, and
    an orphaned process inside was reaped, not left a zombie."""
    port = free_port()
    registry = start(options=published(port), url=f"http://127.0.0.1:{port}")
    registry.wait_ready()
    assert registry.inspect("{{.Config.StopSignal}}") in ("", "SIGTERM", "15")
    # An orphan: its shell exits at once, so it ends as a child of PID 1.
    registry.exec("sh", "-c", "sleep 1 >/dev/null 2>&1 & exit 0")

    started = requests.post(f"{registry.url}/v2/slow/blobs/uploads/", timeout=10)
    assert started.status_code == 202
    location = started.headers["Location"]
    if location.startswith("/"):
        location = registry.url + location
    chunks_sent = threading.Event()
    answer: dict[str, object] = {}

    def body():
        for index in range(10):
            if index == 2:
                chunks_sent.set()
            yield b"x" * 65536
            time.sleep(0.25)

    def upload() -> None:
        try:
            answer["response"] = requests.patch(location, data=body(), timeout=60)
        except requests.RequestException as err:
            answer["error"] = err

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert chunks_sent.wait(10)
    time.sleep(1.5)  # past the orphan's second: it has exited and waits to be reaped
    zombies = registry.exec(
        "sh", "-c", "grep -l '^[0-9]* ([^)]*) Z' /proc/[0-9]*/stat || true"
    ).stdout.split()
    assert zombies == []
    code, seconds = registry.stop(timeout=10)
    uploader.join(30)
    response = answer.get("response")
    assert isinstance(response, requests.Response), answer
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{10 * 65536 - 1}"
    assert code == 0
    assert seconds < 10
