"""Maintenance jobs run in a process of their own, so that what a run builds goes when it ends.

A usage refresh over 10,000 repositories builds a few hundred thousand Python objects. Run in
the worker that leads maintenance, it left that worker 85 MiB larger for good (what outlives a
run, such as the digests it parsed, pins the allocator's arenas the run spread over) and held
the GIL that worker's requests need through seconds of Python work. In a process of its own,
the memory goes back to the system when the run ends, and the worker's thread only waits on a
pipe.

The child is a new interpreter, not a fork (the worker has threads), started with the worker's
interpreter flags (``-OO`` reuses its bytecode) and import path. It reads the configuration and
the job's name on its stdin, builds the job as the scheduler does
(:func:`distribution.maintenance.jobs`) and runs it, sending over a pipe of its own, as pickled
messages:

* its log records, which the worker hands to its own handlers (format, fields, mail hooks);
* ``proceed`` questions (the lease still held, the worker not stopping), answered on stdin;
* the job's result, for the job's ``then`` in the worker (quota crossings, whose notifications
  go out through the worker's dispatcher), or the traceback of its failure.

A child whose worker has gone reads end-of-file for an answer: a no, so it stops at that step
as after a lost lease.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import IO, Any, cast

from distribution import log as log_module
from distribution.config import Configuration

log = logging.getLogger(__name__)

#: What the child runs: ``-c``, since ``-m`` would load this module a second time as
#: ``__main__`` after its package.
_CHILD = "from distribution.maintenance.process import main; main()"


def _child_code() -> str:
    """The child's program: the worker's import path, then :data:`_CHILD`. ``-c`` alone would
    put the current folder first, where another ``distribution`` package (a checkout of
    another version) would be imported instead of the code the worker runs."""
    return f"import sys; sys.path[:] = {sys.path!r}; {_CHILD}"


class JobFailed(Exception):
    """The job raised in its process, or the process ended before the job did."""


def run(config: Configuration, name: str, proceed: Callable[[], bool]) -> Any:
    """Run the job ``name`` of ``config`` in a new process; what its ``run`` returned.

    Raises :class:`JobFailed` with the child's traceback, or with how its process ended.
    """
    reading, writing = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, *_interpreter_flags(), "-c", _child_code(), str(writing)],
            stdin=subprocess.PIPE,
            pass_fds=(writing,),
            # Out of the terminal's reach: a Ctrl-C there stops the server, whose workers
            # then tell their children to stop, rather than reaching a child mid-step.
            start_new_session=True,
        )
    except BaseException:
        os.close(reading)
        raise
    finally:
        os.close(writing)
    log.debug("maintenance: %s runs in process %d", name, child.pid)
    with child, open(reading, "rb") as messages:
        answers = cast(IO[bytes], child.stdin)
        try:
            with contextlib.suppress(BrokenPipeError):  # it died at start: its status tells
                _send(answers, (config, name))
            kind, value = _converse(messages, answers, proceed)
        finally:
            # What a dead child did not read stays buffered; closing would try it again.
            with contextlib.suppress(BrokenPipeError):
                answers.close()
    if kind == "done":
        return value
    if kind == "failed":
        raise JobFailed(f"in process {child.pid}:\n{value}")
    raise JobFailed(f"process {child.pid} {_ended(child.returncode)} before the job did")


def _converse(messages: IO[bytes], answers: IO[bytes], proceed: Callable[[], bool]) -> Any:
    """Hand the child's log records on and answer its questions, up to its last word."""
    while True:
        try:
            kind, value = pickle.load(messages)
        except (EOFError, pickle.UnpicklingError):
            return "gone", None
        if kind == "log":
            record = logging.makeLogRecord(value)
            logging.getLogger(record.name).handle(record)
        elif kind == "proceed":
            try:
                _send(answers, proceed())
            except BrokenPipeError:
                return "gone", None
        else:
            return kind, value


def _send(stream: IO[bytes], message: Any) -> None:
    pickle.dump(message, stream, pickle.HIGHEST_PROTOCOL)
    stream.flush()


def _ended(status: int) -> str:
    if status < 0:
        return f"was killed by {signal.Signals(-status).name}"
    return f"exited with status {status}"


def _interpreter_flags() -> list[str]:
    """The worker's interpreter flags that bear on the child: ``-O``/``-OO`` (and so the
    bytecode it loads), isolation, the environment and user site, bytecode writing."""
    flags = sys.flags
    found = ["-" + "O" * flags.optimize] if flags.optimize else []
    if flags.isolated:
        found.append("-I")
    else:
        found += ["-E"] if flags.ignore_environment else []
        found += ["-s"] if flags.no_user_site else []
    found += ["-B"] if flags.dont_write_bytecode else []
    return found


class _Channel:
    """The child's end: messages out on the pipe, answers in on stdin, one thread at a time."""

    def __init__(self, out: IO[bytes], answers: IO[bytes]) -> None:
        self.out = out
        self.answers = answers
        self.lock = threading.Lock()

    def send(self, kind: str, value: Any) -> None:
        with self.lock:
            _send(self.out, (kind, value))

    def proceed(self) -> bool:
        """The worker's answer; no when it is gone."""
        with self.lock:
            try:
                _send(self.out, ("proceed", None))
                return bool(pickle.load(self.answers))
            except (BrokenPipeError, EOFError, pickle.UnpicklingError):
                return False


class _Forward(logging.Handler):
    """Sends each record to the worker, its message made and its fields and error attached,
    since neither its arguments nor its traceback need be picklable."""

    def __init__(self, channel: _Channel) -> None:
        super().__init__()
        self.channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = log_module.line_fields(record)
            if record.exc_info:
                fields["error"] = logging.Formatter().formatException(record.exc_info)
            value = {key: getattr(record, key) for key in _RECORD_KEYS}
            value.update(msg=record.getMessage(), args=None)
            value[log_module.FIELDS] = {key: _plain(v) for key, v in fields.items()}
            self.channel.send("log", value)
        except BrokenPipeError:
            pass  # the worker is gone
        except Exception:
            self.handleError(record)


_RECORD_KEYS = (
    "name",
    "levelno",
    "levelname",
    "pathname",
    "filename",
    "module",
    "lineno",
    "funcName",
    "created",
    "msecs",
    "relativeCreated",
    "thread",
    "threadName",
    "processName",
    "process",
)


def _plain(value: Any) -> Any:
    """A field's value, or its text when it cannot cross as it is."""
    try:
        pickle.dumps(value)
    except Exception:
        return str(value)
    return value


def main() -> None:
    """The child: run the job the worker names and tell it how it went."""
    with open(int(sys.argv[1]), "wb") as out:
        channel = _Channel(out, sys.stdin.buffer)
        config, name = pickle.load(sys.stdin.buffer)
        logger = logging.getLogger("distribution")
        logger.handlers[:] = [_Forward(channel)]
        logger.setLevel(log_module.LEVELS.get(config.log.level.lower(), logging.INFO))
        logger.propagate = False
        from distribution import maintenance

        try:
            jobs = maintenance.jobs(config, maintenance.driver_for(config))
            job = next((job for job in jobs if job.name == name), None)
            if job is None:
                raise LookupError(f"the configuration schedules no {name} job")
            last: tuple[str, Any] = ("done", job.run(channel.proceed))
        except Exception:
            last = ("failed", traceback.format_exc())
        status = 0 if last[0] == "done" else 1
        try:
            channel.send(*last)
        except BrokenPipeError:  # the worker is gone: nobody to tell, nothing to flush
            os._exit(status)
    sys.exit(status)
