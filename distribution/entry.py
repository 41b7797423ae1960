"""The ``registry`` command's entry point, which imports nothing of the registry before it
knows how the interpreter should run.

``registry serve`` runs its interpreter again with ``-OO`` (:func:`optimized_argv`) before
anything is imported: without docstrings, what the server imports takes about 2 MiB less
memory in the master, and so in each forked worker too (``benchmarks/README.md``, "Docstrings
left out"). ``-OO`` also drops ``assert`` statements; the registry's code uses them only to
narrow types, never to check input. Its bytecode lives in separate ``.opt-2.pyc`` files,
and an interpreter that can neither find nor write them compiles every module at each start,
slower and bigger than without ``-OO``; the server then runs as started. An interpreter
started with ``-O`` or a ``PYTHONOPTIMIZE`` in the environment is the operator's choice, and
is kept. The server then lets go of OpenSSL's set-up code before it imports the rest.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Sequence


def main() -> int:
    argv = optimized_argv(sys.argv[1:])
    if argv is not None:
        with contextlib.suppress(OSError):  # else it runs as started
            os.execv(sys.executable, argv)
    if sys.argv[1:2] == ["serve"]:
        _release_openssl_set_up()
    from distribution.cli import main as run

    return run()


def _release_openssl_set_up() -> None:
    """Run OpenSSL's set-up (``hashlib`` and ``ssl`` load it; the server imports both) and let
    go of its code pages before the registry's modules are imported, rather than after: the
    master's high-water mark then holds that code or the modules, not both (3.4 MiB less,
    ``benchmarks/README.md``, "Plain heads read in one pass")."""
    import hashlib  # noqa: F401
    import ssl  # noqa: F401

    from distribution import codepages

    codepages.release()


def optimized_argv(arguments: Sequence[str]) -> list[str] | None:
    """The command line that runs this command again with ``-OO``, or None when it is not
    ``serve``, the interpreter was given an optimization level (``-O``, ``-OO`` or
    ``PYTHONOPTIMIZE``: that is this run too), or the bytecode would not be cached."""
    if arguments[:1] != ["serve"] or sys.flags.optimize or os.environ.get("PYTHONOPTIMIZE"):
        return None
    if not sys.executable or not all(map(_bytecode_cached, _sample_sources())):
        return None
    return [sys.executable, "-OO", *sys.orig_argv[1:]]


def _sample_sources() -> list[str]:
    """One module of each place the server imports from: the standard library (not ``os``,
    which the interpreter carries frozen and never loads from bytecode), the installed
    packages, and this package."""
    flask = importlib.util.find_spec("flask")
    return [contextlib.__file__, flask.origin if flask and flask.origin else __file__, __file__]


def _bytecode_cached(source: str) -> bool:
    """Whether ``source``'s ``-OO`` bytecode is on disk, or will be written when it is first
    imported."""
    cached = importlib.util.cache_from_source(source, optimization=2)
    if os.path.exists(cached):
        return True
    if sys.dont_write_bytecode:
        return False
    folder = os.path.dirname(cached)
    while folder and not os.path.isdir(folder):  # __pycache__ is made on the first write
        folder = os.path.dirname(folder)
    return os.access(folder, os.W_OK)
