"""Maintenance jobs in a process of their own (:mod:`distribution.maintenance.process`): the
result and log lines the worker gets back, a failure's traceback, a killed child, a child whose
worker is gone (it stops before writing), and the usage job so run by ``registry serve``."""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from distribution import config as config_module
from distribution import maintenance
from distribution.maintenance import process
from distribution.storage import paths
from distribution.storage.driver import StorageDriverError, create
from distribution.usage.job import Mark
from tests.e2e.harness import children

CONFIG = """
version: 0.1
log: {{level: {level}}}
storage:
  filesystem: {{rootdirectory: {root}}}
  maintenance:
    uploadpurging: {{enabled: false}}
    usage: {{interval: 1s}}
http: {{secret: process-secret}}
"""

#: Seconds for a child to start and finish a usage run on an almost empty tree.
TIMEOUT = 60.0


def load(tmp_path: Path, root: Path, level: str = "info") -> config_module.Configuration:
    path = tmp_path / "config.yml"
    path.write_text(CONFIG.format(root=root, level=level))
    return config_module.load(str(path))


@pytest.fixture
def records() -> Iterator[list[logging.LogRecord]]:
    """The records the ``distribution`` loggers handle meanwhile, in this process."""
    found: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found.append(record)

    logger = logging.getLogger("distribution")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield found
    logger.removeHandler(handler)
    logger.setLevel(level)


def run_worker(script: str, config: Path, **options: Any) -> subprocess.CompletedProcess[str]:
    """``script`` as the worker, in a process of its own, given ``config``'s path."""
    return subprocess.run(
        [sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **options,
    )


def state_file(root: Path) -> Path:
    return root / paths.USAGE_STATE.lstrip("/")


def test_the_result_and_log_lines_come_back_from_the_child(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    root = tmp_path / "root"
    config = load(tmp_path, root)
    asked = []

    def proceed() -> bool:
        asked.append(True)
        return True

    crossings, mark = process.run(config, "usage", proceed)
    assert crossings == []
    assert isinstance(mark, Mark)
    info = create("filesystem", {"rootdirectory": str(root)}).stat(paths.USAGE_STATE)
    assert mark.version == (info.size, info.mtime.timestamp())
    assert asked, "the child never asked whether to write"
    (line,) = [r for r in records if r.getMessage().startswith("usage: full scan")]
    assert line.name == "distribution.usage"
    assert line.levelno == logging.INFO
    assert line.process not in (os.getpid(), None)


def test_a_failure_comes_back_with_the_child_traceback(tmp_path: Path) -> None:
    root = tmp_path / "a-file"
    root.write_text("not a folder")
    config = load(tmp_path, root)
    with pytest.raises(process.JobFailed) as failed:
        process.run(config, "usage", lambda: True)
    message = str(failed.value)
    assert message.startswith("in process ")
    assert "Traceback (most recent call last)" in message
    assert "distribution/usage/job.py" in message


def test_the_child_imports_the_code_the_worker_runs_whatever_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry started in a folder holding another ``distribution`` package (a checkout of
    another version, say) runs its jobs with its own code: ``-c`` alone would put that
    folder first on the child's path."""
    decoy = tmp_path / "elsewhere"
    (decoy / "distribution").mkdir(parents=True)
    (decoy / "distribution/__init__.py").write_text("raise ImportError('the decoy')\n")
    config = load(tmp_path, tmp_path / "root")
    monkeypatch.chdir(decoy)
    crossings, _ = process.run(config, "usage", lambda: True)
    assert crossings == []


#: A worker that runs the usage job and, when its child asks to write, gets what a Ctrl-C in
#: the registry's terminal sends: SIGINT to its whole process group.
INTERRUPTED_WORKER = """
import os, signal, sys
from distribution import config
from distribution.maintenance import process
signal.signal(signal.SIGINT, lambda *_: None)  # gunicorn's workers handle it

def proceed():
    os.killpg(0, signal.SIGINT)
    return True

print(process.run(config.load(sys.argv[1]), "usage", proceed))
"""


def test_a_ctrl_c_in_the_terminal_reaches_the_worker_not_the_child(tmp_path: Path) -> None:
    """The child is no part of the terminal's process group: it ends when its worker says
    so, without a KeyboardInterrupt traceback on the registry's stderr."""
    load(tmp_path, tmp_path / "root")
    worker = run_worker(INTERRUPTED_WORKER, tmp_path / "config.yml", start_new_session=True)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout.startswith("([], Mark(")
    assert "Traceback" not in worker.stderr


def test_a_job_the_config_does_not_schedule_is_a_failure(tmp_path: Path) -> None:
    config = load(tmp_path, tmp_path / "root")
    with pytest.raises(process.JobFailed, match="the configuration schedules no gc job"):
        process.run(config, "gc", lambda: True)


def test_a_killed_child_is_told_as_such(tmp_path: Path) -> None:
    config = load(tmp_path, tmp_path / "root")
    known = children(os.getpid())
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            process.run(config, "usage", lambda: True)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not (started := children(os.getpid()) - known):
        assert time.monotonic() < deadline, "no child started"
        time.sleep(0.01)
    (pid,) = started
    os.kill(pid, signal.SIGKILL)
    thread.join(TIMEOUT)
    (failure,) = outcome
    assert isinstance(failure, process.JobFailed)
    assert str(failure) == f"process {pid} was killed by SIGKILL before the job did"


def test_a_child_dead_before_its_request_is_told_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load(tmp_path, tmp_path / "root")
    monkeypatch.setattr(process, "_CHILD", "import os; os._exit(1)")
    send = process._send

    def after_its_death(stream, message) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(not running(pid) for pid in children(os.getpid())):
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        send(stream, message)  # no reader: the write fails, the request stays buffered

    monkeypatch.setattr(process, "_send", after_its_death)
    with pytest.raises(process.JobFailed, match="exited with status 1 before the job did"):
        process.run(config, "usage", lambda: True)


#: A worker that dies when its job asks whether to write: it prints its child's pid first.
WORKER = """
import os, sys
from distribution import config
from distribution.maintenance import process

def proceed():
    pids = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as found:
            pids |= set(found.read().split())
    print(*pids, flush=True)
    os._exit(0)

process.run(config.load(sys.argv[1]), "usage", proceed)
"""


def test_a_child_whose_worker_is_gone_stops_before_writing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    load(tmp_path, root)
    worker = run_worker(WORKER, tmp_path / "config.yml", check=True)
    (pid,) = map(int, worker.stdout.split())
    deadline = time.monotonic() + TIMEOUT
    while running(pid):
        assert time.monotonic() < deadline, "the child went on"
        time.sleep(0.05)
    assert not state_file(root).exists()
    assert "Traceback" not in worker.stderr


def test_log_records_cross_with_their_fields_and_error() -> None:
    reading, writing = os.pipe()
    with open(reading, "rb") as messages, open(writing, "wb") as out:
        logger = logging.getLogger("distribution.test_process")
        logger.handlers[:] = [process._Forward(process._Channel(out, messages))]
        logger.propagate = False
        try:
            raise ValueError("no good")
        except ValueError:
            logger.exception("%s of %d", "one", 2, extra={"fields": {"lock": threading.Lock()}})
        kind, value = pickle.load(messages)
    assert kind == "log"
    record = logging.makeLogRecord(value)
    assert record.getMessage() == "one of 2"
    assert record.levelno == logging.ERROR
    assert record.exc_info is None
    assert record.fields["error"].endswith("ValueError: no good")
    assert record.fields["lock"].startswith("<unlocked _thread.lock")


def test_serve_runs_the_usage_job_in_a_child(tmp_path: Path, start_registry) -> None:
    registry = start_registry(CONFIG.format(root=tmp_path / "root", level="debug"))
    deadline = time.monotonic() + TIMEOUT
    while "usage: full scan" not in registry.stderr:
        assert time.monotonic() < deadline, registry.stderr
        time.sleep(0.2)
    log = registry.stderr
    (worker,) = set(re.findall(r"maintenance: running usage in worker (\d+)", log))
    child = re.findall(r"maintenance: usage runs in process (\d+)", log)[0]
    assert child != worker
    assert re.search(r'level=info msg="usage: full scan of 0 repositories in [\d.]+ s', log)
    while running(int(child)):
        assert time.monotonic() < deadline, f"process {child} is still running"
        time.sleep(0.05)
    assert "Traceback" not in log


def test_a_look_that_fails_is_told_and_the_runner_goes_on(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    def unreachable() -> bool:
        raise StorageDriverError("storage is down")

    ran = []
    job = maintenance.Job("usage", 1.0, 0.0, ran.append, idle=unreachable)
    runner = maintenance._Runner(load(tmp_path, tmp_path / "root"), [job], lambda: None, "")
    assert runner._idle(job)  # no exception: the maintenance thread lives on, runs nothing
    assert ran == []
    (line,) = [r for r in records if r.getMessage().startswith("maintenance: usage failed")]
    # storage out of reach is a warning with its reason, not a traceback
    assert line.getMessage() == "maintenance: usage failed: storage is down"
    assert line.levelno == logging.WARNING and line.exc_info is None


def test_a_run_that_meets_unreachable_storage_is_told_without_a_traceback(
    tmp_path: Path, records: list[logging.LogRecord]
) -> None:
    def run(proceed) -> None:
        raise StorageDriverError("storage is down")

    job = maintenance.Job("emptied", 1.0, 0.0, run)
    runner = maintenance._Runner(load(tmp_path, tmp_path / "root"), [job], lambda: None, "")
    runner._run(job)  # no exception: the maintenance thread lives on
    (line,) = [r for r in records if r.getMessage().startswith("maintenance: emptied failed")]
    assert line.getMessage() == "maintenance: emptied failed: storage is down"
    assert line.levelno == logging.WARNING and line.exc_info is None


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone, or going as it was read
        return False


def test_serve_sweeps_a_storage_once_and_then_takes_no_lease_for_it(
    tmp_path: Path, start_registry
) -> None:
    """The sweep of emptied repositories (``storage/emptied.py``) runs once a day per storage:
    a registry started again, whose only due job is that sweep, finds nothing to do before it
    asks for the lease, and so writes nothing."""
    root = tmp_path / "root"
    text = CONFIG.format(root=root, level="debug").replace("interval: 1s", "interval: 1h")
    noted = root / paths.EMPTIED_NOTED.lstrip("/")
    lease = root / paths.maintenance_lease("all").lstrip("/")
    first = start_registry(text)
    deadline = time.monotonic() + TIMEOUT
    while not noted.exists():
        assert time.monotonic() < deadline, first.stderr
        time.sleep(0.1)
    assert "maintenance: running emptied in worker" in first.stderr
    first.stop()
    assert not lease.exists()  # given back as the worker stopped
    again = start_registry(text)
    while "maintenance: nothing for emptied to do" not in again.stderr:
        assert time.monotonic() < deadline, again.stderr
        time.sleep(0.1)
    # the usage job's first run comes 10 s after start: until then no job has work
    assert not lease.exists()
    assert "holds the maintenance lease" not in again.stderr
    assert "Traceback" not in first.stderr + again.stderr


def test_the_sweep_of_emptied_repositories_is_due_again_a_day_after_the_last(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    config = load(tmp_path, root)
    driver = create("filesystem", {"rootdirectory": str(root)})
    (job,) = [job for job in maintenance.jobs(config, driver) if job.name == "emptied"]
    assert not job.idle()  # never swept
    job.run(lambda: True)
    assert job.idle()
    noted = root / paths.EMPTIED_NOTED.lstrip("/")
    day_ago = time.time() - 24 * 3600
    os.utime(noted, (day_ago, day_ago))
    assert not job.idle()
