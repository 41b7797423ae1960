"""Ports for the servers tests start, out of the way of every other port on the host.

``bind(("127.0.0.1", 0))`` hands out a port from the kernel's ephemeral range, closes, and the
server binds it later: meanwhile another test's ``bind(0)`` or any client's ``connect`` may get
the same port from the same range, and a test then talks to another test's server (or its
server cannot start). Here each xdist worker counts through a block of its own below that range,
where the kernel never picks, and skips a port something already holds. Each process starts at
a place of its own in its block (from its pid), so that two pytest sessions on one machine, whose
workers have the same blocks, seldom count through the same ports.
"""

from __future__ import annotations

import itertools
import os
import socket

#: The first port handed out; the blocks end below the kernel's ephemeral range.
FIRST = 10000


def _block() -> range:
    """This process's ports: an equal share of those below the ephemeral range."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
        ephemeral = int(ranges.read().split()[0])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    size = (ephemeral - FIRST) // workers
    return range(FIRST + index * size, FIRST + (index + 1) * size)


_BLOCK = _block()
_next = itertools.count(os.getpid())


def free_port() -> int:
    """The next port of this process's block that nothing holds now."""
    for _ in range(len(_BLOCK)):
        port = _BLOCK[next(_next) % len(_BLOCK)]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # held by something else, or its connections still closing
            return port
    raise RuntimeError(f"no free port in {_BLOCK}")
