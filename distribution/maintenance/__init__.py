"""Background maintenance in ``registry serve``: upload purging, online garbage collection,
usage figures, retention, and the daily sweep that lets the catalog trust its notes of emptied
repositories.

Each job runs in exactly one worker of one replica:

* **One worker per replica**: every gunicorn worker starts a daemon thread that blocks on
  ``fcntl.flock`` of a nameless file in memory the master made. One worker holds it; when
  that worker dies the kernel releases the lock and a waiting worker takes over.
* **One replica**: the worker holding the lock runs a job only while it holds the cluster's
  *lease*. With ``redis`` configured the lease is a Redis key set with ``SET NX PX`` and renewed
  by its owner (compare-and-expire in a script), so exactly one replica holds it at a time and
  another takes over within ``LEASE_TTL`` of the holder's death. Without Redis the lease is a
  small file in storage, written and read back: storage offers no compare-and-set, so two
  replicas may both hold it for up to one renewal period. That guarantee is weaker, and
  harmless: purging is idempotent and online GC is safe against anything running beside it.
* **Handing over**: a worker asked to stop (:data:`~distribution.stopping.STOPPING`) stops its
  job at the next step, starts none, and gives the lease back, so another replica takes the
  jobs over without waiting for the lease to expire.
* **Apart**: the jobs that read every repository (usage figures, retention, online GC) run in a
  process of their own that the worker starts for each run (:mod:`.process`), so that what a
  run builds goes back to the system when it ends.

The lease is asked for only when a job is due and has something to do, so a registry whose
jobs are far off (upload purging's first run comes after a random delay of up to an hour, as in
Go) or idle (the sweep of emptied repositories, done within the day) writes nothing. It is
given back once no job is due within :data:`~distribution.leases.LEASE_TTL`, so that the
commands that take it (``registry garbage-collect --online``, ``registry retention``) run
beside a serving registry, between its jobs.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from distribution import proxy, quotas, redisconn, retention, usage
from distribution.cache.factory import from_config as cache_from_config
from distribution.cache.factory import shared as shared_cache
from distribution.config import Configuration
from distribution.leases import LEASE_TTL, Lease, RedisLease
from distribution.maintenance import process
from distribution.proxy import schedule
from distribution.quotas.alerts import Crossing
from distribution.stopping import STOPPING
from distribution.storage import catalog, emptied, locks, paths, purge
from distribution.storage import driver as drivers

log = logging.getLogger(__name__)

#: Go waits a random delay of up to this long before the first upload purge.
MAX_FIRST_DELAY = 3600.0
#: The Redis key of the lease (our own; the Go registry has none).
REDIS_KEY = "maintenance::lease"
#: Seconds a storage lease's owner waits before reading it back.
STORAGE_SETTLE = 0.5
#: Longest wait before the first usage refresh after start.
USAGE_FIRST_DELAY = 10.0
#: When the catalog's sweep for emptied repositories (:mod:`~distribution.storage.emptied`)
#: is first asked whether it is due, and how often after; it is due once a day.
EMPTIED_FIRST_DELAY = 2.0
EMPTIED_INTERVAL = 3600.0
#: Seconds an exiting worker waits for its running job to stop and the lease to go back.
RELEASE_WAIT = 5.0


class StorageLease:
    """The lease as a file in storage: last writer wins, checked by reading it back."""

    def __init__(
        self, driver: drivers.StorageDriver, owner: str, ttl: float = LEASE_TTL, job: str = "all"
    ) -> None:
        self.driver = driver
        self.owner = owner
        self.ttl = ttl
        self.path = paths.maintenance_lease(job)

    def acquire(self) -> bool:
        current = self._read()
        taken = current is not None and current["owner"] != self.owner
        if taken and current["expires"] > time.time():
            return False
        self._write()
        time.sleep(STORAGE_SETTLE)
        current = self._read()
        return current is not None and current["owner"] == self.owner

    def release(self) -> None:
        current = self._read()
        if current is not None and current["owner"] == self.owner:
            self.driver.delete(self.path)

    def _read(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.driver.get_content(self.path))
            return {"owner": str(value["owner"]), "expires": float(value["expires"])}
        except drivers.PathNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            return None  # damaged: anyone may take it

    def _write(self) -> None:
        value = {"owner": self.owner, "expires": time.time() + self.ttl}
        self.driver.put_content(self.path, json.dumps(value).encode())


@dataclass
class Job:
    """Something to run every ``interval`` seconds, first after ``first_delay``.

    ``run`` gets the ``proceed`` question (lease held, worker not stopping). A job ``apart``
    runs in a process of its own (:mod:`.process`: the scans over every repository, whose
    memory then goes back when they end); what ``run`` returned is handed to ``then`` in the
    worker. ``idle`` tells, before a run, that there is nothing to do.
    """

    name: str
    interval: float
    first_delay: float
    run: Callable[[Callable[[], bool]], Any]
    apart: bool = False
    then: Callable[[Any], None] = lambda result: None
    idle: Callable[[], bool] = lambda: False


def jobs(config: Configuration, driver: drivers.StorageDriver) -> list[Job]:
    """The maintenance ``config`` asks for; none in read-only mode."""
    maintenance = config.storage.maintenance
    if maintenance.readonly.enabled:
        return []

    def note_emptied(proceed: Callable[[], bool]) -> None:
        emptied.sweep(driver, catalog.looked_into(driver), proceed)

    found = [
        Job(
            "emptied",
            EMPTIED_INTERVAL,
            EMPTIED_FIRST_DELAY,
            note_emptied,
            idle=lambda: not emptied.due(driver),
        )
    ]
    purging = maintenance.uploadpurging
    if purging.enabled:

        def purge_uploads(proceed: Callable[[], bool]) -> None:
            older_than = datetime.now(UTC) - timedelta(seconds=purging.age)
            purge.purge_uploads(driver, older_than, delete=not purging.dryrun)

        found.append(
            Job("uploadpurging", purging.interval, first_delay(purging.interval), purge_uploads)
        )
    collection = maintenance.gc
    if collection.enabled:
        from distribution.storage import gc  # only where online collection is on

        options = gc.Options(
            dry_run=collection.dryrun,
            delete_untagged=collection.deleteuntagged,
            online=True,
            grace=collection.age,
        )

        def collect_garbage(proceed: Callable[[], bool]) -> None:
            cache = shared_cache(config)
            report = gc.collect(driver, options, emit=log.debug, proceed=proceed, cache=cache)
            log.info(report.summary(options.dry_run))
            if not options.dry_run:
                usage.note_changed(config, driver, report.changed)

        every = collection.interval
        found.append(Job("gc", every, first_delay(every), collect_garbage, apart=True))
    if proxy.expires(config):
        cache = cache_from_config(config)

        def expire_proxied(proceed: Callable[[], bool]) -> None:
            schedule.expire(driver, cache, proceed=proceed)

        every = schedule.interval(config.proxy.ttl)
        found.append(Job("proxyexpiry", every, every, expire_proxied))
    return found + _usage_jobs(config, driver)


def _usage_jobs(config: Configuration, driver: drivers.StorageDriver) -> list[Job]:
    """Usage figures (soon after start, then every interval) and retention, which runs the
    collection that frees what it let go."""
    found = []
    figures = usage.settings.parse(config)
    client = usage.redis_client(config)
    if figures.enabled:
        runs = usage.Runs(config, driver, client)
        first = min(figures.interval, USAGE_FIRST_DELAY)
        found.append(
            Job(
                "usage",
                figures.interval,
                first,
                runs.run,
                apart=True,
                then=runs.then,
                idle=runs.idle,
            )
        )
    policies = retention.parse(config)
    if policies.enabled:
        registry_locks = locks.from_config(config, driver)
        cache = cache_from_config(config)

        def apply_retention(proceed: Callable[[], bool]) -> list[Crossing]:
            crossed: list[Crossing] = []
            retention.run_once(
                config,
                driver,
                dry_run=policies.dryrun,
                collect=True,
                client=client,
                locks=registry_locks,
                cache=cache,
                proceed=proceed,
                announce=crossed.extend,
            )
            return crossed

        every = policies.interval
        found.append(
            Job(
                "retention",
                every,
                first_delay(every),
                apply_retention,
                apart=True,
                then=quotas.announce,
            )
        )
    return found


def first_delay(interval: float) -> float:
    """Go's random start delay (up to an hour), never longer than one interval."""
    return random.uniform(0, min(MAX_FIRST_DELAY, interval))


def make_lease(config: Configuration, driver: drivers.StorageDriver) -> Lease:
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if redisconn.configured(config.redis):
        return RedisLease(
            redisconn.connect(config.redis), config.redis.keyprefix + REDIS_KEY, owner
        )
    return StorageLease(driver, owner)


def install(cfg: Any, config: Configuration) -> None:
    """Add the maintenance hooks to gunicorn's settings ``cfg``, keeping any hook already set.

    Called in the master: the lock file is made here, so every worker of this master (and only
    those) share it.
    """
    maintenance = config.storage.maintenance
    if not maintenance.uploadpurging.enabled and not (
        maintenance.gc.enabled
        or proxy.expires(config)
        or usage.settings.parse(config).enabled
        or retention.parse(config).enabled
    ):
        return
    # A file in memory, with no name: it needs no writable folder (a read-only root file
    # system), and it goes with the master's last descriptor, however the master ends. A worker
    # opens it anew through /proc: a lock taken on the descriptor it inherited would be shared
    # with every other worker, which inherited the same open file. Held for the master's life.
    lock = os.memfd_create("registry-maintenance")
    previous_init, previous_worker_exit = cfg.post_worker_init, cfg.worker_exit

    def post_worker_init(worker: Any) -> None:
        previous_init(worker)
        start(config, f"/proc/self/fd/{lock}")

    def worker_exit(server: Any, worker: Any) -> None:
        # Set by a stop signal already, but not when a worker ends otherwise; before the
        # interpreter's shutdown refuses the jobs' thread pools.
        STOPPING.set()
        if _runner is not None:
            _runner.finish(RELEASE_WAIT)
        previous_worker_exit(server, worker)

    cfg.set("post_worker_init", post_worker_init)
    cfg.set("worker_exit", worker_exit)


def start(config: Configuration, lock_path: str) -> threading.Thread | None:
    """Start this worker's maintenance thread; it works once it holds the replica's lock."""
    driver = driver_for(config)
    scheduled = jobs(config, driver)
    if not scheduled:
        return None
    global _runner
    _runner = _Runner(config, scheduled, lambda: make_lease(config, driver), lock_path)
    thread = threading.Thread(target=_runner.run, name="maintenance", daemon=True)
    thread.start()
    return thread


def driver_for(config: Configuration) -> drivers.StorageDriver:
    """The jobs' driver. Not verified again, as the worker's own (``Registry.from_config``): a
    worker booting while storage is unreachable must not stop the server."""
    return drivers.create(config.storage.driver, config.storage.parameters, verify=False)


#: This worker's runner, if its config schedules any job.
_runner: _Runner | None = None


class _Runner:
    def __init__(
        self,
        config: Configuration,
        scheduled: list[Job],
        lease_factory: Callable[[], Lease],
        lock_path: str,
    ) -> None:
        self.config = config
        self.jobs = scheduled
        self.lease_factory = lease_factory
        self.lock_path = lock_path
        self.held = threading.Event()
        #: This worker holds the replica's lock.
        self.leading = threading.Event()
        #: The runner has stopped (its lease given back, when it could be).
        self.done = threading.Event()

    def finish(self, timeout: float) -> None:
        """Wait (up to ``timeout``) for a leading runner to stop its job and give the lease
        back, so that another replica takes the jobs over at once rather than when the
        lease expires. A runner still waiting for the replica's lock holds nothing."""
        if self.leading.is_set():
            self.done.wait(timeout)

    def run(self) -> None:
        lock = open(self.lock_path, "a")  # noqa: SIM115 - held for the life of the worker
        fcntl.flock(lock, fcntl.LOCK_EX)
        self.leading.set()
        log.info("maintenance: worker %d runs this replica's maintenance", os.getpid())
        try:
            self._lead()
        finally:
            self.done.set()

    def _lead(self) -> None:
        lease = self.lease_factory()
        now = time.monotonic()
        due = {job.name: now + job.first_delay for job in self.jobs}
        for job in self.jobs:
            if job.name == "uploadpurging":
                log.info("Starting upload purge in %s", timedelta(seconds=round(job.first_delay)))
        keeper: threading.Thread | None = None
        kept = threading.Event()  # set to end the keeper
        taken = logging.INFO  # told once; taken again between runs, it is a debug line
        while not STOPPING.is_set():
            now = time.monotonic()
            for job in self.jobs:
                if due[job.name] > now or STOPPING.is_set():
                    continue
                due[job.name] = now + job.interval
                if self._idle(job):
                    continue
                if not self.held.is_set() and self._try(lease):
                    self.held.set()
                    log.log(
                        taken, "maintenance: worker %d holds the maintenance lease", os.getpid()
                    )
                    taken = logging.DEBUG
                if keeper is None and self.held.is_set():
                    kept.clear()
                    keeper = threading.Thread(
                        target=self._keep, args=(lease, kept), name="maintenance-lease", daemon=True
                    )
                    keeper.start()
                if not self.held.is_set():
                    log.debug("maintenance: %s runs in another replica", job.name)
                    continue
                self._run(job)
            if keeper is not None and min(due.values()) - time.monotonic() > LEASE_TTL:
                kept.set()  # nothing due for a while: a command may take the lease meanwhile
                keeper.join()
                keeper = None
                if self.held.is_set():
                    self._release(lease, logging.DEBUG)
            STOPPING.wait(max(0.05, min(1.0, min(due.values()) - time.monotonic())))
        kept.set()
        if keeper is not None:
            keeper.join()
        if self.held.is_set():
            self._release(lease)

    def _idle(self, job: Job) -> bool:
        """Whether ``job`` has nothing to do; asked before the lease is, so that a replica
        whose due jobs have nothing to do writes nothing."""
        try:
            idle = job.idle()
        except drivers.StorageDriverError as exc:  # storage unreachable: tried when next due
            log.warning("maintenance: %s failed: %s", job.name, exc)
            return True
        except Exception:
            log.exception("maintenance: %s failed", job.name)
            return True
        if idle:
            log.debug("maintenance: nothing for %s to do", job.name)
        return idle

    def _run(self, job: Job) -> None:
        try:
            log.info("maintenance: running %s in worker %d", job.name, os.getpid())
            if job.apart:
                job.then(process.run(self.config, job.name, self._proceed))
            else:
                job.then(job.run(self._proceed))
        except Exception as exc:
            if STOPPING.is_set():  # the worker is exiting: the job stops where it is
                log.info("maintenance: %s stopped with worker %d: %s", job.name, os.getpid(), exc)
            elif isinstance(exc, process.JobFailed):  # the traceback is the child's, in it
                log.error("maintenance: %s failed %s", job.name, exc)
            elif isinstance(exc, drivers.StorageDriverError):  # tried again when next due
                log.warning("maintenance: %s failed: %s", job.name, exc)
            else:
                log.exception("maintenance: %s failed", job.name)
        if job.name == "uploadpurging":
            log.info("Starting upload purge in %s", timedelta(seconds=round(job.interval)))

    def _proceed(self) -> bool:
        """What a job asks before each step: the lease is held and the worker not stopping."""
        return self.held.is_set() and not STOPPING.is_set()

    def _keep(self, lease: Lease, kept: threading.Event) -> None:
        """Renew the lease while held; once lost, try again every renewal period. Ends when
        ``kept`` is set (nothing due for a while, or the worker stopping)."""
        while not kept.wait(LEASE_TTL / 3):
            held = self._try(lease)
            if held != self.held.is_set():
                log.info(
                    "maintenance: worker %d %s the maintenance lease",
                    os.getpid(),
                    "holds" if held else "lost",
                )
            if held:
                self.held.set()
            else:
                self.held.clear()

    def _release(self, lease: Lease, level: int = logging.INFO) -> None:
        self.held.clear()
        try:
            lease.release()
        except Exception as exc:  # Redis or storage unreachable: the lease expires by itself
            log.warning("maintenance: cannot give the lease back: %s", exc)
            return
        log.log(level, "maintenance: worker %d gave the maintenance lease back", os.getpid())

    def _try(self, lease: Lease) -> bool:
        try:
            return lease.acquire()
        except Exception as exc:  # Redis or storage unreachable: not the leader for now
            log.warning("maintenance: cannot take the lease: %s", exc)
            return False
