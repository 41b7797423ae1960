"""Reads made ahead of a walk: in order, in the caller's thread while quick, in the pool while
they wait on storage, and never far past where the caller stops."""

from __future__ import annotations

import contextvars
import threading
import time

from distribution.storage import ahead

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


class Reads:
    """A read that records its thread and how many run at once, slow for chosen items."""

    def __init__(self, slow: set[int] | None = None, pause: float = 0.002) -> None:
        self.slow = slow
        self.pause = pause
        self.threads: dict[int, int] = {}
        self.contexts: dict[int, str] = {}
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, item: int) -> int:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.threads[item] = threading.get_ident()
        self.contexts[item] = request_id.get()
        if self.slow is None or item in self.slow:
            time.sleep(self.pause)
        with self._lock:
            self.running -= 1
        return item * 10


def test_quick_reads_stay_in_the_callers_thread() -> None:
    reads = Reads(slow=set())
    assert list(ahead.ordered(reads, range(100))) == [(i, i * 10) for i in range(100)]
    assert set(reads.threads.values()) == {threading.get_ident()}
    assert reads.most == 1


def test_reads_that_wait_go_ahead_in_order_and_at_once() -> None:
    reads = Reads()
    request_id.set("req-1")
    assert list(ahead.ordered(reads, range(200))) == [(i, i * 10) for i in range(200)]
    caller = threading.get_ident()
    assert [reads.threads[i] for i in (0, 1)] == [caller, caller]
    assert all(reads.threads[i] != caller for i in range(2, 200))
    assert reads.most > 1
    assert set(reads.contexts.values()) == {"req-1"}


def test_one_slow_read_is_not_enough() -> None:
    """A quick read that the machine preempts for 30 us also counts as a wait, and next to a
    slow one makes two: under load that happens now and then, so one walk of three must stay
    in the caller's thread. Switching on a single slow read would fail all three."""
    for _ in range(3):
        reads = Reads(slow={5, 7, 9})
        assert list(ahead.ordered(reads, range(50))) == [(i, i * 10) for i in range(50)]
        if set(reads.threads.values()) == {threading.get_ident()}:
            return
    raise AssertionError("every walk went to the threads on lone slow reads")


def test_reads_come_back_to_the_caller_once_quick_again() -> None:
    reads = Reads(slow=set(range(40)))
    assert list(ahead.ordered(reads, range(400))) == [(i, i * 10) for i in range(400)]
    caller = threading.get_ident()
    assert any(reads.threads[i] != caller for i in range(40))
    assert all(reads.threads[i] == caller for i in range(200, 400))


def test_a_caller_that_stops_early_stops_the_reads() -> None:
    drawn: list[int] = []

    def items() -> object:
        for i in range(10_000):
            drawn.append(i)
            yield i

    reads = Reads()
    walk = ahead.ordered(reads, items(), batch=4, window=8)
    assert [next(walk) for _ in range(10)] == [(i, i * 10) for i in range(10)]
    walk.close()
    assert len(drawn) <= 10 + 4 * 8
    time.sleep(0.05)
    assert len(reads.threads) <= len(drawn)
    assert reads.running == 0


def test_an_error_reaches_the_caller_in_its_place() -> None:
    def read(item: int) -> int:
        time.sleep(0.001)
        if item == 30:
            raise ValueError("unreadable")
        return item

    got: list[int] = []
    try:
        for item, _ in ahead.ordered(read, range(100)):
            got.append(item)
    except ValueError as error:
        assert str(error) == "unreadable"
    else:
        raise AssertionError("the read's error was lost")
    assert got == list(range(30))
