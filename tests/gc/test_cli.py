"""``registry garbage-collect --online``: the command beside a running registry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from distribution import maintenance
from distribution.storage import paths
from distribution.storage.driver import create
from tests.conftest import free_port, make_app
from tests.gc.content import Api, flask_send, push_scenario, stored_blobs
from tests.gc.test_collect import CONFIG, age_everything


def run(config: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "distribution", "garbage-collect", *flags, str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_online_command_takes_the_lease_and_collects(tmp_path: Path) -> None:
    root = tmp_path / "root"
    text = CONFIG.format(root=root)
    scenario = push_scenario(Api(flask_send(make_app(text).test_client())))
    config = tmp_path / "config.yml"
    config.write_text(text.replace("{{", "{").replace("}}", "}"))
    young = run(config, "--online", "--grace-period", "1h")
    assert young.returncode == 0, young.stderr
    assert (
        "0 blobs deleted" in young.stdout
        and f"{len(scenario.garbage)} blobs spared" in young.stdout
    )
    age_everything(root)
    holder = maintenance.StorageLease(create("filesystem", {"rootdirectory": str(root)}), "other")
    assert holder.acquire()
    refused = run(config, "--online", "--grace-period", "2s")
    assert refused.returncode == 1
    assert "another registry holds the maintenance lease" in refused.stderr
    holder.release()
    before = stored_blobs(root)
    done = run(config, "--online", "-q", "--grace-period", "2s")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert set(before) - set(stored_blobs(root)) == scenario.garbage
    assert not (root / "docker/registry/v2/_maintenance/leases/all").exists()


def test_online_command_says_when_the_lease_cannot_be_taken(tmp_path: Path) -> None:
    """With Redis down, the command says so rather than blame another registry."""
    config = tmp_path / "config.yml"
    text = CONFIG.format(root=tmp_path / "root").replace("{{", "{").replace("}}", "}")
    config.write_text(f"{text}redis: {{addr: '127.0.0.1:{free_port()}'}}\n")
    refused = run(config, "--online", "--grace-period", "2s")
    assert refused.returncode == 1
    assert "failed to garbage collect: cannot take the maintenance lease: " in refused.stderr
    assert "another registry" not in refused.stderr


def test_online_command_runs_beside_a_serving_registry(tmp_path: Path, start_registry) -> None:
    """The registry gives the lease back once no job of its own is due for a while, so the
    command is not refused for as long as a registry serves."""
    root = tmp_path / "root"
    text = CONFIG.format(root=root).replace("{{", "{").replace("}}", "}")
    config = tmp_path / "config.yml"
    config.write_text(text)
    scenario = push_scenario(Api(flask_send(make_app(text).test_client())))
    age_everything(root)
    before = stored_blobs(root)
    registry = start_registry(text)
    swept = root / paths.EMPTIED_NOTED.lstrip("/")
    lease = root / paths.maintenance_lease("all").lstrip("/")
    deadline = time.monotonic() + 60
    while not swept.exists() or lease.exists():  # its sweep ran, and nothing else is due
        assert time.monotonic() < deadline, registry.stderr[-2000:]
        time.sleep(0.1)
    done = run(config, "--online", "-q", "--grace-period", "2s")
    assert done.returncode == 0, done.stderr
    assert set(before) - set(stored_blobs(root)) == scenario.garbage
    assert registry.stop() == 0 and "Traceback" not in registry.stderr


def test_bad_arguments_fail_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.format(root=tmp_path).replace("{{", "{").replace("}}", "}"))
    bad = run(config, "--online", "--grace-period", "soon")
    assert bad.returncode == 1
    assert bad.stderr.strip() == "configuration error: --grace-period: not a duration: 'soon'"
    missing = run(tmp_path / "missing.yml")
    assert missing.returncode == 1 and "configuration error" in missing.stderr


def test_a_grace_period_that_would_not_protect_pushes_is_refused(tmp_path: Path) -> None:
    """No grace period means no wait before the rescan either, so a push racing the
    collection could lose a blob; and offline nothing is spared, whatever one asks."""
    config = tmp_path / "config.yml"
    config.write_text(CONFIG.format(root=tmp_path).replace("{{", "{").replace("}}", "}"))
    zero = run(config, "--online", "--grace-period", "0s")
    assert zero.returncode == 1
    assert zero.stderr.strip() == (
        "configuration error: --grace-period: must be longer than zero, got '0s'"
    )
    offline = run(config, "--grace-period", "1h")
    assert offline.returncode == 2
    assert "--grace-period goes with --online" in offline.stderr
    assert "Traceback" not in zero.stderr + offline.stderr
