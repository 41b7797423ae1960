"""Usage and retention on the 10,000-repository tree of ``../shared/bench/scale.py``.

    python3 benchmarks/retention_scale.py ROOT [--keep 2] [--changed 10] [--real]

ROOT is a tree made by ``scale.py populate ROOT`` (the Go registry's layout, written as a
registry that served for years would have it: no state of ours). Times, in this process and on
the filesystem driver:

1. the first usage refresh: a full scan of every repository and of ``blobs/``, every manifest
   read once (what a registry does on its first run after switching from Go);
2. the look that tells the maintenance job nothing changed (what it does every minute then);
3. a refresh with nothing changed: reading the saved state, the least a run costs;
4. a refresh after ``--changed`` repositories were noted as changed (pushes or deletes);
5. the same as the maintenance job runs it, in a process of its own (the interpreter's start,
   the state read, the repositories re-read, the figures written);
6. ``registry usage``'s count (a full scan, nothing written);
7. a retention dry run with one policy over every repository, ``keep: [{mostrecent: KEEP}]``;
8. with ``--real``, the same run for real (it deletes; the tree is changed afterwards).

Prints one line per step and a ``RETENTIONJSON {...}`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import threading
import time
from pathlib import Path

from distribution import config as config_module
from distribution import retention, usage
from distribution.maintenance import process
from distribution.storage import locks
from distribution.storage.driver import PathNotFoundError, create
from distribution.usage import journal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--keep", type=int, default=2)
    parser.add_argument("--changed", type=int, default=10)
    parser.add_argument("--real", action="store_true")
    args = parser.parse_args()
    config = config_module.parse(
        f"""
version: 0.1
storage:
  filesystem: {{rootdirectory: {args.root}}}
  maintenance:
    retention:
      policies:
        - repositories: ["**"]
          keep: [{{mostrecent: {args.keep}}}]
""",
        {},
    )
    driver = create("filesystem", {"rootdirectory": str(args.root)})
    with contextlib.suppress(PathNotFoundError):
        driver.delete("/docker/registry/v2/_maintenance")  # start as a Go-written tree
    names = json.loads((args.root / "scale-repos.json").read_text())
    results: dict[str, float] = {}

    def step(name: str, run) -> object:
        started = time.perf_counter()
        value = run()
        results[name] = round(time.perf_counter() - started, 2)
        print(f"{name}: {results[name]} s", flush=True)
        return value

    first = step("usage_first_full_scan_s", lambda: usage.refresh(driver))
    print(
        f"  {first.report.total.repositories} repositories, {first.report.total.tags} tags, "
        f"{len(first.state.manifests)} manifests, {first.report.total.blobs} blobs referenced, "
        f"{first.state.stored_blobs} stored"
    )
    mark = first.mark
    assert mark is not None, "the first refresh saved nothing"
    step("usage_idle_look_s", lambda: usage.job.unchanged(driver, mark))
    step("usage_refresh_unchanged_s", lambda: usage.refresh(driver))
    sink = journal.StorageSink(driver)
    changed = journal.Batch(changed={n: time.time() for n in names[: args.changed]}).encode()
    sink.write(changed)
    step(f"usage_refresh_{args.changed}_changed_s", lambda: usage.refresh(driver))
    sink.write(changed)
    with _PeakOfChildren() as peak:
        step(
            f"usage_job_process_{args.changed}_changed_s",
            lambda: process.run(config, "usage", lambda: True),
        )
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    results["usage_job_process_cpu_s"] = round(child.ru_utime + child.ru_stime, 2)
    results["usage_job_process_peak_rss_mib"] = round(peak.kib / 1024, 1)
    print(
        f"  its process: {results['usage_job_process_cpu_s']} CPU-s, "
        f"peak RSS {results['usage_job_process_peak_rss_mib']} MiB"
    )
    step("usage_command_full_scan_s", lambda: usage.refresh(driver, full=True, write=False))
    dry, _ = step(
        "retention_dry_run_s",
        lambda: retention.run_once(config, driver, dry_run=True, collect=False),
    )
    print(f"  {dry.summary()}")
    results["retention_tags_to_delete"] = dry.deleted_tags
    if args.real:
        real, _ = step(
            "retention_real_run_s",
            lambda: retention.run_once(
                config,
                driver,
                dry_run=False,
                collect=False,
                locks=locks.from_config(config, driver),
            ),
        )
        print(f"  {real.summary()}")
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(f"peak RSS: {results['peak_rss_mib']} MiB")
    print("RETENTIONJSON " + json.dumps(results))


class _PeakOfChildren(threading.Thread):
    """The highest VmHWM of this process's children, looked at every 20 ms (``ru_maxrss``
    of children counts the parent's memory, which a child has until it starts Python)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.kib = 0
        self.done = threading.Event()

    def __enter__(self) -> _PeakOfChildren:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()

    def run(self) -> None:
        me = os.getpid()
        while not self.done.wait(0.02):
            for task in os.listdir(f"/proc/{me}/task"):
                with contextlib.suppress(OSError):
                    for pid in Path(f"/proc/{me}/task/{task}/children").read_text().split():
                        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                            if line.startswith("VmHWM:"):
                                self.kib = max(self.kib, int(line.split()[1]))


if __name__ == "__main__":
    main()
