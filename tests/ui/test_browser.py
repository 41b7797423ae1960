"""The web UI in a real browser: Debian's headless Chromium driven by Selenium, against the
registry under gunicorn with htpasswd users and the example's access rules, and images pushed
by skopeo. Saves a screenshot of each page (``UI_SCREENSHOTS``, else the test's temp dir);
``docs/ui/`` holds the current ones, shown in the README.

Nothing is downloaded: the browser and its driver are Debian's ``chromium`` and
``chromium-driver`` (tests/run.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.access.clients import push_image
from tests.access.example import RULES, write_htpasswd
from tests.e2e import images
from tests.e2e.harness import Skopeo

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 15


@pytest.fixture
def registry(tmp_path: Path, start_registry):
    htpasswd, rules = tmp_path / "htpasswd", tmp_path / "access.yml"
    write_htpasswd(htpasswd)
    rules.write_text(RULES)
    return start_registry(
        f"""
version: 0.1
log: {{level: info, accesslog: {{disabled: true}}}}
storage:
  filesystem: {{rootdirectory: {tmp_path / "data"}}}
  delete: {{enabled: true}}
  maintenance: {{uploadpurging: {{enabled: false}}}}
http:
  secret: ui-browser
auth:
  htpasswd: {{realm: Registry Realm, path: {htpasswd}}}
access:
  path: {rules}
"""
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator:
    """Headless Chromium with a fresh profile, nothing fetched from the network."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        assert os.access(path, os.X_OK), f"{path} is missing: apt-get install chromium-driver"
    profile = tempfile.mkdtemp(prefix="ui-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    directory = Path(os.environ.get("UI_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def app_image(arch: str, seed: int) -> images.Image:
    """An image with what the image page shows: entrypoint, command, environment, labels,
    ports, user, working directory and history."""
    layers = [
        images.random_layer(96 * images.KiB, seed),
        images.random_layer(24 * images.KiB, seed + 1),
    ]
    config = images._json(
        {
            "architecture": arch,
            "os": "linux",
            "created": "2026-11-20T09:30:00Z",
            "config": {
                "User": "app",
                "WorkingDir": "/srv/app",
                "Entrypoint": ["/usr/bin/tini", "--"],
                "Cmd": ["app", "serve", "--port", "8080"],
                "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "APP_ENV=production"],
                "ExposedPorts": {"8080/tcp": {}},
                "Labels": {
                    "org.opencontainers.image.source": "https://git.example.com/team-a/app",
                    "org.opencontainers.image.version": "1.4.2",
                    "description": "<script>alert('label')</script>",
                },
            },
            "history": [
                {"created": "2026-11-20T09:29:00Z", "created_by": "ADD rootfs.tar.gz /"},
                {"created": "2026-11-20T09:29:30Z", "created_by": "COPY app /usr/local/bin/app"},
                {"created": "2026-11-20T09:30:00Z", "created_by": 'CMD ["app" "serve"]',
                 "empty_layer": True},
            ],
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        }
    )  # fmt: skip
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images._descriptor(images.OCI_CONFIG, config),
        "layers": [images._descriptor(images.OCI_LAYER, layer.data) for layer in layers],
        "annotations": {"org.opencontainers.image.created": "2026-11-20T09:30:00Z"},
    }
    blobs = {images.sha256(config): config} | {layer.digest: layer.data for layer in layers}
    return images.Image(images._json(manifest), images.OCI_MANIFEST, blobs)


def sbom_for(subject: images.Image) -> images.Image:
    """An SPDX document referring to ``subject`` (OCI 1.1 referrers)."""
    empty = b"{}"
    document = json.dumps({"spdxVersion": "SPDX-2.3", "name": "app"}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": images._descriptor("application/vnd.oci.empty.v1+json", empty),
        "layers": [images._descriptor("application/spdx+json", document)],
        "subject": images._descriptor(images.OCI_MANIFEST, subject.manifest),
        "annotations": {"org.opencontainers.image.created": "2026-11-20T10:00:00Z"},
    }
    blobs = {images.sha256(empty): empty, images.sha256(document): document}
    return images.Image(images._json(manifest), images.OCI_MANIFEST, blobs)


def test_browse_delete_and_rights_in_a_real_browser(registry, browser, shots, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, WAIT)
    base = registry.url
    host = base.removeprefix("http://")

    # skopeo pushes a two-platform index under two tags, and a plain image, as alice.
    amd, arm = app_image("amd64", 301), app_image("arm64", 311)
    index = images.index([amd, arm])
    tools = images.multi_layer_image(seed=5)
    layout = tmp_path / "layout"
    images.write_oci_layout(layout, {"app": index, "tools": tools})
    skopeo = Skopeo(tmp_path / "skopeo")
    for tag in ("1.4.2", "latest"):
        skopeo.copy(f"oci:{layout}:app", f"docker://{host}/team-a/app:{tag}",
                    "--all", "--dest-creds", "alice:alice-pw")  # fmt: skip
    skopeo.copy(f"oci:{layout}:tools", f"docker://{host}/public/tools:2.0",
                "--dest-creds", "carol:carol-pw")  # fmt: skip
    alice = requests.Session()
    alice.auth = ("alice", "alice-pw")
    push_image(alice, base, "team-a/app", sbom_for(amd).digest, sbom_for(amd))

    def shot(name: str) -> None:
        browser.save_screenshot(str(shots / f"{name}.png"))

    def heading() -> str:
        return browser.find_element(By.TAG_NAME, "h1").text

    # Anonymous: only the public repository, and an invitation to sign in.
    browser.get(f"{base}/ui/")
    rows = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.repos tbody th a")]
    assert rows == ["public/tools"]

    # Sign in as alice.
    browser.find_element(By.LINK_TEXT, "Sign in").click()
    wait.until(ready.presence_of_element_located((By.ID, "username")))
    assert browser.switch_to.active_element.get_attribute("id") == "username"  # autofocus
    shot("sign-in")
    browser.find_element(By.ID, "username").send_keys("alice")
    browser.find_element(By.ID, "password").send_keys("alice-pw", Keys.ENTER)
    wait.until(ready.text_to_be_present_in_element((By.CLASS_NAME, "who"), "alice"))
    rows = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.repos tbody th a")]
    assert rows == ["public/tools", "team-a/app"]
    cookie = browser.get_cookie("registry_ui")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    # "/" jumps to the filter box; the page filters without a reload of anything else.
    ActionChains(browser).send_keys("/").perform()
    assert browser.switch_to.active_element.get_attribute("id") == "q"
    browser.switch_to.active_element.send_keys("team", Keys.ENTER)
    wait.until(ready.url_contains("q=team"))
    rows = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.repos tbody th a")]
    assert rows == ["team-a/app"]
    browser.get(f"{base}/ui/")
    shot("repositories")

    # The repository: both tags, the index's platforms, a copy button that works.
    browser.find_element(By.LINK_TEXT, "team-a/app").click()
    wait.until(ready.text_to_be_present_in_element((By.TAG_NAME, "h1"), "team-a/app"))
    tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.tags tbody th a")]
    assert sorted(tags) == ["1.4.2", "latest"]
    table = browser.find_element(By.CSS_SELECTOR, "table.tags").text
    assert "linux/amd64" in table and "linux/arm64" in table and "index" in table
    copy = browser.find_element(By.CSS_SELECTOR, ".pull button.copy")
    assert copy.is_displayed()
    copy.click()
    wait.until(lambda _: copy.text in ("Copied", "Press Ctrl+C"))
    shot("repository")

    # The index, then its amd64 image: config, history, layers, referrers, all as text.
    browser.find_element(By.LINK_TEXT, "1.4.2").click()
    wait.until(ready.presence_of_element_located((By.ID, "platforms-h")))
    shot("index")
    browser.find_element(By.LINK_TEXT, "linux/amd64").click()
    wait.until(ready.presence_of_element_located((By.ID, "config-h")))
    page = browser.find_element(By.TAG_NAME, "main").text
    for expected in ('["/usr/bin/tini", "--"]', '["app", "serve", "--port", "8080"]',
                     "APP_ENV", "8080/tcp", "/srv/app", "COPY app /usr/local/bin/app",
                     "<script>alert('label')</script>", "application/spdx+json"):  # fmt: skip
        assert expected in page, expected
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1  # the label stayed text
    shot("image")

    # Delete one of the two tags of the index: the other stays, and so does the index.
    browser.find_element(By.LINK_TEXT, "team-a/app").click()
    wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "table.tags")))
    box = browser.find_element(By.CSS_SELECTOR, "input[name=tag][value^='latest@']")
    box.click()
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    alert = wait.until(ready.alert_is_present())
    assert alert.text.startswith("Delete 1 tag?")
    alert.accept()
    wait.until(ready.text_to_be_present_in_element((By.CLASS_NAME, "notice"), "Deleted 1 tag"))
    tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.tags tbody th a")]
    assert tags == ["1.4.2"]
    assert sorted(
        json.loads(
            requests.get(f"{base}/v2/team-a/app/tags/list", auth=("alice", "alice-pw")).text
        )["tags"]
    ) == ["1.4.2"]
    shot("deleted")

    # Sign out.
    browser.find_element(By.CSS_SELECTOR, ".account button").click()
    wait.until(ready.text_to_be_present_in_element((By.CLASS_NAME, "notice"), "signed out"))
    assert browser.find_elements(By.CLASS_NAME, "who") == []

    # carol may not pull team-a: neither the repository nor its page; no delete anywhere.
    browser.get(f"{base}/ui/sign-in")
    browser.find_element(By.ID, "username").send_keys("carol")
    browser.find_element(By.ID, "password").send_keys("carol-pw", Keys.ENTER)
    wait.until(ready.text_to_be_present_in_element((By.CLASS_NAME, "who"), "carol"))
    rows = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.repos tbody th a")]
    assert "team-a/app" not in rows and "public/tools" in rows
    browser.get(f"{base}/ui/r/team-a/app")
    assert heading() == "Not found"
    browser.get(f"{base}/ui/r/public/tools")
    assert browser.find_elements(By.CSS_SELECTOR, "button.danger") == []
    assert browser.find_elements(By.CSS_SELECTOR, "input[name=tag]") == []

    # How it looks in dark mode and on a phone.
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]},
    )
    assert (
        browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        == "rgb(15, 18, 22)"
    )
    shot("repository-dark")
    browser.set_window_size(390, 844)
    browser.get(f"{base}/ui/r/public/tools/-/manifests/2.0")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the phone's screen
    shot("image-phone")

    errors = [
        entry
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "status of 404" not in entry["message"]
    ]
    assert errors == [], errors  # no script error, no Content-Security-Policy violation
