"""The usage figures after a scheduled collection that deleted untagged manifests: the next
refresh sees the repositories it changed, as it sees those a push or a delete changed, rather
than at the next full scan a day later (a quota it brought under the limit lets pushes in)."""

from __future__ import annotations

from pathlib import Path

from distribution import cli, maintenance, usage
from distribution import config as config_module
from distribution.digest import Digest
from distribution.storage.driver import create
from distribution.usage import journal
from tests.conftest import make_app
from tests.gc.content import Api, flask_send, layer
from tests.gc.test_collect import age_everything

CONFIG = """
version: 0.1
storage:
  filesystem: {{rootdirectory: {root}}}
  maintenance:
    uploadpurging: {{enabled: false}}
    gc: {{enabled: true, age: 1s, deleteuntagged: true}}
http:
  secret: test-secret
"""


def test_a_collection_that_deleted_manifests_is_seen_by_the_next_refresh(tmp_path: Path) -> None:
    root = tmp_path / "root"
    text = CONFIG.format(root=root)
    app = make_app(text)
    api = Api(flask_send(app.test_client()))
    push_moved_tag(api)
    app.extensions[usage.EXTENSION].flush()  # the pushes' notes, as a worker writes them
    age_everything(root)
    config = config_module.parse(text, {})
    driver = create("filesystem", {"rootdirectory": str(root)})
    runs = usage.Runs(config, driver)
    runs.then(runs.run(lambda: True))
    before = usage.load_report(driver)["repositories"][0]
    assert (before["name"], before["manifests"]) == ("app", 2)
    assert runs.idle()
    (job,) = [job for job in maintenance.jobs(config, driver) if job.name == "gc"]
    job.run(lambda: True)
    assert not runs.idle(), "the collection changed a repository"
    runs.then(runs.run(lambda: True))
    after = usage.load_report(driver)["repositories"][0]
    assert (after["name"], after["tags"], after["manifests"]) == ("app", 1, 1)
    assert after["bytes"] < before["bytes"]


def test_the_offline_command_notes_what_it_changed_beside_a_read_only_registry(
    tmp_path: Path,
) -> None:
    """Read-only is how the offline collection is meant to run: its note waits for the usage
    job of the registry once writable again."""
    root = tmp_path / "root"
    text = CONFIG.format(root=root)
    api = Api(flask_send(make_app(text).test_client()))
    push_moved_tag(api)
    config = tmp_path / "config.yml"
    read_only = text.replace(
        "    uploadpurging:", "    readonly: {{enabled: true}}\n    uploadpurging:"
    )
    config.write_text(read_only.replace("{{", "{").replace("}}", "}"))
    driver = create("filesystem", {"rootdirectory": str(root)})
    for entry in journal.read(driver):  # the pushes' notes, if the app wrote any
        driver.delete(entry.key)
    assert cli.main(["garbage-collect", "--delete-untagged", "--quiet", str(config)]) == 0
    noted = journal.merged(journal.read(driver)).changed
    assert list(noted) == ["app"]


def test_a_usage_section_the_command_does_not_need_stops_nothing(tmp_path: Path) -> None:
    """As the Go registry's command, the collection reads no usage section: a bad one (which
    ``serve`` refuses) leaves the collection done and no note, not a traceback."""
    root = tmp_path / "root"
    text = CONFIG.format(root=root)
    api = Api(flask_send(make_app(text).test_client()))
    old = push_moved_tag(api)
    config = tmp_path / "config.yml"
    bad = text.replace("    uploadpurging:", "    usage: {{enabled: maybe}}\n    uploadpurging:")
    config.write_text(bad.replace("{{", "{").replace("}}", "}"))
    assert cli.main(["garbage-collect", "--delete-untagged", "--quiet", str(config)]) == 0
    assert api.get_manifest("app", str(Digest.of(old)))[0] == 404


def push_moved_tag(api: Api) -> bytes:
    """``app:latest`` pushed twice: the first image (returned) is left untagged."""
    old, _ = api.image("app", [layer("old-only")], "old")
    api.push_manifest("app", "latest", old)
    new, _ = api.image("app", [layer("new")], "new")
    api.push_manifest("app", "latest", new)
    return old
