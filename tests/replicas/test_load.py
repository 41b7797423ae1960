"""A few seconds of benchmarks/load.py: mixed pushes and pulls over two replicas, nothing lost."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

LOAD = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"


def load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_load", LOAD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_short_load_loses_nothing(tmp_path: Path) -> None:
    report = load_module().run(duration=5.0, clients=8, workdir=tmp_path)
    print("\n".join(report.lines()))
    assert report.failures == []
    assert report.server_errors == 0
    assert report.blobs_checked > 0
    assert set(report.latencies) >= {"push_whole", "push_chunked", "pull_blob", "head_blob"}
    assert report.redis_hits > 0
