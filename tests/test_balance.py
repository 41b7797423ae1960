"""New connections are shared evenly among the workers, even when they come all at once."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from distribution import balance

CONNECTIONS = 32


def test_a_worker_holding_more_than_its_share_waits() -> None:
    board = balance.Board()
    mine, other = board.assign(set()), board.assign({0})
    assert (mine, other) == (0, 1)
    child = os.fork()
    if child == 0:  # the other worker publishes from its own process
        board.publish(other, 10)
        os._exit(0)
    os.waitpid(child, 0)
    assert board.may_accept(mine, 12)
    assert not board.may_accept(mine, 13)
    assert board.may_accept(other, 10)  # a worker never waits on itself
    board.withdraw(other)
    assert board.may_accept(mine, 100)


def test_a_worker_that_stops_publishing_counts_as_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(balance, "STALE", 0.05)
    board = balance.Board()
    board.assign(set())
    board.assign({0})
    board.publish(1, 0)
    assert not board.may_accept(0, 10)
    time.sleep(0.1)
    assert board.may_accept(0, 10)


def test_a_freed_slot_is_given_again() -> None:
    board = balance.Board()
    assert [board.assign(set(range(n))) for n in range(3)] == [0, 1, 2]
    board.publish(1, 50)
    assert board.assign({0, 2}) == 1
    assert board.may_accept(0, 3)  # the new worker starts with a clean slot


def _workers(master: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()]


#: TCP states in /proc/net/tcp: established, and closed by the client but not yet by us.
ESTABLISHED, CLOSE_WAIT = "01", "08"


def _sockets(port: int, states: tuple[str, ...] = (ESTABLISHED,)) -> set[str]:
    """Socket inodes of the server side of TCP connections on ``port`` in ``states``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] in states:
                inodes.add(fields[9])
    return inodes


def _held(pid: int, inodes: set[str]) -> int:
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            held += 1
    return held


def _open_at_once(port: int, count: int) -> list[socket.socket]:
    """``count`` connections opened together, each answered once and kept alive."""
    socks: list[socket.socket] = []
    lock, start = threading.Lock(), threading.Event()

    def one() -> None:
        start.wait()
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with lock:
            socks.append(sock)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    start.set()
    for thread in threads:
        thread.join(timeout=20)
    assert len(socks) == count
    return socks


def _shares(registry, port: int, expected: int, states=(ESTABLISHED,)) -> list[int]:
    """Each worker's connections, once the server side has them all."""
    deadline = time.monotonic() + 5
    while True:
        inodes = _sockets(port, states)
        shares = [_held(pid, inodes) for pid in _workers(registry.proc.pid)]
        if sum(shares) >= expected or time.monotonic() > deadline:
            return shares
        time.sleep(0.05)


def _started(start_registry):
    """A registry of two workers, both serving (the first answers while the second boots)."""
    registry = start_registry()
    deadline = time.monotonic() + 20
    while len(_workers(registry.proc.pid)) < 2:
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.05)
    time.sleep(1.5)
    return registry, int(registry.url.rsplit(":", 1)[1])


def test_connections_opened_at_once_are_shared(start_registry) -> None:
    registry, port = _started(start_registry)
    for _ in range(3):
        socks = _open_at_once(port, CONNECTIONS)
        shares = _shares(registry, port, CONNECTIONS)
        assert len(shares) == 2 and sum(shares) == CONNECTIONS, shares
        assert max(shares) - min(shares) <= balance.SLACK + 1, shares
        for sock in socks:
            sock.close()
        # until the workers have closed them too (and no longer count them)
        while sum(_shares(registry, port, 0, (ESTABLISHED, CLOSE_WAIT))):
            time.sleep(0.05)


def test_a_stopping_worker_leaves_the_new_connections_to_the_others(start_registry) -> None:
    registry, port = _started(start_registry)
    socks = _open_at_once(port, 8)
    first = _workers(registry.proc.pid)
    os.kill(first[0], signal.SIGTERM)  # it drains what it holds; the others take what comes
    started = time.monotonic()
    socks += _open_at_once(port, CONNECTIONS)
    assert time.monotonic() - started < 5
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 30
    while (workers := _workers(registry.proc.pid)) == first or len(workers) < 2:
        assert time.monotonic() < deadline, "the master did not replace the stopped worker"
        time.sleep(0.1)
    time.sleep(1.5)  # the new worker boots
    socks = _open_at_once(port, CONNECTIONS)
    shares = _shares(registry, port, CONNECTIONS)
    assert max(shares) - min(shares) <= balance.SLACK + 1, shares
    for sock in socks:
        sock.close()
