"""Every page of the web UI through the Flask client: what each user of the example's rules
sees and may do, sign-in and sessions, CSRF, escaping, pagination and the security headers."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import time

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from distribution import manifest, usage
from distribution.app import create_app
from distribution.config import parse
from distribution.storage import paths
from distribution.ui import pages, session
from distribution.ui import usage as ui_usage
from tests.access.example import write_htpasswd
from tests.api.registry_env import Env, build_env, config_text
from tests.conftest import make_certificate
from tests.ui.conftest import auth_config, basic, csrf, push_image, push_index, sign_in


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def repositories_listed(response: TestResponse) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/ui/r/([^"]+)">', text(response))


def tags_listed(response: TestResponse) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/ui/r/[^"]+/-/manifests/([^"]+)">', text(response))


def seed(env: Env) -> dict[str, str]:
    """One image in each kind of repository of the example."""
    return {
        name: push_image(env, name, "latest")
        for name in ("team-a/app", "public/tools", "other/thing")
    }


# Access rules: what each user sees -----------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "visible"),
    [
        (None, ["public/tools"]),
        ("carol", ["other/thing", "public/tools"]),
        ("bob", ["other/thing", "public/tools", "team-a/app"]),
        ("alice", ["other/thing", "public/tools", "team-a/app"]),
        ("root", ["other/thing", "public/tools", "team-a/app"]),
    ],
)
def test_the_list_shows_what_each_user_may_pull(env, user, visible):
    seed(env)
    client = sign_in(env, user) if user else env.app.test_client()
    response = client.get("/ui/")
    assert response.status_code == 200
    assert repositories_listed(response) == visible


@pytest.mark.parametrize(
    ("user", "status"),
    [(None, 303), ("carol", 404), ("bob", 200), ("alice", 200), ("root", 200)],
)
def test_a_repository_refused_is_not_found_or_asks_to_sign_in(env, user, status):
    digest = seed(env)["team-a/app"]
    client = sign_in(env, user) if user else env.app.test_client()
    for url in (
        "/ui/r/team-a/app",
        "/ui/r/team-a/app/-/manifests/latest",
        f"/ui/r/team-a/app/-/manifests/{digest}",
        f"/ui/r/team-a/app/-/manifests/{digest}/raw",
        f"/ui/r/team-a/app/-/manifests/{digest}/config",
    ):
        response = client.get(url)
        assert response.status_code == status, url
        if status == 303:
            assert response.headers["Location"].startswith("/ui/sign-in?next=")
        if status == 404:  # the same answer as for a repository that does not exist
            assert client.get("/ui/r/team-a/nothing").status_code == 404


@pytest.mark.parametrize(
    ("user", "button"),
    [("bob", False), ("carol", False), ("alice", True), ("root", True)],
)
def test_the_delete_button_only_for_who_may_delete(env, user, button):
    push_image(env, "public/tools", "latest")
    push_image(env, "team-a/app", "latest")
    client = sign_in(env, user)
    name = "team-a/app" if user in ("bob", "alice") else "public/tools"
    if user == "root":
        name = "team-a/app"
    page = text(client.get(f"/ui/r/{name}"))
    assert ("Delete selected tags" in page) is button
    assert ('name="tag" value="latest@' in page) is button


def test_anonymous_sees_public_repositories_without_signing_in(env):
    seed(env)
    client = env.app.test_client()
    page = client.get("/ui/r/public/tools")
    assert page.status_code == 200
    assert "Delete selected tags" not in text(page)
    assert 'href="/ui/sign-in?next=/ui/r/public/tools"' in text(page)


def test_without_rules_every_signed_in_user_sees_everything_and_anonymous_must_sign_in(tmp_path):
    env = build_env("inmemory", tmp_path / "root", auth_config(tmp_path, rules=False))
    env.client.environ_base["HTTP_AUTHORIZATION"] = basic("carol")
    push_image(env, "x/y", "1")
    anonymous = env.app.test_client().get("/ui/")
    assert anonymous.status_code == 303
    assert anonymous.headers["Location"] == "/ui/sign-in?next=/ui/"
    response = sign_in(env, "carol").get("/ui/r/x/y")
    assert "Delete selected tags" in text(response)


def test_an_open_registry_needs_no_sign_in(tmp_path):
    env = build_env("inmemory", tmp_path / "root")
    push_image(env, "x/y", "1")
    client = env.app.test_client()
    assert "Open registry" in text(client.get("/ui/"))
    assert "Delete selected tags" in text(client.get("/ui/r/x/y"))
    assert client.get("/ui/sign-in").headers["Location"] == "/ui/"


def test_token_auth_says_what_is_not_supported(tmp_path):
    cert, _ = make_certificate(tmp_path)
    extra = (
        "auth:\n  token: {realm: 'https://auth.example/token', service: registry, "
        f"issuer: issuer, rootcertbundle: {cert}}}\n"
    )
    env = build_env("inmemory", tmp_path / "root", extra)
    for url in ("/ui/", "/ui/r/x/y", "/ui/sign-in"):
        response = env.app.test_client().get(url)
        assert response.status_code == 501
        assert "does not support token authentication" in text(response)
    assert env.app.test_client().get("/ui/static/ui.css").status_code == 200


def test_the_ui_can_be_turned_off(tmp_path):
    env = build_env("inmemory", tmp_path / "root", "ui: {enabled: false}\n")
    response = env.app.test_client().get("/ui/")
    assert response.status_code == 404
    assert response.get_json()["errors"][0]["code"] == "UNSUPPORTED"
    assert env.app.test_client().get("/").status_code == 200
    by_variable = parse(config_text("inmemory", tmp_path), {"REGISTRY_UI_ENABLED": "false"})
    assert create_app(by_variable).test_client().get("/ui/").status_code == 404
    timeout = parse(config_text("inmemory", tmp_path) + "ui: {sessiontimeout: 30m}\n", {})
    assert timeout.ui.sessiontimeout == 1800


def test_the_ui_is_served_under_the_http_prefix(tmp_path):
    writable = build_env("inmemory", tmp_path / "root")
    push_image(writable, "x/y", "1")
    text_config = config_text("inmemory", tmp_path).replace("http:\n", "http:\n  prefix: /reg/\n")
    app = create_app(parse(text_config, {}), writable.registry)
    client = app.test_client()
    response = client.get("/reg/ui/")
    assert response.status_code == 200
    assert 'href="/reg/ui/r/x/y"' in text(response)
    assert 'href="/reg/ui/static/ui.css?v=' in text(response)
    assert client.get("/reg/ui/r/x/y/-/manifests/1").status_code == 200
    assert client.get("/").status_code == 200
    assert client.get("/ui/").status_code == 404


# Signing in and out, sessions -----------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(env):
    push_image(env, "team-a/app", "latest")
    client = env.app.test_client()
    page = client.get("/ui/sign-in?next=/ui/r/team-a/app")
    assert page.status_code == 200
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS test
    response = client.post(
        "/ui/sign-in",
        data={
            "username": "alice",
            "password": "alice-pw",
            "csrf": csrf(page),
            "next": "/ui/r/team-a/app",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/r/team-a/app"
    assert "Max-Age=43200" in response.headers["Set-Cookie"]
    home = client.get("/ui/r/team-a/app")
    assert '<span class="who" title="Signed in">alice</span>' in text(home)
    response = client.post("/ui/sign-out", data={"csrf": csrf(home)})
    assert response.status_code == 303
    after = client.get("/ui/")
    assert "You are signed out." in text(after)
    assert "team-a/app" not in repositories_listed(after)
    assert "You are signed out." not in text(client.get("/ui/"))  # shown once


def test_wrong_password_is_refused_and_says_so(env):
    client = env.app.test_client()
    page = client.get("/ui/sign-in")
    for user, password in (("alice", "wrong"), ("nobody", "x"), ("", "")):
        response = client.post(
            "/ui/sign-in", data={"username": user, "password": password, "csrf": csrf(page)}
        )
        assert response.status_code == 401
        assert "Wrong user name or password." in text(response)
        assert "registry_ui=" not in response.headers.get("Set-Cookie", "")


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/ui/",
        "/\\evil.example",
        "http:/ui/",
        "/v2/_catalog",
        "javascript:alert(1)",
        "/ui/\r\nLocation: https://evil.example",
    ],
)
def test_no_open_redirect_after_sign_in(env, target):
    client = env.app.test_client()
    page = client.get("/ui/sign-in")
    response = client.post(
        "/ui/sign-in",
        data={"username": "bob", "password": "bob-pw", "csrf": csrf(page), "next": target},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/ui/"


def test_a_session_ends_when_the_password_changes(env, tmp_path):
    push_image(env, "team-a/app", "latest")
    client = sign_in(env, "bob")
    assert client.get("/ui/r/team-a/app").status_code == 200
    htpasswd = tmp_path / "htpasswd"
    time.sleep(0.01)
    write_htpasswd(htpasswd)  # new hashes, new salts: every entry changes
    assert client.get("/ui/r/team-a/app").status_code == 303


def test_a_forged_or_expired_session_counts_as_no_session(env):
    push_image(env, "team-a/app", "latest")
    ui = env.app.extensions["distribution.ui"]
    entry = ui.signin.entry("root")
    client = env.app.test_client()
    assert entry
    for value in (
        "garbage",
        session.Sessions("another-secret", 3600).dump(session.Session.new("root", entry)),
        ui.sessions.dump(session.Session.new("root", "not-the-entry")),
    ):
        client.set_cookie(session.COOKIE, value, path="/ui/")
        assert client.get("/ui/r/team-a/app").status_code == 303
    client.set_cookie(
        session.COOKIE, ui.sessions.dump(session.Session.new("root", entry)), path="/ui/"
    )
    assert client.get("/ui/r/team-a/app").status_code == 200
    ui.sessions.timeout = -1  # every session is now past its time
    assert client.get("/ui/r/team-a/app").status_code == 303


def test_a_session_ends_its_timeout_after_sign_in_however_often_it_is_reissued(env):
    """Each notice re-issues the cookie; the sign-in's time goes with it unchanged, so a
    session kept busy (or a stolen copy of its cookie) still ends ``ui.sessiontimeout`` after
    the sign-in, and each cookie's Max-Age is the time left."""
    push_image(env, "team-a/app", "latest")
    timeout = 3
    env.app.extensions["distribution.ui"].sessions.timeout = timeout
    alice = sign_in(env, "alice")
    signed_in = time.monotonic()
    max_ages = []
    while time.monotonic() - signed_in < timeout + 1:  # bounded: about 4 s
        early = time.monotonic() - signed_in < timeout - 1
        page = alice.get("/ui/r/team-a/app")
        assert page.status_code == 200 or not early
        if page.status_code == 200:  # an empty delete form: a notice, so a new cookie
            posted = alice.post("/ui/r/team-a/app/-/delete", data={"csrf": csrf(page)})
            for response in (page, posted):
                cookie = response.headers.get("Set-Cookie", "")
                if early and "registry_ui=" in cookie:
                    max_ages.append(int(re.search(r"Max-Age=(-?\d+)", cookie).group(1)))
        time.sleep(0.25)
    assert alice.get("/ui/r/team-a/app").status_code == 303  # to the sign-in
    assert max_ages and max(max_ages) <= timeout and min(max_ages) < timeout


def test_the_cookie_is_secure_behind_a_tls_proxy(env):
    client = env.app.test_client()
    response = client.get("/ui/sign-in", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]


def test_a_link_from_another_site_reloads_to_send_the_strict_cookie(env):
    client = env.app.test_client()
    headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    response = client.get("/ui/r/public/tools", headers=headers)
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="0">' in text(response)


# CSRF -------------------------------------------------------------------------------------------


def test_every_form_needs_its_csrf_token(env):
    push_image(env, "team-a/app", "latest")
    alice = sign_in(env, "alice")
    page = alice.get("/ui/r/team-a/app")
    value = re.search(r'name="tag" value="([^"]+)"', text(page)).group(1)
    posts = [
        ("/ui/r/team-a/app/-/delete", {"tag": value, "confirm": "yes"}),
        ("/ui/sign-out", {}),
    ]
    for url, data in posts:
        for token in (None, "", "0" * 64):
            form = dict(data)
            if token is not None:
                form["csrf"] = token
            response = alice.post(url, data=form)
            assert response.status_code == 403, url
            assert "did not come from this site" in text(response)
    cross = alice.post(
        "/ui/r/team-a/app/-/delete",
        data={"tag": value, "confirm": "yes", "csrf": csrf(page)},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert cross.status_code == 403
    # A token from another session does not do either.
    other = sign_in(env, "alice").get("/ui/r/team-a/app")
    response = alice.post(
        "/ui/r/team-a/app/-/delete", data={"tag": value, "confirm": "yes", "csrf": csrf(other)}
    )
    assert response.status_code == 403
    assert "latest" in tags_listed(alice.get("/ui/r/team-a/app"))
    # A sign-in form needs it too.
    fresh = env.app.test_client()
    fresh.get("/ui/sign-in")
    response = fresh.post("/ui/sign-in", data={"username": "bob", "password": "bob-pw"})
    assert response.status_code == 403


# Deleting tags -----------------------------------------------------------------------------------


def delete(client: FlaskClient, name: str, values: list[str], confirm: bool = True):
    page = client.get(f"/ui/r/{name}")
    data = {"tag": values, "csrf": csrf(page)}
    if confirm:
        data["confirm"] = "yes"
    return client.post(f"/ui/r/{name}/-/delete", data=data)


def test_deleting_tags_removes_only_those_tags(env):
    digest = push_image(env, "team-a/app", "one")
    env.client.put(
        "/v2/team-a/app/manifests/two",
        data=env.get("team-a/app", "one").get_data(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    other = push_image(env, "team-a/app", "three", seed="another")
    alice = sign_in(env, "alice")
    confirm = delete(alice, "team-a/app", [f"one@{digest}", f"three@{other}"], confirm=False)
    assert confirm.status_code == 200
    assert "Delete 2 tags of team-a/app?" in text(confirm)
    assert sorted(tags_listed(alice.get("/ui/r/team-a/app"))) == ["one", "three", "two"]
    response = delete(alice, "team-a/app", [f"one@{digest}", f"three@{other}"])
    assert response.status_code == 303
    page = alice.get("/ui/r/team-a/app")
    assert "Deleted 2 tag(s): one, three." in text(page)
    assert tags_listed(page) == ["two"]
    # The manifest "one" pointed at is still there for "two", and by digest.
    assert env.get("team-a/app", "two").status_code == 200
    assert env.get("team-a/app", digest).status_code == 200
    assert env.get("team-a/app", other).status_code == 200  # untagged, left to GC


def test_a_tag_deleted_in_the_ui_is_noted_for_the_usage_job(env):
    """As the API's tag delete does: the next incremental usage run reads the repository
    again, so /v2/_usage counts the tags left, not those of the last full scan."""
    one = push_image(env, "team-a/app", "one")
    push_image(env, "team-a/app", "two", seed="two")
    journal = env.app.extensions[usage.EXTENSION]
    journal.flush()  # the pushes, noted
    usage.refresh(env.registry.driver)  # the full scan: two tags
    response = delete(sign_in(env, "alice"), "team-a/app", [f"one@{one}"])
    assert response.status_code == 303
    journal.flush()
    assert not usage.refresh(env.registry.driver).full
    row = env.client.get("/v2/_usage?repository=team-a/app").get_json()["repository"]
    assert row["tags"] == 1


def test_a_large_delete_names_a_few_tags_so_the_cookie_stays_small(env):
    """The notice travels in the session cookie: naming 150 long tags would pass the 4 KB a
    browser keeps (and nginx's default header buffer: a 502 although the delete happened)."""
    body = env.get("team-a/app", push_image(env, "team-a/app", "first")).get_data()
    tags = ["first"] + [hashlib.sha512(str(i).encode()).hexdigest() for i in range(149)]
    for tag in tags[1:]:
        env.push("team-a/app", tag, body)
    digest = env.get("team-a/app", "first").headers["Docker-Content-Digest"]
    alice = sign_in(env, "alice")
    response = delete(alice, "team-a/app", [f"{tag}@{digest}" for tag in tags])
    assert response.status_code == 303
    assert len(response.headers["Set-Cookie"]) < 2048
    page = text(alice.get("/ui/r/team-a/app"))
    assert re.search(r"Deleted 150 tag\(s\): first, [0-9a-f]{128}, .* and 1\d\d more\.", page)
    assert env.client.get("/v2/team-a/app/tags/list").get_json()["tags"] in (None, [])


def test_notices_not_shown_yet_are_capped_so_the_cookie_stays_small(env):
    """A client posting forms without following the redirects that show their notices keeps
    only the last few: its cookie stops growing."""
    push_image(env, "team-a/app", "latest")
    alice = sign_in(env, "alice")
    token = csrf(alice.get("/ui/r/team-a/app"))
    sizes = []
    for _ in range(30):
        posted = alice.post("/ui/r/team-a/app/-/delete", data={"csrf": token})
        assert posted.status_code == 303
        sizes.append(len(posted.headers["Set-Cookie"]))
    assert max(sizes) == sizes[-1] == sizes[5]  # it grew for the first few, then no more
    page = text(alice.get("/ui/r/team-a/app"))
    assert page.count("No tags were selected.") == session.MAX_NOTICES


def test_a_tag_that_moved_since_the_page_was_shown_is_kept(env):
    old = push_image(env, "team-a/app", "latest")
    alice = sign_in(env, "alice")
    page = alice.get("/ui/r/team-a/app")
    push_image(env, "team-a/app", "latest", seed="new")
    response = alice.post(
        "/ui/r/team-a/app/-/delete",
        data={"tag": f"latest@{old}", "csrf": csrf(page), "confirm": "yes"},
    )
    assert response.status_code == 303
    page = alice.get("/ui/r/team-a/app")
    assert "Kept 1 tag(s): latest (moved to sha256:" in text(page)
    assert tags_listed(page) == ["latest"]


def test_immutable_tags_have_no_checkbox_and_are_kept(env):
    digest = push_image(env, "team-a/app", "v1.0")
    push_image(env, "team-a/app", "latest", seed="x")
    root = sign_in(env, "root")
    page = text(root.get("/ui/r/team-a/app"))
    assert 'value="v1.0@' not in page
    assert 'title="Immutable (immutable[0]): it cannot be deleted"' in page
    response = delete(root, "team-a/app", [f"v1.0@{digest}"])
    assert response.status_code == 303
    assert "Kept 1 tag(s): v1.0 (immutable)." in text(root.get("/ui/r/team-a/app"))
    assert env.get("team-a/app", "v1.0").status_code == 200


def test_deleting_needs_the_delete_grant(env):
    digest = push_image(env, "team-a/app", "latest")
    bob = sign_in(env, "bob")  # pull only
    page = bob.get("/ui/r/public/tools")  # any page: for a token of bob's session
    response = bob.post(
        "/ui/r/team-a/app/-/delete",
        data={"tag": f"latest@{digest}", "csrf": csrf(page), "confirm": "yes"},
    )
    assert response.status_code == 403
    assert "You may not delete tags here." in text(response)
    carol = sign_in(env, "carol")  # may not even see it
    page = carol.get("/ui/")
    response = carol.post(
        "/ui/r/team-a/app/-/delete",
        data={"tag": f"latest@{digest}", "csrf": csrf(page), "confirm": "yes"},
    )
    assert response.status_code == 404
    assert env.get("team-a/app", "latest").status_code == 200


def test_deleting_is_off_when_the_registry_says_so(tmp_path):
    for extra in ({"delete": False}, {"readonly": True}):
        env = build_env("inmemory", tmp_path / "root", **extra)
        if "readonly" in extra:
            writable = build_env("inmemory", tmp_path / "root")
            env = build_env("inmemory", tmp_path / "root", share=writable, **extra)
            digest = push_image(writable, "x/y", "1")
        else:
            digest = push_image(env, "x/y", "1")
        client = env.app.test_client()
        page = client.get("/ui/r/x/y")
        assert "Delete selected tags" not in text(page)
        response = client.post(
            "/ui/r/x/y/-/delete", data={"tag": f"1@{digest}", "csrf": csrf(page), "confirm": "yes"}
        )
        assert response.status_code == 403
        assert env.get("x/y", "1").status_code == 200


def test_a_pull_through_cache_offers_no_delete_and_refuses_one(tmp_path):
    """As the API answers 405 UNSUPPORTED to deletes in proxy mode (as Go does), the UI
    offers none and refuses one: what a pull-through cache holds is the upstream's."""
    writable = build_env("filesystem", tmp_path / "root", auth_config(tmp_path))
    writable.client.environ_base["HTTP_AUTHORIZATION"] = basic("root")
    digest = push_image(writable, "team-a/app", "latest")
    extra = auth_config(tmp_path) + "proxy: {remoteurl: 'http://127.0.0.1:9'}\n"
    proxy = build_env("filesystem", tmp_path / "root", extra, share=writable)
    root = sign_in(proxy, "root")
    page = root.get("/ui/r/team-a/app")
    assert tags_listed(page) == ["latest"]
    assert "Delete selected tags" not in text(page) and "Delete repository…" not in text(page)
    assert "pull-through cache" in text(page)
    posts = [
        ("/ui/r/team-a/app/-/delete", {"tag": f"latest@{digest}"}),
        ("/ui/r/team-a/app/-/delete-repository", {}),
    ]
    for url, data in posts:
        response = root.post(url, data=data | {"csrf": csrf(page), "confirm": "yes"})
        assert response.status_code == 403
        assert "pull-through cache" in text(response)
    assert writable.get("team-a/app", "latest").status_code == 200


def test_nothing_chosen_deletes_nothing(env):
    push_image(env, "team-a/app", "latest")
    alice = sign_in(env, "alice")
    response = delete(alice, "team-a/app", ["not a tag@x", "latest@sha256:short"])
    assert response.status_code == 303
    page = alice.get("/ui/r/team-a/app")
    assert "No tags were selected." in text(page)
    assert tags_listed(page) == ["latest"]


# Pages: content, escaping, pagination ---------------------------------------------------------


def test_the_image_page_shows_config_history_layers_and_annotations(env):
    config = {
        "config": {
            "Entrypoint": ["/bin/tini", "--"],
            "Cmd": ["serve", "--port", "8080"],
            "Env": ["PATH=/usr/bin", "MODE=prod"],
            "Labels": {"org.opencontainers.image.source": "https://git.example/app"},
            "ExposedPorts": {"8080/tcp": {}},
            "User": "app",
            "WorkingDir": "/srv",
        },
        "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "RUN make build"}],
    }
    digest = push_image(env, "public/tools", "1.0", config, {"team": "tools"}, layers=2)
    page = text(sign_in(env, "carol").get("/ui/r/public/tools/-/manifests/1.0"))
    for expected in (
        digest,
        "application/vnd.oci.image.manifest.v1+json",
        "linux/amd64",
        "[&#34;/bin/tini&#34;, &#34;--&#34;]",
        "[&#34;serve&#34;, &#34;--port&#34;, &#34;8080&#34;]",
        "<code>MODE</code>",
        "<code>8080/tcp</code>",
        "<code>app</code>",
        "<code>/srv</code>",
        "RUN make build",
        "<code>team</code>",
        'href="https://git.example/app" rel="noopener noreferrer nofollow"',
        f"docker pull localhost/public/tools@{digest}",
        "2026-03-04 05:06:07 UTC",
    ):
        assert expected in page, expected
    assert page.count('<code class="small">application/vnd.oci.image.layer.v1.tar+gzip<') == 2
    raw = sign_in(env, "carol").get(f"/ui/r/public/tools/-/manifests/{digest}/raw")
    assert raw.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert raw.get_data() == env.get("public/tools", digest).get_data()
    config_digest = env.get("public/tools", digest).get_json()["config"]["digest"]
    raw = sign_in(env, "carol").get("/ui/r/public/tools/-/manifests/1.0/config")
    assert raw.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert raw.get_data() == env.client.get(f"/v2/public/tools/blobs/{config_digest}").get_data()


def test_times_beyond_what_python_dates_hold_show_as_unknown(env):
    """A config's times at the ends of the calendar with a zone (year 1 at +01:00, year 9999
    at -01:00) fall outside what a UTC datetime holds: unknown times, not a 500."""
    config = {
        "created": "0001-01-01T00:00:00+01:00",
        "history": [
            {"created": "9999-12-31T23:59:59-01:00", "created_by": "RUN far future"},
            {"created": "2026-01-02T03:04:05Z", "created_by": "RUN make build"},
        ],
    }
    push_image(env, "public/tools", "odd", config)
    client = env.app.test_client()
    tags = client.get("/ui/r/public/tools")
    assert tags.status_code == 200
    assert tags_listed(tags) == ["odd"]
    page = client.get("/ui/r/public/tools/-/manifests/odd")
    assert page.status_code == 200
    assert "RUN far future" in text(page) and "2026-01-02 03:04:05 UTC" in text(page)


def test_a_repository_without_tags_is_shown_empty(env):
    digest = push_image(env, "public/untagged", "t")
    env.client.delete("/v2/public/untagged/manifests/t")
    client = env.app.test_client()
    page = client.get("/ui/r/public/untagged")
    assert page.status_code == 200
    assert "This repository has no tags." in text(page)
    assert client.get(f"/ui/r/public/untagged/-/manifests/{digest}").status_code == 200
    env.registry.driver.delete(paths.tags("public/untagged"))  # as if pushed by digest only
    page = client.get("/ui/r/public/untagged")
    assert page.status_code == 200
    assert "This repository has no tags." in text(page)


def test_labels_and_annotations_are_shown_as_text_never_as_html(env):
    evil = '<script>alert("x")</script>'
    config = {
        "config": {
            "Labels": {evil: evil, "org.opencontainers.image.url": "javascript:alert(1)"},
            "Env": [f"X={evil}"],
            "Cmd": [evil],
        },
        "history": [{"created_by": evil}],
    }
    push_image(env, "public/evil", "t", config, {"a": '"><img src=x onerror=alert(1)>'})
    client = env.app.test_client()
    for url in ("/ui/r/public/evil/-/manifests/t", "/ui/r/public/evil", "/ui/?q=%3Cscript%3E"):
        page = text(client.get(url))
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert 'href="javascript:' not in page
    page = text(client.get("/ui/r/public/evil/-/manifests/t"))
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in page


def test_hidden_characters_are_spelled_out_and_never_disguise_a_link(env):
    flipped = "http://example.com/\u202etxt.exe"  # reads as http://example.com/exe.txt
    labels = {"org.opencontainers.image.source": flipped}
    config = {"config": {"Labels": labels, "User": "a\u2066b"}}
    push_image(env, "public/bidi", "t", config, {"org.opencontainers.image.url": flipped})
    page = text(env.app.test_client().get("/ui/r/public/bidi/-/manifests/t"))
    for hidden in ("\u202e", "\u2066"):
        assert hidden not in page
    assert "http://example.com/[U+202E]txt.exe" in page
    assert "a[U+2066]b" in page
    assert 'href="http://example.com/' not in page  # shown as text, never as a link


def test_an_index_lists_its_platforms_and_links_them(env):
    amd = push_image(env, "public/multi", "amd", seed="a")
    arm = push_image(env, "public/multi", "arm", {"architecture": "arm64"}, seed="b")
    index = push_index(env, "public/multi", "latest", {amd: "amd64", arm: "arm64"})
    client = env.app.test_client()
    table = text(client.get("/ui/r/public/multi"))
    assert '<span class="kind kind-index">index</span>' in table
    assert "linux/arm64" in table
    page = text(client.get("/ui/r/public/multi/-/manifests/latest"))
    assert f'href="/ui/r/public/multi/-/manifests/{amd}?index={index}">linux/amd64' in page
    child = text(client.get(f"/ui/r/public/multi/-/manifests/{arm}?index={index}"))
    assert f'href="/ui/r/public/multi/-/manifests/{index}">index sha256:' in child


def test_an_index_shows_only_the_children_its_repository_holds(tmp_path):
    """With ``validation.manifests.indexes.platforms: none`` an index may name manifests of
    another repository: their details (platform, size, created) show nowhere in this one."""
    extra = auth_config(tmp_path) + "validation: {manifests: {indexes: {platforms: none}}}\n"
    env = build_env("filesystem", tmp_path / "root", extra)
    env.client.environ_base["HTTP_AUTHORIZATION"] = basic("root")
    secret_config = {"architecture": "s390x", "created": "2001-02-03T04:05:06Z"}
    secret = push_image(env, "team-a/secret", "1", secret_config, layers=3)
    mine = push_image(env, "public/multi", "amd", {"created": "2024-05-06T07:08:09Z"})
    entries = []
    for name, digest in (("team-a/secret", secret), ("public/multi", mine)):
        size = len(env.get(name, digest).get_data())
        entries.append({"mediaType": manifest.OCI_MANIFEST, "digest": digest, "size": size})
    index = json.dumps({"schemaVersion": 2, "mediaType": manifest.OCI_INDEX, "manifests": entries})
    env.push("public/multi", "latest", index.encode(), manifest.OCI_INDEX)
    client = env.app.test_client()  # anonymous: may pull public/*, not team-a/*
    pages_shown = [
        text(client.get("/ui/r/public/multi")),
        text(client.get("/ui/r/public/multi/-/manifests/latest")),
        text(client.get("/ui/")),
    ]
    assert "linux/amd64" in pages_shown[0] and "2024-05-06 07:08:09 UTC" in pages_shown[1]
    for page in pages_shown:
        assert "s390x" not in page and "2001-02-03" not in page
    secret_size = env.app.extensions["distribution.ui"].view.summary("team-a/secret", secret).size
    assert f">{pages.human_size(secret_size)}<" not in pages_shown[1]


def test_referrers_are_grouped_by_artifact_type_and_linked_both_ways(env):
    subject = push_image(env, "public/signed", "latest")
    body = env.get("public/signed", subject).get_data()
    descriptor = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": subject,
        "size": len(body),
    }
    sbom = push_image(
        env,
        "public/signed",
        "sbom",
        subject=descriptor,
        artifact_type="application/spdx+json",
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    )
    client = env.app.test_client()
    page = text(client.get("/ui/r/public/signed/-/manifests/latest"))
    assert "<code>application/spdx+json</code>" in page
    assert f'href="/ui/r/public/signed/-/manifests/{sbom}"' in page
    back = text(client.get(f"/ui/r/public/signed/-/manifests/{sbom}"))
    assert f'href="/ui/r/public/signed/-/manifests/{subject}"' in back
    assert '<span class="kind kind-artifact"' in back


def test_cosign_tag_scheme_signatures_are_listed(env):
    subject = push_image(env, "public/cosigned", "latest")
    push_image(env, "public/cosigned", subject.replace(":", "-") + ".sig", seed="signature")
    page = text(env.app.test_client().get("/ui/r/public/cosigned/-/manifests/latest"))
    assert "cosign signature (tag sha256-" in page


def test_tags_paginate_sort_and_filter(env, monkeypatch):
    monkeypatch.setattr(pages, "TAGS_PER_PAGE", 4)
    names = ["v1.10", "v1.9", "v1.2", "v1.0-rc1", "v1.0", "latest", "v2"]
    digests = {}
    for tag in names:
        digests[tag] = push_image(env, "public/tools", tag, seed=tag)
        time.sleep(0.01)  # distinct push times
    client = env.app.test_client()
    first = client.get("/ui/r/public/tools")
    assert tags_listed(first) == ["v2", "latest", "v1.0", "v1.0-rc1"]  # newest first
    assert tags_listed(client.get("/ui/r/public/tools?page=2")) == ["v1.2", "v1.9", "v1.10"]
    assert tags_listed(client.get("/ui/r/public/tools?sort=name")) == [
        "latest", "v1.0-rc1", "v1.0", "v1.2",
    ]  # fmt: skip
    assert tags_listed(client.get("/ui/r/public/tools?sort=-name&page=1")) == [
        "v2", "v1.10", "v1.9", "v1.2",
    ]  # fmt: skip
    assert tags_listed(client.get("/ui/r/public/tools?sort=pushed&page=2")) == [
        "v1.0", "latest", "v2",
    ]  # fmt: skip
    assert tags_listed(client.get("/ui/r/public/tools?q=1.&sort=name")) == [
        "v1.0-rc1", "v1.0", "v1.2", "v1.9",
    ]  # fmt: skip
    assert tags_listed(client.get("/ui/r/public/tools?page=99&sort=bogus")) == [
        "v1.2", "v1.9", "v1.10",
    ]  # fmt: skip
    page = text(first)
    assert 'rel="next" href="/ui/r/public/tools?page=2&amp;sort=-pushed"' in page
    assert "Showing 1\u20134 of 7" in page


def test_repositories_paginate_filter_and_group_by_namespace(env, monkeypatch):
    monkeypatch.setattr(pages, "REPOSITORIES_PER_PAGE", 3)
    names = ["public/a", "public/b", "public/c/d", "public/e", "solo", "team-a/x"]
    for name in names:
        push_image(env, name, "1")
    root = sign_in(env, "root")
    assert repositories_listed(root.get("/ui/")) == ["public/a", "public/b", "public/c/d"]
    assert repositories_listed(root.get("/ui/?page=2")) == ["public/e", "solo", "team-a/x"]
    assert repositories_listed(root.get("/ui/?q=C/D")) == ["public/c/d"]
    assert repositories_listed(root.get("/ui/?ns=team-a")) == ["team-a/x"]
    assert repositories_listed(root.get("/ui/?ns=")) == ["solo"]
    assert repositories_listed(root.get("/ui/?ns=public&page=2")) == ["public/e"]
    page = text(root.get("/ui/"))
    assert '<a href="/ui/?ns=public">public <span class="count">4</span></a>' in page
    assert "(top level)" in page
    assert 'href="/ui/?page=2"' in page
    assert "No repository matches “zzz”." in text(root.get("/ui/?q=zzz"))


def test_the_repository_list_shows_tags_last_push_and_size(env):
    push_image(env, "public/a", "1", layers=2)
    push_image(env, "public/a", "2", layers=2, seed="other")
    page = text(env.app.test_client().get("/ui/"))
    row = page[page.index('href="/ui/r/public/a"') :]
    cells = re.findall(r'<td class="num">([^<]*)', row)
    assert cells[0] == "2"
    assert cells[1].endswith(" B") or cells[1].endswith("kB")
    assert "just now" in row[: row.index("</tr>")]


def test_unknown_pages_and_bad_references_are_html_not_found(env):
    push_image(env, "public/tools", "1")
    client = env.app.test_client()
    for url in (
        "/ui/nothing/here",
        "/ui/r/public/tools/-/manifests/nope",
        "/ui/r/public/tools/-/manifests/sha256:" + "0" * 64,
        "/ui/r/public/tools/-/manifests/sha256:bad",
        "/ui/r/public/nothing",
        "/ui/r/Bad..Name",
    ):
        response = client.get(url)
        assert response.status_code in (404, 400), url
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


def test_every_page_has_a_strict_content_security_policy_and_no_inline_script(env):
    push_image(env, "public/tools", "1")
    client = env.app.test_client()
    for url in ("/ui/", "/ui/r/public/tools", "/ui/r/public/tools/-/manifests/1", "/ui/sign-in"):
        response = client.get(url)
        assert response.status_code == 200
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
        page = text(response)
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
        assert re.search(r"<[^>]+\son[a-z]+=", page) is None
        assert 'style="' not in page


def test_static_files_are_cached_by_version(env):
    client = env.app.test_client()
    page = text(client.get("/ui/sign-in"))
    url = re.search(r'href="(/ui/static/ui\.css\?v=[0-9a-f]+)"', page).group(1)
    response = client.get(url)
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert client.get("/ui/static/ui.css").headers["Cache-Control"] == "no-cache"
    again = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/ui/static/nothing.js").status_code == 404


def test_the_registry_root_stays_200_and_links_browsers_to_the_ui(env):
    for accept in (None, "*/*", "application/json"):
        response = env.app.test_client().get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200
        assert response.get_data() == b""
    browser = env.app.test_client().get("/", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.status_code == 200
    assert '<a href="/ui/">Browse it</a>' in text(browser)
    assert browser.headers["Cache-Control"] == "no-cache"
    assert env.app.test_client().head("/", headers={"Accept": "text/html"}).status_code == 200


def test_the_pull_command_uses_the_host_clients_reach(env):
    push_image(env, "public/tools", "1")
    page = env.app.test_client().get(
        "/ui/r/public/tools", headers={"X-Forwarded-Host": "registry.example.com"}
    )
    assert "docker pull registry.example.com/public/tools:1" in text(page)


def test_stored_bytes_come_from_the_usage_report(env):
    push_image(env, "team-a/app", "latest", layers=2)
    push_image(env, "team-a/other", "latest", layers=2)
    root = sign_in(env, "root")
    assert "own ·" not in text(root.get("/ui/"))  # no report yet: only what the UI knows
    usage.refresh(env.registry.driver)
    env.app.extensions[ui_usage.EXTENSION]._checked = -ui_usage.REFRESH  # look again now
    report = usage.load_report(env.registry.driver)
    own = {row["name"]: row["exclusive_bytes"] for row in report["repositories"]}
    page = text(root.get("/ui/"))
    assert f"{pages.human_size(own['team-a/app'])} own · 0 B shared" in page
    total = report["total"]["exclusive_bytes"] + report["total"]["shared_bytes"]
    assert f"{pages.human_size(total)} stored" in page
    # A damaged report: the figures last read stay, with a warning, and the page still works.
    env.registry.driver.put_content(paths.USAGE_REPORT, gzip.compress(b'{"repositories": [{}]}'))
    env.app.extensions[ui_usage.EXTENSION]._checked = -ui_usage.REFRESH
    assert f"{pages.human_size(own['team-a/app'])} own · 0 B shared" in text(root.get("/ui/"))


def test_only_who_may_see_everything_sees_the_registry_total(env):
    """As /v2/_usage gives the total to admins only: the others see the figures of the
    repositories they may pull, not what the whole registry stores."""
    push_image(env, "team-a/app", "latest", layers=2)
    push_image(env, "public/tools", "latest")
    usage.refresh(env.registry.driver)
    env.app.extensions[ui_usage.EXTENSION]._checked = -ui_usage.REFRESH  # look again now
    assert " stored</p>" in text(sign_in(env, "root").get("/ui/"))
    for client in (sign_in(env, "carol"), sign_in(env, "alice"), env.app.test_client()):
        page = text(client.get("/ui/"))
        assert "own ·" in page and " stored</p>" not in page


def test_an_admin_deletes_a_whole_repository(env):
    push_image(env, "team-a/app", "latest")
    push_image(env, "team-a/app", "1.0", seed="other")
    push_image(env, "team-a/app/sub", "latest")
    alice = sign_in(env, "alice")
    page = alice.get("/ui/r/team-a/app")
    assert "Delete repository…" in text(page)
    confirm = alice.post("/ui/r/team-a/app/-/delete-repository", data={"csrf": csrf(page)})
    assert confirm.status_code == 200
    assert "Delete the repository team-a/app?" in text(confirm)
    assert env.get("team-a/app", "latest").status_code == 200  # nothing gone yet
    assert "team-a/app" in repositories_listed(alice.get("/ui/"))
    response = alice.post(
        "/ui/r/team-a/app/-/delete-repository", data={"csrf": csrf(confirm), "confirm": "yes"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/ui/")
    listing = alice.get("/ui/")
    assert "Deleted team-a/app: 2 tag(s) and 2 manifest(s)." in text(listing)
    assert repositories_listed(listing) == ["team-a/app/sub"]
    assert env.client.get("/v2/_catalog").get_json()["repositories"] == ["team-a/app/sub"]
    assert env.client.get("/v2/team-a/app/tags/list").status_code == 404
    assert env.get("team-a/app/sub", "latest").status_code == 200
    assert alice.get("/ui/r/team-a/app").status_code == 404


def test_deleting_a_repository_needs_the_grant_the_token_and_no_immutable_tag(env):
    push_image(env, "team-a/app", "latest")
    bob = sign_in(env, "bob")  # pull only
    page = bob.get("/ui/r/team-a/app")
    assert "Delete repository…" not in text(page)
    response = bob.post(
        "/ui/r/team-a/app/-/delete-repository",
        data={"csrf": csrf(bob.get("/ui/")), "confirm": "yes"},
    )
    assert response.status_code == 403
    assert "You may not delete tags here." in text(response)
    alice = sign_in(env, "alice")
    response = alice.post("/ui/r/team-a/app/-/delete-repository", data={"confirm": "yes"})
    assert response.status_code == 403  # no CSRF token
    push_image(env, "team-a/app", "v1.0", seed="release")
    page = alice.get("/ui/r/team-a/app")
    response = alice.post(
        "/ui/r/team-a/app/-/delete-repository", data={"csrf": csrf(page), "confirm": "yes"}
    )
    assert response.status_code == 403
    assert "holds immutable tags: v1.0" in text(response)
    assert env.get("team-a/app", "latest").status_code == 200
