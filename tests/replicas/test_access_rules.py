"""The same access rules on two replicas behind nginx: every request, whichever replica takes
it, gets the same answer, and a change to the rules file reaches both."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import requests

from tests.access.example import RULES, write_htpasswd
from tests.access.test_e2e import refused
from tests.e2e import images
from tests.e2e.harness import Skopeo
from tests.replicas.cluster import GoReplica, Replica, replica_config

TIMEOUT = 30


def access_config(root: Path, tmp_path: Path) -> str:
    """The replica config plus htpasswd auth and the rules file (shared by every replica)."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    (tmp_path / "access.yml").write_text(RULES)
    return replica_config(root, None) + (
        f"auth:\n  htpasswd: {{realm: Registry Realm, path: {htpasswd}}}\n"
        f"access:\n  path: {tmp_path / 'access.yml'}\n"
    )


def statuses(url: str, auth: tuple[str, str] | None, count: int = 8) -> set[int]:
    """Status codes of ``count`` fresh connections through nginx: both replicas answer."""
    return {requests.get(url, auth=auth, timeout=TIMEOUT).status_code for _ in range(count)}


def test_two_replicas_behind_nginx_apply_the_same_rules(
    tmp_path: Path,
    start_registry: Callable,
    start_go: Callable[[str], GoReplica],
    start_nginx: Callable[[list[Replica]], str],
) -> None:
    config = access_config(tmp_path / "root", tmp_path)
    replicas = [start_registry(config) for _ in range(2)]
    front = start_nginx(replicas)
    layout = tmp_path / "layout"
    images.write_oci_layout(layout, {"one": images.image([images.random_layer(4096, 221)])})
    skopeo = Skopeo(tmp_path / "skopeo")

    def copy(ref: str, creds: str | None, check: bool = True):
        flags = ["--dest-creds", creds] if creds else []
        source = f"oci:{layout}:one"
        return skopeo.run(
            "copy",
            "--dest-tls-verify=false",
            *flags,
            source,
            f"docker://{front}/{ref}",
            check=check,
        )

    copy("team-a/app:1", "alice:alice-pw")
    copy("public/tools:1", "bob:bob-pw")
    assert refused(copy("team-a/app:2", "bob:bob-pw", check=False), "denied")
    anonymous = skopeo.run("inspect", "--tls-verify=false", f"docker://{front}/public/tools:1")
    assert b'"Digest"' in anonymous.stdout

    tags = f"http://{front}/v2/team-a/app/tags/list"
    catalog = f"http://{front}/v2/_catalog?n=1"
    assert statuses(tags, ("bob", "bob-pw")) == {200}
    assert statuses(tags, None) == {401}
    assert {requests.get(catalog, timeout=TIMEOUT).text for _ in range(8)} == {
        '{"repositories":["public/tools"]}\n'
    }

    # bob leaves team-a: both replicas refuse him from the next request on.
    new = tmp_path / "access.new"
    new.write_text(RULES.replace("team-a: [alice, bob]", "team-a: [alice]"))
    os.replace(new, tmp_path / "access.yml")
    assert statuses(tags, ("bob", "bob-pw")) == {403}
    assert statuses(tags, ("alice", "alice-pw")) == {200}
    for replica in replicas:
        assert "access rules reloaded from" in replica.stderr  # type: ignore[attr-defined]
        assert "Traceback" not in replica.stderr  # type: ignore[attr-defined]

    # The Go registry starts on the same file: it ignores the section (and so enforces none).
    go = start_go(config)
    assert requests.get(f"{go.url}/v2/", timeout=TIMEOUT).status_code == 401
