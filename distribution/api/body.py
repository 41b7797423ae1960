"""Request bodies (uploads, manifests), read at socket speed under gunicorn.

gunicorn's body reader copies every received piece two or three times (buffering and slicing),
which caps a Flask-streamed upload near 450 MB/s, well below hashing speed. When the body's
length is known, :func:`copy_body` takes what gunicorn already buffered past the headers and then
``recv_into`` the two halves of one reused buffer in turn, straight from the connection's socket,
keeping gunicorn's reader in step so keep-alive, pipelining and TLS (an ``SSLSocket``) keep
working; a sink may go on using one piece (hashing it on another core) while the next arrives.
Anything else (``Transfer-Encoding: chunked``, another server, the Flask test client) goes
through ``wsgi.input``. Handlers call :func:`read_body`, which answers a body that did not
arrive whole with ``SIZE_INVALID``.

:func:`discard_unread` wraps the whole application: whatever a handler left of a request body
is read and dropped (for a bounded time) before the answer goes out.
"""

from __future__ import annotations

import contextlib
import mmap
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.errors import ParseException

from distribution import errors

#: The most one piece given to a sink holds.
CHUNK_SIZE = 1 << 20
#: Digits of the longest ``Content-Length`` taken (64 bits, as Go parses it).
MAX_LENGTH_DIGITS = 19
#: How long a response waits while the unread rest of its request's body is dropped.
DISCARD_SECONDS = 1.0

#: Receive buffers (two pieces each) kept between bodies, per process.
IDLE_BUFFERS = 1

#: Called with each piece of a body. Returns None when done with the piece, or a future that
#: completes when it is: the source reuses the piece's memory only after that.
Sink = Callable[[memoryview], "futures.Future[Any] | None"]


class IncompleteBody(Exception):
    """The client stopped sending before the body's announced length."""

    def __init__(self, received: int, expected: int | None) -> None:
        super().__init__(f"request body ended after {received} of {expected} bytes")
        self.received = received
        self.expected = expected


class InvalidContentLength(ValueError):
    """``Content-Length`` is not a number of bytes."""


def content_length(environ: dict[str, Any]) -> int | None:
    """The declared body length; None for a chunked body, 0 when nothing is declared."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    text = environ.get("CONTENT_LENGTH") or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_LENGTH_DIGITS:
        raise InvalidContentLength(text[:40])
    return int(text)


def declared_length(environ: dict[str, Any]) -> int | None:
    """:func:`content_length` for a handler: garbage is ``SIZE_INVALID``."""
    try:
        return content_length(environ)
    except InvalidContentLength as err:
        raise errors.SizeInvalid("invalid Content-Length", detail=str(err)) from None


def read_body(environ: dict[str, Any], sink: Sink) -> int:
    """:func:`copy_body` for a handler: a garbled ``Content-Length``, a body that ends before
    it (the client gone) or a broken chunked encoding is ``SIZE_INVALID``, so no handler takes
    part of a body for the whole; what ``sink`` got stays got."""
    declared_length(environ)
    try:
        return copy_body(environ, sink)
    except IncompleteBody as err:
        if err.expected is None:
            raise errors.SizeInvalid(
                "request body's chunked encoding is broken or ended early",
                detail={"received": err.received},
            ) from None
        raise errors.SizeInvalid(
            "request body ended before its Content-Length",
            detail={"received": err.received, "expected": err.expected},
        ) from None


def copy_body(environ: dict[str, Any], sink: Sink) -> int:
    """Feed the whole request body to ``sink`` piece by piece; return its length.

    A piece's memory is reused once ``sink`` is done with it (see :data:`Sink`); every future
    ``sink`` returned has completed when this returns or raises. Raises
    :class:`IncompleteBody` when the client disconnects early or sends a broken chunked
    encoding; what ``sink`` got stays got.
    """
    length = content_length(environ)
    direct = direct_source(environ, length)
    if direct is not None:
        return direct.copy(sink)
    return _copy_stream(environ["wsgi.input"], length, sink)


@dataclass
class DirectSource:
    """The connection's socket and gunicorn's reader for a body of known length."""

    sock: socket.socket
    body: Body
    reader: LengthReader

    def copy(self, sink: Sink) -> int:
        length = self.reader.length
        buffered = self.reader.unreader.take_buffered()
        if len(buffered) > length:
            self.reader.unreader.unread(buffered[length:])
            buffered = buffered[:length]
        # gunicorn's reader learns of every byte taken off the connection before ``sink`` sees
        # it: if ``sink`` fails (a full disk), gunicorn skips exactly the rest of the body (up
        # to 64 KiB; past that it closes the connection) instead of part of the next request.
        remaining = length - len(buffered)
        self.reader.length = remaining
        first = sink(memoryview(buffered)) if buffered else None
        try:
            with _buffer() as view:
                self._receive(view, sink, length, remaining)
        finally:
            _settle(first)
        return length

    def _receive(self, view: memoryview, sink: Sink, length: int, remaining: int) -> None:
        # The halves in turn: while the sink still uses one piece, the next arrives in the other.
        halves = (view[:CHUNK_SIZE], view[CHUNK_SIZE:])
        using: list[futures.Future[Any] | None] = [None, None]
        turn = 0
        try:
            while remaining:
                _settle(using[turn])
                try:
                    received = self.sock.recv_into(halves[turn], min(remaining, CHUNK_SIZE))
                except OSError:
                    self.body.failed = True
                    raise IncompleteBody(length - remaining, length) from None
                if not received:
                    self.body.failed = True
                    raise IncompleteBody(length - remaining, length)
                remaining -= received
                self.reader.length = remaining
                using[turn] = sink(halves[turn][:received])
                turn ^= 1
        finally:
            _settle(*using)


def direct_source(environ: dict[str, Any], length: int | None) -> DirectSource | None:
    """The socket path, if this is gunicorn, the length is known and nothing was read yet."""
    sock = environ.get("gunicorn.socket")
    body = environ.get("wsgi.input")
    if not length or sock is None or not isinstance(body, Body) or body.buf.tell():
        return None
    reader = body.reader
    if not isinstance(reader, LengthReader) or reader.length != length:
        return None
    if not hasattr(reader.unreader, "take_buffered"):
        return None
    return DirectSource(sock, body, reader)


def _copy_stream(stream: Any, length: int | None, sink: Sink) -> int:
    total = 0
    using = None  # each piece is new memory: only the end waits for the sink
    try:
        while length is None or total < length:
            want = CHUNK_SIZE if length is None else min(CHUNK_SIZE, length - total)
            try:
                data = stream.read(want)
            except (OSError, ParseException):
                raise IncompleteBody(total, length) from None
            if not data:
                break
            using = sink(memoryview(data))
            total += len(data)
    finally:
        _settle(using)
    if length is not None and total < length:
        raise IncompleteBody(total, length)
    return total


def _settle(*using: futures.Future[Any] | None) -> None:
    """Wait until the sink is done with the pieces behind ``using``; its errors are its own."""
    futures.wait([future for future in using if future is not None])


def discard_unread(app: Callable) -> Callable:
    """WSGI middleware: drop what the application left of a request body before answering.

    An answer given before the body was read (401, an unknown upload, a full disk) would
    otherwise go out while the client is still sending; gunicorn skips at most 64 KiB of the
    rest and then closes the connection, the client's send fails, and a proxy in front (nginx)
    may lose the answer and reply 502 instead. Go's server waits a moment for the same reason.
    """

    def discarding(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        result = app(environ, start_response)
        discard_rest(environ, DISCARD_SECONDS)
        return result

    return discarding


def discard_rest(environ: dict[str, Any], seconds: float) -> None:
    """Read and drop the rest of the request body, for up to ``seconds``."""
    stream = environ.get("wsgi.input")
    try:
        if stream is None or content_length(environ) == 0:
            return  # most requests: nothing to drop, no system calls
    except InvalidContentLength:
        return
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        sock = None
    timeout = sock.gettimeout() if sock is not None else None
    deadline = time.monotonic() + seconds
    try:
        while (left := deadline - time.monotonic()) > 0:
            if sock is not None:
                sock.settimeout(left)  # a client that stopped sending holds no thread for long
            if not stream.read(CHUNK_SIZE):
                return
    except (OSError, ParseException, ValueError):
        pass
    finally:
        if sock is not None:
            sock.settimeout(timeout)


@contextlib.contextmanager
def _buffer() -> Iterator[memoryview]:
    """A receive buffer of two pieces for one body: one of the idle ones, or a new one.

    Shared by the process's threads rather than kept per thread: memory follows the bodies
    being received at once, not every thread that ever received one (32 MiB a worker). Only
    a body of more than one piece touches the second half, whose pages go back when it is
    done: an idle buffer holds at most one piece in memory.
    """
    with _idle_lock:
        view = _idle.pop() if _idle else None
    if view is None:
        # Private: what MADV_DONTNEED drops is freed (in a shared mapping it stays in shmem).
        view = memoryview(mmap.mmap(-1, 2 * CHUNK_SIZE, flags=mmap.MAP_PRIVATE))
    try:
        yield view
    finally:
        view.obj.madvise(mmap.MADV_DONTNEED, CHUNK_SIZE, CHUNK_SIZE)
        with _idle_lock:
            if len(_idle) < IDLE_BUFFERS:
                _idle.append(view)


_idle: list[memoryview] = []
_idle_lock = threading.Lock()
