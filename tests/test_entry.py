"""The ``registry`` command's entry point: ``serve`` runs its interpreter again with ``-OO``."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests

from distribution import entry
from tests.api.test_uploads_process import workers


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_serve_runs_again_without_docstrings_in_the_same_process(
    start_registry, tmp_path: Path
) -> None:
    """The master and its workers run ``-OO``, in the process the command started (a
    supervisor's PID stays right), from ``.opt-2.pyc`` bytecode written at the first start."""
    cache = tmp_path / "bytecode"
    registry = start_registry(
        env={"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(cache)}
    )

    assert requests.get(f"{registry.url}/v2/", timeout=10).status_code == 200
    master = _command_line(registry.proc.pid)
    assert master[:4] == [sys.executable, "-OO", "-m", "distribution"], master
    children = workers(registry)
    assert len(children) == 2
    assert all(_command_line(child)[1] == "-OO" for child in children)
    written = {path.name for path in cache.rglob("entry.*.pyc")}
    tag = sys.implementation.cache_tag
    assert written == {f"entry.{tag}.pyc", f"entry.{tag}.opt-2.pyc"}  # before and after the exec


def test_an_operator_s_PYTHONOPTIMIZE_is_kept(start_registry) -> None:
    registry = start_registry(env={"PYTHONDONTWRITEBYTECODE": "", "PYTHONOPTIMIZE": "0"})

    assert "-OO" not in _command_line(registry.proc.pid)
    assert requests.get(f"{registry.url}/v2/", timeout=10).status_code == 200


def test_without_bytecode_it_may_keep_the_server_runs_as_started(
    start_registry, tmp_path: Path
) -> None:
    """Not able to write ``.opt-2.pyc`` files, an interpreter under ``-OO`` would compile every
    module at each start, slower and bigger than without; the server runs as started."""
    empty = tmp_path / "no-bytecode"
    empty.mkdir()
    registry = start_registry(
        env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(empty)}
    )

    assert "-OO" not in _command_line(registry.proc.pid)
    assert requests.get(f"{registry.url}/v2/", timeout=10).status_code == 200
    assert not any(empty.iterdir())


def test_an_operator_s_optimization_level_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """``python -O``: asserts off, docstrings kept, as asked."""
    monkeypatch.setattr(sys, "flags", SimpleNamespace(optimize=1))
    monkeypatch.setattr(sys, "dont_write_bytecode", False)

    assert entry.optimized_argv(["serve"]) is None


@pytest.mark.parametrize(
    "arguments",
    [[], ["--version"], ["garbage-collect", "config.yml"], ["htpasswd", "-c", "f", "u"], ["help"]],
)
def test_only_serve_runs_again(arguments: list[str]) -> None:
    assert entry.optimized_argv(arguments) is None


def test_the_command_line_keeps_the_interpreter_s_options(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PYTHONOPTIMIZE", raising=False)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-X", "dev", "/usr/bin/registry", "serve"])

    argv = entry.optimized_argv(["serve"])

    assert argv == [sys.executable, "-OO", "-X", "dev", "/usr/bin/registry", "serve"]
