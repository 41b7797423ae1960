"""New connections shared evenly among a master's workers.

Every worker waits on the same listening socket, and whichever wakes first accepts. When
clients open their connections at once (a pull of many layers, ``hey -c32``), one worker
may take nearly all of them: 31 of 32 was seen here. Kept-alive connections stay where they
landed, and one Python process serves on about one core (the GIL), so the server then runs
at half speed for as long as the clients stay. Go's registry schedules its connections on
every core, so it never sees this.

So each worker publishes how many connections it holds on a :class:`Board`, a page of
memory shared through ``fork``. A worker accepts only while it holds no more than
:data:`SLACK` more than the least loaded live worker. The least loaded always accepts, so
some worker always does. A worker that stops publishing (hung, or gone before the master
reaped it) counts as absent after :data:`STALE` seconds.

The board is a scheduling hint inside one master, not registry state: workers and replicas
still share state only through storage and Redis. A count read wrong places one connection
on the wrong worker, no more.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from typing import Any

#: Connections a worker may hold beyond the least loaded worker and still accept.
SLACK = 2
#: Seconds after which a worker that has not published counts as gone.
STALE = 3.0
#: Workers a board has room for (gunicorn's TTIN can add workers after start).
SLOTS = 128

#: The board's header: one past the highest slot ever assigned.
_TOP = struct.Struct("q")
#: A slot: pid, connections held, when published (``time.monotonic``, system-wide).
_SLOT = struct.Struct("qqd")


class Board:
    """Each worker's count of connections, in anonymous memory shared with forked children.

    Only the master assigns and frees slots (single-threaded, before a fork and after a
    reap); a worker writes its own slot only. An aligned 8-byte store is atomic on the CPUs
    we run on, and a torn read costs no more than one accept decided on a stale count.
    """

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _TOP.size + SLOTS * _SLOT.size)

    def assign(self, taken: set[int]) -> int:
        """In the master, before a fork: a free slot (not in ``taken``), cleared."""
        slot = next(i for i in range(SLOTS) if i not in taken)
        self.withdraw(slot)
        top = _TOP.unpack_from(self._memory)[0]
        _TOP.pack_into(self._memory, 0, max(top, slot + 1))
        return slot

    def withdraw(self, slot: int) -> None:
        """The worker in ``slot`` takes no part: it is stopping (in the worker) or reaped
        (in the master)."""
        _SLOT.pack_into(self._memory, _offset(slot), 0, 0, 0.0)

    def publish(self, slot: int, connections: int) -> None:
        """In a worker: how many connections it holds now."""
        _SLOT.pack_into(self._memory, _offset(slot), os.getpid(), connections, time.monotonic())

    def may_accept(self, slot: int, connections: int) -> bool:
        """Whether the worker in ``slot``, holding ``connections``, should accept another."""
        now = time.monotonic()
        for other in range(_TOP.unpack_from(self._memory)[0]):
            pid, held, published = _SLOT.unpack_from(self._memory, _offset(other))
            if other == slot or pid == 0 or now - published > STALE:
                continue
            if connections > held + SLACK:
                return False
        return True


def _offset(slot: int) -> int:
    return _TOP.size + slot * _SLOT.size


def install(cfg: Any) -> None:
    """Give each worker forked by this master a slot on one board, keeping any hook set.

    Only for more than one worker; the worker finds its slot as ``worker.board_slot``.
    """
    if cfg.workers < 2:
        return
    board = Board()
    previous_pre_fork, previous_child_exit = cfg.pre_fork, cfg.child_exit

    def pre_fork(server: Any, worker: Any) -> None:
        taken = {
            slot
            for other in server.WORKERS.values()
            if (slot := getattr(other, "board_slot", None)) is not None
        }
        worker.board, worker.board_slot = board, board.assign(taken)
        previous_pre_fork(server, worker)

    def child_exit(server: Any, worker: Any) -> None:
        previous_child_exit(server, worker)
        slot = getattr(worker, "board_slot", None)
        if slot is not None:
            board.withdraw(slot)

    cfg.set("pre_fork", pre_fork)
    cfg.set("child_exit", child_exit)
