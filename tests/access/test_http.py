"""Every path of the access rules through the Flask app: 401 or 403, anonymous pulls, the
catalog, mounts, immutable tags, the log and the metrics."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from distribution import manifest, metrics
from distribution.storage.tags import TagStore
from tests.access.example import section, write_htpasswd
from tests.api import registry_env
from tests.api.registry_env import Env, build_env, digest_of, error_code


def credentials(user: str, password: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password or user + '-pw'}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(params=registry_env.DRIVERS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    """The example's rules on each driver; ``env.client`` is signed in as the admin, root."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd")
    auth = f"auth: {{htpasswd: {{realm: Registry Realm, path: {htpasswd}}}}}\n"
    built = build_env(request.param, tmp_path / "root", auth + section())
    built.client.environ_base["HTTP_AUTHORIZATION"] = credentials("root")["Authorization"]
    return built


def with_dan(tmp_path: Path, access: str) -> Env:
    """A registry in memory whose one htpasswd user is dan, with ``access`` as its rules."""
    htpasswd = write_htpasswd(tmp_path / "htpasswd", ("dan",))
    return build_env(
        "inmemory", tmp_path, f"auth: {{htpasswd: {{realm: r, path: {htpasswd}}}}}\n{access}\n"
    )


def as_user(env: Env, user: str | None) -> FlaskClient:
    client = env.app.test_client()
    if user is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = credentials(user)["Authorization"]
    return client


def seed(env: Env, *names: str, tag: str = "latest") -> dict[str, str]:
    """Push an image to each repository (as root); their digests by name."""
    return {name: env.push(name, tag, env.image(name, seed=name)) for name in names}


def test_base_challenges_anonymous_callers_even_with_anonymous_grants(env):
    """docker, podman and skopeo learn from ``GET /v2/`` alone that they must sign in."""
    for headers in ({}, {"Authorization": "Basic Og=="}):
        response = as_user(env, None).get("/v2/", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
    assert as_user(env, "carol").get("/v2/").status_code == 200


def test_anonymous_pulls_without_a_challenge(env):
    digest = seed(env, "public/tools", "team-a/app")["public/tools"]
    for headers in ({}, {"Authorization": "Basic Og=="}):  # what podman and skopeo send
        client = as_user(env, None)
        response = client.get(
            "/v2/public/tools/manifests/latest",
            headers={**headers, "Accept": manifest.OCI_MANIFEST},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.headers["Docker-Content-Digest"] == digest
        layer = json.loads(response.data)["layers"][0]["digest"]
        assert client.get(f"/v2/public/tools/blobs/{layer}", headers=headers).status_code == 200
        assert client.get("/v2/public/tools/tags/list", headers=headers).status_code == 200
        refused = client.get("/v2/team-a/app/manifests/latest", headers=headers)
        assert error_code(refused) == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"] == 'Basic realm="Registry Realm"'
        push = client.post("/v2/public/tools/blobs/uploads/", headers=headers)
        assert error_code(push) == "UNAUTHORIZED" and push.status_code == 401


def test_wrong_credentials_are_401_even_where_anonymous_may_pull(env):
    seed(env, "public/tools")
    response = as_user(env, None).get(
        "/v2/public/tools/tags/list", headers=credentials("carol", "wrong")
    )
    assert response.status_code == 401 and error_code(response) == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("user", "method", "path", "status"),
    [
        ("alice", "POST", "/v2/team-a/app/blobs/uploads/", 202),
        ("ci", "POST", "/v2/team-a/app/blobs/uploads/", 202),
        ("bob", "POST", "/v2/team-a/app/blobs/uploads/", 403),
        ("bob", "GET", "/v2/team-a/app/tags/list", 200),
        ("carol", "GET", "/v2/team-a/app/tags/list", 403),
        ("carol", "GET", "/v2/team-a/app/manifests/latest", 403),
        ("carol", "GET", "/v2/team-a/app/referrers/sha256:" + "0" * 64, 403),
        ("bob", "GET", "/v2/team-a/app/referrers/sha256:" + "0" * 64, 200),
        ("carol", "POST", "/v2/public/tools/blobs/uploads/", 202),
        ("carol", "POST", "/v2/other/app/blobs/uploads/", 403),
        ("carol", "GET", "/v2/other/app/tags/list", 200),
        ("carol", "DELETE", "/v2/public/tools/manifests/latest", 403),
        ("bob", "DELETE", "/v2/team-a/app/manifests/latest", 403),
        ("alice", "DELETE", "/v2/team-a/app/manifests/latest", 202),
        ("root", "DELETE", "/v2/other/app/manifests/latest", 202),
    ],
)
def test_each_user_gets_what_the_rules_give(env, user, method, path, status):
    seed(env, "team-a/app", "public/tools", "other/app")
    response = as_user(env, user).open(path, method=method, headers={"Accept": "*/*"})
    assert response.status_code == status, response.get_data(as_text=True)
    if status == 403:
        assert error_code(response) == "DENIED"
        assert "WWW-Authenticate" not in response.headers


def test_blobs_follow_the_rules(env):
    body = env.image("team-a/app", seed="x")
    env.push("team-a/app", "latest", body)
    layer = json.loads(body)["layers"][0]["digest"]
    assert as_user(env, "bob").head(f"/v2/team-a/app/blobs/{layer}").status_code == 200
    assert as_user(env, "carol").head(f"/v2/team-a/app/blobs/{layer}").status_code == 403
    assert as_user(env, "bob").delete(f"/v2/team-a/app/blobs/{layer}").status_code == 403
    assert as_user(env, "alice").delete(f"/v2/team-a/app/blobs/{layer}").status_code == 202


def test_a_refusal_says_nothing_about_existence(env):
    seed(env, "team-a/app")
    carol = as_user(env, "carol")
    existing = carol.get("/v2/team-a/app/tags/list")
    missing = carol.get("/v2/team-a/nothing-here/tags/list")
    assert existing.status_code == missing.status_code == 403
    message = existing.get_json()["errors"][0]["message"]
    assert message == "pull access to repository team-a/app is denied"
    assert missing.get_json()["errors"][0]["message"] == message.replace("app", "nothing-here")
    push = as_user(env, "bob").put(
        "/v2/team-a/app/manifests/v9", data=b"{}", headers={"Content-Type": "x"}
    )
    assert (
        push.get_json()["errors"][0]["message"] == "push access to repository team-a/app is denied"
    )


def test_mount_needs_pull_on_the_source_else_it_is_a_plain_upload(env):
    body = env.image("other/base", seed="base")
    env.push("other/base", "latest", body)
    env.push("team-a/secret", "latest", env.image("team-a/secret", seed="secret"))
    secret_layer = json.loads(env.get("team-a/secret", "latest").data)["layers"][0]["digest"]
    layer = json.loads(body)["layers"][0]["digest"]
    ci = as_user(env, "ci")
    mounted = ci.post(f"/v2/public/ci/blobs/uploads/?mount={layer}&from=other/base")
    assert mounted.status_code == 201  # ci may pull other/base (the default)
    carol = as_user(env, "carol")
    refused = carol.post(f"/v2/public/mine/blobs/uploads/?mount={secret_layer}&from=team-a/secret")
    assert refused.status_code == 202  # an ordinary upload: nothing about team-a/secret
    assert carol.head(f"/v2/public/mine/blobs/{secret_layer}").status_code == 404


def test_catalog_lists_what_the_caller_may_pull_page_by_page(env):
    names = ["a/one", "other/app", "public/a", "public/b/c", "public/z", "team-a/app", "team-a/x"]
    seed(env, *names)
    expected = {
        None: ["public/a", "public/b/c", "public/z"],
        "carol": ["a/one", "other/app", "public/a", "public/b/c", "public/z"],
        "bob": names,  # the default, public/** and team-a/** as a member of team-a
        "root": names,
    }
    for user, visible in expected.items():
        client = as_user(env, user)
        assert client.get("/v2/_catalog").get_json() == {"repositories": visible}
        for n in (1, 2, 3):
            url, pages = f"/v2/_catalog?n={n}", []
            while url:
                response = client.get(url)
                assert response.status_code == 200
                pages.append(response.get_json()["repositories"])
                link = response.headers.get("Link")
                url = link[1 : link.index(">")] if link else ""
            assert [name for page in pages for name in page] == visible, (user, n)
            assert all(len(page) == n for page in pages[:-1]) and 0 < len(pages[-1]) <= n
        after = client.get("/v2/_catalog?last=public/a").get_json()["repositories"]
        assert after == [name for name in visible if name > "public/a"]


def test_catalog_for_callers_who_may_pull_nothing(tmp_path):
    closed = with_dan(
        tmp_path, "access: {repositories: {'x/**': [{users: [eve], actions: [pull]}]}}"
    )
    anonymous = closed.client.get("/v2/_catalog")
    assert anonymous.status_code == 401 and "WWW-Authenticate" in anonymous.headers
    signed_in = closed.client.get("/v2/_catalog", headers=credentials("dan"))
    assert signed_in.status_code == 200 and signed_in.get_json() == {"repositories": []}


def test_a_character_class_never_matches_a_slash(tmp_path):
    """``[.-9]`` spans ``/`` in ASCII: the rule for ``team.x`` must not decide for ``team/x``."""
    ranged = with_dan(
        tmp_path, "access: {repositories: {'team[.-9]x': [{users: [dan], actions: [pull, push]}]}}"
    )
    dan = credentials("dan")
    assert ranged.client.post("/v2/team.x/blobs/uploads/", headers=dan).status_code == 202
    refused = ranged.client.post("/v2/team/x/blobs/uploads/", headers=dan)
    assert refused.status_code == 403 and error_code(refused) == "DENIED"


def test_immutable_tags(env):
    first = env.image("team-a/app", seed="one")
    second = env.image("team-a/app", seed="two")
    alice = as_user(env, "alice")

    def put(ref: str, body: bytes, client: FlaskClient = alice):
        return client.put(
            f"/v2/team-a/app/manifests/{ref}",
            data=body,
            headers={"Content-Type": manifest.OCI_MANIFEST},
        )

    assert put("v1.0", first).status_code == 201
    assert put("v1.0", first).status_code == 201  # the same digest again: a CI retry
    moved = put("v1.0", second)
    assert moved.status_code == 403 and error_code(moved) == "DENIED"
    message = moved.get_json()["errors"][0]["message"]
    assert "immutable" in message and digest_of(first) in message
    assert put("v1.0", second, env.client).status_code == 403  # admins too
    assert put("latest", first).status_code == 201 and put("latest", second).status_code == 201
    assert put(digest_of(second), second).status_code == 201  # by digest: no tag moves

    for client in (alice, env.client):
        untag = client.delete("/v2/team-a/app/manifests/v1.0")
        assert untag.status_code == 403 and "immutable" in untag.get_json()["errors"][0]["message"]
        by_digest = client.delete(f"/v2/team-a/app/manifests/{digest_of(first)}")
        assert (
            by_digest.status_code == 403 and "v1.0" in by_digest.get_json()["errors"][0]["message"]
        )
    assert env.get("team-a/app", "v1.0").headers["Docker-Content-Digest"] == digest_of(first)
    assert error_code(alice.delete("/v2/team-a/app/manifests/v9.9")) == "MANIFEST_UNKNOWN"
    assert alice.delete("/v2/team-a/app/manifests/latest").status_code == 202
    assert alice.delete(f"/v2/team-a/app/manifests/{digest_of(second)}").status_code == 202


def test_an_immutable_index_holds_its_children(env):
    child = env.image("team-a/multi", seed="arm64")
    child_digest = env.push("team-a/multi", digest_of(child), child)
    index = registry_env.dumps(
        {
            "schemaVersion": 2,
            "mediaType": manifest.OCI_INDEX,
            "manifests": [
                {"mediaType": manifest.OCI_MANIFEST, "digest": child_digest, "size": len(child)}
            ],
        }
    )
    env.push("team-a/multi", "v2", index, manifest.OCI_INDEX)
    refused = env.client.delete(f"/v2/team-a/multi/manifests/{child_digest}")
    assert refused.status_code == 403 and "v2" in refused.get_json()["errors"][0]["message"]


def test_an_immutable_image_keeps_its_blobs(env):
    """Unlinking the config or a layer of an image an immutable tag holds (an index's child
    too) broke its pulls with BLOB_UNKNOWN: refused as deleting its manifest is."""
    frozen, loose = env.image("team-a/app", seed="frozen"), env.image("team-a/app", seed="loose")
    env.push("team-a/app", "v1.0", frozen)
    env.push("team-a/app", "latest", loose)
    child = env.image("team-a/app", seed="child")
    child_digest = env.push("team-a/app", digest_of(child), child)
    index = {"mediaType": manifest.OCI_MANIFEST, "digest": child_digest, "size": len(child)}
    env.push(
        "team-a/app",
        "v2",
        registry_env.dumps(
            {"schemaVersion": 2, "mediaType": manifest.OCI_INDEX, "manifests": [index]}
        ),
        manifest.OCI_INDEX,
    )
    held = {
        json.loads(frozen)["config"]["digest"]: "v1.0",
        json.loads(frozen)["layers"][0]["digest"]: "v1.0",
        json.loads(child)["layers"][0]["digest"]: "v2",
    }
    alice = as_user(env, "alice")
    for client in (alice, env.client):
        for digest, tag in held.items():
            refused = client.delete(f"/v2/team-a/app/blobs/{digest}")
            assert refused.status_code == 403 and error_code(refused) == "DENIED"
            message = refused.get_json()["errors"][0]["message"]
            assert (
                message == f"blob {digest} of repository team-a/app is held by immutable tag {tag}"
            )
    for digest in held:
        assert alice.head(f"/v2/team-a/app/blobs/{digest}").status_code == 200
    loose_layer = json.loads(loose)["layers"][0]["digest"]
    assert alice.delete(f"/v2/team-a/app/blobs/{loose_layer}").status_code == 202


def test_a_blob_delete_reads_no_tags_where_no_tag_is_immutable(tmp_path, monkeypatch):
    loose = with_dan(
        tmp_path,
        "access: {default: [{users: [dan], actions: ['*']}], "
        "immutable: [{repositories: 'frozen/**', tags: '*'}]}",
    )
    blob = loose.seed_blob("loose/app", b"a layer")["digest"]

    def no_listing(tags: TagStore) -> list[str]:
        raise AssertionError(f"the tags of {tags.name} were read")

    monkeypatch.setattr(TagStore, "all", no_listing)
    deleted = loose.client.delete(f"/v2/loose/app/blobs/{blob}", headers=credentials("dan"))
    assert deleted.status_code == 202


def test_refusals_are_logged_with_user_repository_action_and_rule(env, caplog):
    with caplog.at_level(logging.INFO, logger="distribution.api.access"):
        as_user(env, "bob").post("/v2/team-a/app/blobs/uploads/")
        as_user(env, None).get("/v2/team-a/app/tags/list")
    records = [r for r in caplog.records if r.getMessage() == "access denied"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.INFO]
    assert records[0].fields["auth.user.name"] == "bob"
    assert records[0].fields["access.repository"] == "team-a/app"
    assert records[0].fields["access.action"] == "push"
    assert records[0].fields["access.rule"] == 'repositories["team-a/**"]'
    assert records[1].fields["auth.user.name"] == ""
    assert records[1].fields["access.action"] == "pull"


def test_decisions_are_counted(env, recorded_metrics):  # after the app, which turns them off
    def count(**labels: str) -> float:
        body, _ = metrics.exposition()
        for family in text_string_to_metric_families(body.decode()):
            for sample in family.samples:
                if sample.name == "registry_access_decisions_total" and sample.labels == labels:
                    return sample.value
        return 0.0

    denied, allowed = count(action="push", result="denied"), count(action="pull", result="allowed")
    as_user(env, "bob").post("/v2/team-a/app/blobs/uploads/")
    as_user(env, "bob").get("/v2/team-a/app/tags/list")
    assert count(action="push", result="denied") == denied + 1
    assert count(action="pull", result="allowed") == allowed + 1


def test_silly_users_follow_the_rules(tmp_path):
    silly = build_env(
        "inmemory",
        tmp_path,
        "auth: {silly: {realm: https://auth.example/token, service: reg}}\n"
        "access: {repositories: {'mine/**': [{users: [silly], actions: [pull, push]}]}}\n",
    )
    token = {"Authorization": "Bearer anything"}
    assert silly.client.post("/v2/mine/app/blobs/uploads/", headers=token).status_code == 202
    assert error_code(silly.client.get("/v2/yours/tags/list", headers=token)) == "DENIED"
    challenge = silly.client.get("/v2/mine/app/tags/list")
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].endswith('scope="repository:mine/app:pull"')
