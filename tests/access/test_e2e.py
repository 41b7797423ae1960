"""The access rules end to end: gunicorn, htpasswd users, skopeo and podman as clients.

The rules are the issue's example, kept in a rules file (``access.path``) so that a test can
change them while the registry runs.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.access.clients import Podman, push_image
from tests.access.example import RULES, write_htpasswd
from tests.api.test_uploads_process import workers
from tests.conftest import free_port
from tests.e2e import images
from tests.e2e.harness import Skopeo

TIMEOUT = 30


@dataclass
class Registry:
    """A registry process serving the example, with what a test needs to talk to it."""

    process: object
    rules: Path
    debug_url: str
    netloc: str = field(init=False)

    def __post_init__(self) -> None:
        self.netloc = self.url.removeprefix("http://")

    @property
    def url(self) -> str:
        return self.process.url  # type: ignore[attr-defined]

    @property
    def log(self) -> str:
        return self.process.log  # type: ignore[attr-defined]

    def ref(self, name: str) -> str:
        return f"docker://{self.netloc}/{name}"

    def session(self, user: str | None) -> requests.Session:
        session = requests.Session()
        if user is not None:
            session.auth = (user, f"{user}-pw")
        return session

    def set_rules(self, text: str) -> None:
        """Replace the rules file atomically, as config management does."""
        new = self.rules.with_suffix(".new")
        new.write_text(text)
        os.replace(new, self.rules)


def config_text(root: Path, htpasswd: Path, rules: Path, debug_port: int) -> str:
    return f"""
version: 0.1
log: {{level: info, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http:
  secret: access-e2e
  debug: {{addr: "127.0.0.1:{debug_port}", prometheus: {{enabled: true}}}}
auth:
  htpasswd: {{realm: Registry Realm, path: {htpasswd}}}
access:
  path: {rules}
"""


@pytest.fixture
def registry(tmp_path: Path, start_registry) -> Registry:
    htpasswd, rules = tmp_path / "htpasswd", tmp_path / "access.yml"
    write_htpasswd(htpasswd)
    rules.write_text(RULES)
    debug_port = free_port()
    process = start_registry(config_text(tmp_path / "data", htpasswd, rules, debug_port))
    return Registry(process, rules, f"http://127.0.0.1:{debug_port}")


@dataclass(frozen=True)
class Layouts:
    one: str
    two: str
    directory: Path


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> Layouts:
    """Two small OCI images in one layout: ``oci:DIR:one`` and ``oci:DIR:two``."""
    directory = tmp_path_factory.mktemp("layout")
    one = images.image([images.random_layer(32 * images.KiB, 211)])
    two = images.image([images.random_layer(32 * images.KiB, 212)])
    images.write_oci_layout(directory, {"one": one, "two": two})
    return Layouts(f"oci:{directory}:one", f"oci:{directory}:two", directory)


@pytest.fixture
def skopeo(tmp_path: Path) -> Skopeo:
    return Skopeo(tmp_path / "skopeo-home")


@pytest.fixture
def podmans(tmp_path: Path) -> Iterator[Callable[[str], Podman]]:
    """``podmans(name)``: a podman with its own image store, HOME and run root."""
    made: list[Podman] = []

    def make(name: str) -> Podman:
        made.append(Podman(tmp_path / f"podman-{name}"))
        return made[-1]

    yield make
    for podman in made:
        podman.close()


@pytest.fixture
def podman(podmans: Callable[[str], Podman]) -> Podman:
    return podmans("user")


def push(skopeo: Skopeo, source: str, dest: str, creds: str | None, check: bool = True):
    flags = ["--dest-creds", creds] if creds else []
    return skopeo.run(
        "copy", "--dest-tls-verify=false", "--preserve-digests", *flags, source, dest, check=check
    )


def inspect(skopeo: Skopeo, ref: str, creds: str | None, check: bool = True):
    flags = ["--creds", creds] if creds else []
    return skopeo.run("inspect", "--raw", "--tls-verify=false", *flags, ref, check=check)


def refused(result, word: str) -> bool:
    output = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    return result.returncode != 0 and word in output


def decisions(registry: Registry) -> dict[tuple[str, str], float]:
    """``registry_access_decisions_total`` by (action, result), summed over the workers."""
    text = requests.get(f"{registry.debug_url}/metrics", timeout=TIMEOUT).text
    return {
        (s.labels["action"], s.labels["result"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "registry_access_decisions_total"
    }


def test_each_user_end_to_end_with_skopeo_and_podman(registry, skopeo, podman, podmans, layouts):
    image = podman.load(layouts.one)

    # alice and ci push to team-a/**, with skopeo and with podman.
    push(skopeo, layouts.one, registry.ref("team-a/app:1"), "alice:alice-pw")
    podman.push(image, f"{registry.netloc}/team-a/ci:1", "ci:ci-pw")
    # bob (group team-a) pulls there, but may not push.
    podman.pull(f"{registry.netloc}/team-a/app:1", "bob:bob-pw")
    assert refused(
        push(skopeo, layouts.two, registry.ref("team-a/app:2"), "bob:bob-pw", False), "denied"
    )
    assert refused(
        podman.push(image, f"{registry.netloc}/team-a/bob:1", "bob:bob-pw", False), "denied"
    )
    # carol is signed in: public/** to push, the default to pull, nothing of team-a.
    podman.push(image, f"{registry.netloc}/public/tools:1", "carol:carol-pw")
    assert refused(inspect(skopeo, registry.ref("team-a/app:1"), "carol:carol-pw", False), "denied")
    assert refused(
        push(skopeo, layouts.one, registry.ref("other/app:1"), "carol:carol-pw", False), "denied"
    )
    # root, an admin, pushes anywhere; then carol may pull it (the default).
    push(skopeo, layouts.two, registry.ref("other/app:1"), "root:root-pw")
    inspect(skopeo, registry.ref("other/app:1"), "carol:carol-pw")

    # Anybody pulls public/** without credentials, with either client; nothing else.
    assert b'"layers"' in inspect(skopeo, registry.ref("public/tools:1"), None).stdout
    podmans("anonymous").pull(f"{registry.netloc}/public/tools:1")
    assert refused(inspect(skopeo, registry.ref("team-a/app:1"), None, False), "unauthorized")
    assert refused(podman.pull(f"{registry.netloc}/other/app:1", check=False), "unauthorized")
    assert refused(
        push(skopeo, layouts.one, registry.ref("public/tools:2"), None, False), "unauthorized"
    )
    # Wrong credentials are refused even where anonymous may pull.
    assert refused(
        inspect(skopeo, registry.ref("public/tools:1"), "carol:nope", False), "unauthorized"
    )

    # Deletes: alice may in team-a/**, bob and carol may not.
    base = ["delete", "--tls-verify=false"]
    bob_delete = skopeo.run(
        *base, "--creds", "bob:bob-pw", registry.ref("team-a/app:1"), check=False
    )
    assert refused(bob_delete, "denied")
    carol_delete = skopeo.run(
        *base, "--creds", "carol:carol-pw", registry.ref("public/tools:1"), check=False
    )
    assert refused(carol_delete, "denied")
    skopeo.run(*base, "--creds", "alice:alice-pw", registry.ref("team-a/app:1"))
    assert refused(
        inspect(skopeo, registry.ref("team-a/app:1"), "alice:alice-pw", False), "unknown"
    )

    # Every refusal was logged with its user and rule, and the decisions were counted.
    bob = [line for line in registry.log.splitlines() if "auth.user.name=bob" in line]
    assert any(
        'msg="access denied"' in line
        and "access.action=push access.repository=team-a/app" in line
        and 'access.rule="repositories[\\"team-a/**\\"]"' in line
        for line in bob
    ), bob
    counted = decisions(registry)
    assert counted[("push", "denied")] >= 3 and counted[("push", "allowed")] >= 3
    assert counted[("pull", "allowed")] >= 1 and counted[("delete", "denied")] >= 2


def test_login_still_checks_credentials(registry, skopeo, podman):
    """``GET /v2/`` challenges anonymous callers although public/** is open: it is where
    clients learn that they must send credentials (a 200 there makes ``login`` succeed with
    any password, and pushes go out without credentials)."""
    host = registry.netloc
    wrong = skopeo.run("login", "--tls-verify=false", "-u", "bob", "-p", "nope", host, check=False)
    assert refused(wrong, "invalid username/password")
    skopeo.run("login", "--tls-verify=false", "-u", "bob", "-p", "bob-pw", host)
    podman_wrong = podman.run(
        "login", "--tls-verify=false", "-u", "bob", "-p", "x", host, check=False
    )
    assert refused(podman_wrong, "invalid username/password")


def test_catalog_across_pages(registry):
    root = registry.session("root")
    img = images.image([images.random_layer(100, 213)])
    names = sorted(
        [f"public/p{i}" for i in range(5)]
        + [f"team-a/t{i}" for i in range(4)]
        + [f"other/o{i}" for i in range(3)]
    )
    for name in names:
        push_image(root, registry.url, name, "latest", img)
    expected = {
        None: [n for n in names if n.startswith("public/")],
        "carol": [n for n in names if not n.startswith("team-a/")],
        "bob": names,
        "root": names,
    }
    for user, visible in expected.items():
        session = registry.session(user)
        for n in (2, 5):
            url, listed, pages = f"{registry.url}/v2/_catalog?n={n}", [], 0
            while url:
                response = session.get(url, timeout=TIMEOUT)
                assert response.status_code == 200, response.text
                page = response.json()["repositories"]
                assert len(page) == n or "Link" not in response.headers
                listed += page
                pages += 1
                link = response.headers.get("Link")
                url = registry.url + link[1 : link.index(">")] if link else ""
            assert listed == visible, (user, n)
            assert pages == -(-len(visible) // n)


def test_immutable_tags_with_skopeo(registry, skopeo, layouts):
    alice = "alice:alice-pw"
    push(skopeo, layouts.one, registry.ref("team-a/app:v1.0"), alice)
    push(skopeo, layouts.one, registry.ref("team-a/app:v1.0"), alice)  # a CI retry: fine
    moved = push(skopeo, layouts.two, registry.ref("team-a/app:v1.0"), alice, check=False)
    assert refused(moved, "immutable")
    moved_by_root = push(
        skopeo, layouts.two, registry.ref("team-a/app:v1.0"), "root:root-pw", False
    )
    assert refused(moved_by_root, "immutable")
    deleted = skopeo.run(
        "delete",
        "--tls-verify=false",
        "--creds",
        alice,
        registry.ref("team-a/app:v1.0"),
        check=False,
    )
    assert refused(deleted, "immutable")
    session = registry.session("alice")
    digest = session.head(
        f"{registry.url}/v2/team-a/app/manifests/v1.0",
        headers={"Accept": images.OCI_MANIFEST},
        timeout=TIMEOUT,
    ).headers["Docker-Content-Digest"]
    by_digest = session.delete(f"{registry.url}/v2/team-a/app/manifests/{digest}", timeout=TIMEOUT)
    assert by_digest.status_code == 403 and "immutable tag v1.0" in by_digest.text
    # Other tags move and go as before.
    push(skopeo, layouts.one, registry.ref("team-a/app:latest"), alice)
    push(skopeo, layouts.two, registry.ref("team-a/app:latest"), alice)
    skopeo.run("delete", "--tls-verify=false", "--creds", alice, registry.ref("team-a/app:latest"))
    assert "immutable tag" in registry.log and "access.tag=v1.0" in registry.log


@dataclass
class PushLoop:
    """ci pushes ``team-a/loop:<n>`` with skopeo, over and over, until told to stop.

    A push's result is recorded under ``lock``, which :meth:`set_rules` holds while it changes
    the file: the pushes recorded before it ended before the change.
    """

    skopeo: Skopeo
    source: str
    registry: Registry
    results: list[bool] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, limit: int = 200, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        for n in range(limit):
            if self.stop.is_set() or time.monotonic() > deadline:
                return
            ref = self.registry.ref(f"team-a/loop:{n}")
            result = push(self.skopeo, self.source, ref, "ci:ci-pw", check=False)
            stderr = result.stderr.decode()
            # A refused HEAD has no body: skopeo then says "403 (Forbidden)", not "denied".
            with self.lock:
                if result.returncode != 0 and "denied" not in stderr and "403" not in stderr:
                    self.errors.append(stderr)
                self.results.append(result.returncode == 0)

    def set_rules(self, text: str) -> int:
        """Replace the rules with ``text``; how many pushes had ended before. The push of that
        index may have been in flight; every later one starts after the change."""
        with self.lock:
            self.registry.set_rules(text)
            return len(self.results)

    def wait_for(self, outcome: bool, after: int, timeout: float = 60) -> int:
        """Wait until a push after the first ``after`` ends with ``outcome``; its index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index in range(after, len(self.results)):
                if self.results[index] is outcome:
                    return index
            assert not self.errors, self.errors
            time.sleep(0.05)
        raise AssertionError(f"no push ended {outcome} after #{after}: {self.results}")


def test_rules_reloaded_while_a_push_loop_runs(registry, skopeo, layouts):
    loop = PushLoop(skopeo, layouts.one, registry)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        first = loop.wait_for(True, 0)
        # ci loses push on team-a/** ...
        reloads = _reloads(registry)
        # A push that ends while the file changes may be counted before the change or after:
        # the index is taken with the change, under the loop's lock.
        changed = loop.set_rules(RULES.replace("users: [alice, ci]", "users: [alice]"))
        denied = loop.wait_for(False, changed)
        # Each worker reads the file at its next request: a worker that has not yet seen these
        # rules when the broken file comes keeps the ones it had (README, "Access control").
        # skopeo may keep its connections on one worker: fresh connections reach the other.
        _wait_until(lambda: _poked(registry) and _reloads(registry) >= reloads + 2)
        # ... a broken file keeps those rules (no push gets through) ...
        broken = loop.set_rules(RULES.replace("[pull, push, delete]", "[pull, push, delete, fly]"))
        loop.wait_for(False, broken + 2)
        # ... and a good file gives push back.
        restored = loop.set_rules(RULES)
        allowed = loop.wait_for(True, restored)
    finally:
        loop.stop.set()
        thread.join(timeout=120)
    assert not loop.errors, loop.errors
    results = loop.results
    assert all(results[first:changed]), results
    # A push in flight while the file changed may go either way; every later one is refused.
    assert not any(results[changed + 1 : restored]), results
    assert all(results[restored + 1 : allowed + 1]), results
    assert denied <= changed + 1
    log = registry.log
    assert "keeping the previous rules" in log and "unknown action 'fly'" in log
    assert log.count("unknown action 'fly'") <= 2  # one line per worker
    assert "access rules reloaded from" in log
    assert "Traceback" not in log


def test_a_worker_started_after_the_file_broke_answers_503(registry):
    """Workers start with the rules the master read at start-up. One started after the file
    replaced them and then broke has no rules it can trust: it answers 503, and never decides
    with the start-up rules (here they would give ``ci`` back its push)."""
    upload = "/v2/team-a/app/blobs/uploads/"
    assert _fresh(registry, "ci", "POST", upload) == 202
    registry.set_rules(RULES.replace("users: [alice, ci]", "users: [alice]"))
    registry.set_rules(RULES.replace("[pull, push, delete]", "[pull, push, delete, fly]"))
    before = workers(registry.process)
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    _wait_until(lambda: not set(workers(registry.process)) & set(before))

    answers = [_fresh(registry, "ci", "POST", upload) for _ in range(8)]
    answers += [_fresh(registry, "alice", "GET", "/v2/") for _ in range(4)]
    assert set(answers) == {503}, answers
    assert _fresh(registry, None, "GET", "/") == 200  # load balancers' probe stays open
    registry.set_rules(RULES.replace("users: [alice, ci]", "users: [alice]"))
    assert {_fresh(registry, "ci", "POST", upload) for _ in range(8)} == {403}
    assert {_fresh(registry, "alice", "POST", upload) for _ in range(4)} == {202}
    assert "answers 503 until the file reads again" in registry.log
    assert "Traceback" not in registry.log


def _fresh(registry: Registry, user: str | None, method: str, path: str) -> int:
    """The status of one request on a new connection (any worker may take it)."""
    with registry.session(user) as session:
        response = session.request(
            method, registry.url + path, headers={"Connection": "close"}, timeout=TIMEOUT
        )
        return response.status_code


def _reloads(registry: Registry) -> int:
    return registry.log.count("access rules reloaded from")


def _poked(registry: Registry) -> bool:
    """Send ``GET /v2/`` on a new connection, so that each worker in turn reads the rules."""
    requests.get(registry.url + "/v2/", headers={"Connection": "close"}, timeout=10)
    return True


def _wait_until(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.1)
