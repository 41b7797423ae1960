"""The gunicorn worker of ``registry serve``: a connection takes a thread only once its request
head has arrived.

gunicorn's gthread worker hands a connection to a thread as soon as a byte arrives, and that
thread then blocks reading the request line and headers with no time limit: a client that
sends one byte and stalls holds a thread for ever, and ``workers x threads`` such clients stop
the server. Here the event loop does the TLS handshake and reads the request head without
blocking, within ``http.timeouts.header``; only a complete head takes a thread. The pool of
threads grows past ``http.threads`` while all of them are busy (up to the worker's connection
limit) and shrinks back when idle, as Go's goroutine per connection would, so requests that
hold a thread for long (an upload from a slow client, a download to a slow reader) never queue
the others. Every read of a body and every write of an answer is bounded by
``http.timeouts.body``; a kept-alive connection waits on the loop for ``http.timeouts.idle``.
The thread that answered a request also serves the connection's next one when its whole head
is there within :data:`NEXT_REQUEST_WAIT_MS` (a busy client keeps its thread, sparing two trips
through the loop); any other connection goes back to the loop.

The request itself is served by gunicorn's own code: its parser, WSGI environ, keep-alive rules
and access log. Only the answer differs: its head goes out with a small body in one ``send``
(:class:`CoalescingResponse`), and a request gunicorn cannot parse gets Go's plain text, not
gunicorn's HTML page.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import itertools
import json
import logging
import queue
import re
import resource
import select
import selectors
import signal
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from gunicorn import http, util
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.body import LengthReader
from gunicorn.http.parser import RequestParser
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

from distribution import balance, debug, errors, requesthead, tls
from distribution.config import HTTPTimeouts
from distribution.stopping import STOPPING
from distribution.tls import clienthello

log = logging.getLogger(__name__)

#: Bytes a request line and headers may take; a larger head is answered 431 and closed.
MAX_HEAD = 1 << 20
#: Bytes read from the socket at a time while waiting for a head.
READ_SIZE = 64 << 10
#: How long, and how many bytes, a closing connection is drained for (RFC 9112 section 9.6).
CLOSE_LINGER = 2.0
CLOSE_DRAIN = 64 << 10
#: Seconds an extra thread stays idle before it ends.
THREAD_IDLE = 30.0
#: Milliseconds a thread waits for a kept-alive connection's next request before handing the
#: connection back to the loop: a client that sends at once (a pull's next HEAD) gets it
#: served without two trips through the loop and two thread switches.
NEXT_REQUEST_WAIT_MS = 2
#: Seconds between two heartbeats to gunicorn's arbiter.
HEARTBEAT = 1.0
#: Seconds between two looks at the board while other workers hold fewer connections.
HELD_BACK_RECHECK = 0.01
#: Seconds between two looks at the connections waiting for their certificate (or, on a Unix
#: socket, for the rest of their ClientHello): their unread hello keeps them readable, so the
#: poller cannot wait for them.
PARKED_RECHECK = 0.05
#: Bytes of body, at most, sent in one piece with the response head.
COALESCE_MAX = 64 << 10
#: Response header names (tokens) and values as gunicorn allows them, one per line.
_NAMES = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+(?:\n[-!#$%&'*+.^_`|~0-9a-zA-Z]+)*")
_VALUES = re.compile(r"[ \t\x21-\x7e\x80-\xff]*(?:\n[ \t\x21-\x7e\x80-\xff]*)*")

#: Go's answer to plain HTTP on a TLS port.
PLAIN_HTTP_ON_TLS = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
)
#: Our answer to a TLS handshake on a plain port: at once, so that a client trying HTTPS first
#: (docker and skopeo with an insecure registry) learns it at once and falls back to HTTP,
#: instead of waiting out its handshake timeout. The TLS client reads it as a bad record.
TLS_ON_PLAIN_HTTP = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Connection: close\r\n\r\nClient sent an HTTPS request to an HTTP server.\n"
)
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 32\r\nConnection: close\r\n\r\nRequest header fields too large\n"
)
#: Requests gunicorn could not take that are not ``400 Bad Request``: Go's ``net/http`` status
#: where it has one (a request line counts against :data:`MAX_HEAD`, as in Go), else gunicorn's.
_REFUSED: tuple[tuple[type[BaseException], int, str], ...] = (
    (http.errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http.errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http.errors.ExpectationFailed, 417, "Expectation Failed"),
    (http.errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (ssl.SSLError, 403, "Forbidden"),
)
#: gunicorn's parse errors that are the server's fault, not the client's.
_SERVER_FAULTS = (
    http.errors.InvalidResponseHeader,
    http.errors.InvalidResponseHeaderName,
    http.errors.ConfigurationProblem,
)
_TLS_HANDSHAKE_RECORD = 0x16
#: The signals by which the arbiter stops a worker.
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGQUIT, signal.SIGINT}


def worker_class(
    timeouts: HTTPTimeouts, tls_factory: Callable[[Any], tls.ServerTLS] | None = None
) -> type[RegistryWorker]:
    """The worker class for gunicorn's ``worker_class`` setting, bound to ``timeouts`` and to
    what makes each worker's :class:`~distribution.tls.ServerTLS` (:func:`tls.server_factory`)."""
    attributes = {"timeouts": timeouts, "tls_factory": staticmethod(tls_factory)}
    return type("RegistryWorker", (RegistryWorker,), attributes)


class ElasticPool:
    """Threads that run submitted calls: ``core`` of them stay, up to ``limit`` while busy.

    A call never waits in a queue while fewer than ``limit`` threads exist: a new thread is
    started when no idle one can take it. Threads above ``core`` end after ``idle`` seconds
    without work. Calls travel through a C queue; a lock guards only the thread counts.
    """

    def __init__(self, core: int, limit: int, idle: float = THREAD_IDLE) -> None:
        self.core = core
        self.limit = max(core, limit)
        self.idle = idle
        self._calls: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._counts = threading.Lock()
        self._threads = 0
        #: Threads waiting for a call that no submitted call has claimed yet.
        self._idle = 0

    @property
    def threads(self) -> int:
        return self._threads

    def submit(self, call: Callable[[], None]) -> None:
        self._calls.put(call)
        with self._counts:
            if self._idle:
                self._idle -= 1
                return
            if self._threads >= self.limit:
                return  # every thread busy: the call waits for the first one free
            self._threads += 1
        threading.Thread(target=self._run, name="request", daemon=True).start()

    def shutdown(self) -> None:
        """Let idle threads end; calls already running finish."""
        with self._counts:
            threads = self._threads
        for _ in range(threads):
            self._calls.put(None)

    def _run(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=self.idle if self._threads > self.core else None)
            except queue.Empty:
                with self._counts:
                    if self._idle and self._threads > self.core:
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue  # a call claimed this thread as it timed out: it is queued
            if call is None:
                with self._counts:
                    self._threads -= 1
                return
            try:
                call()
            except Exception:  # a call's own failure must not end the thread and shrink the pool
                log.exception("request thread: unexpected error")
            with self._counts:
                self._idle += 1


class _Connection:
    """A client connection and what the event loop knows of it while it waits."""

    __slots__ = ("client", "deadline", "head", "lowat", "parser", "server", "sock", "state", "tls")

    def __init__(self, sock: socket.socket, client: Any, server: Any, tls: bool) -> None:
        self.sock = sock
        self.client = client
        self.server = server
        self.parser: Any = None
        self.head = bytearray()
        self.deadline = 0.0
        #: What the loop waits for: "hello" (the TLS ClientHello), "certificate" (off the poller
        #: until its certificate is there), "handshake", "head", "idle", "closing"; "busy" while a
        #: thread has it.
        self.state = "busy"
        self.tls = tls
        #: The bytes of the ClientHello the socket was last told to wait for (SO_RCVLOWAT).
        self.lowat = 0


class RegistryWorker(ThreadWorker):
    """gunicorn's threaded worker with request heads read on the event loop (module doc)."""

    timeouts = HTTPTimeouts()
    tls_factory: Callable[[Any], tls.ServerTLS] | None = None
    #: Set by the master before the fork (:func:`distribution.balance.install`).
    board: balance.Board | None = None
    board_slot = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalived_conns: Any = set()  # gunicorn's handle_request only asks its size
        self._deadlines: list[tuple[float, int, _Connection]] = []
        self._order = itertools.count()
        self._server_tls: tls.ServerTLS | None = None
        self._parked: set[_Connection] = set()
        self._next_unpark = 0.0
        self._next_heartbeat = 0.0
        self._published = -1
        self._held_back = False

    def init_process(self) -> None:
        _raise_open_files_limit()
        settle(self.cfg)
        super().init_process()

    def init_signals(self) -> None:
        super().init_signals()
        # Held back since before the fork (server.RegistryArbiter): a stop that came while
        # this worker booted arrives now, at its own handler.
        hold_stop_signals(False)

    def get_thread_pool(self) -> ElasticPool:  # type: ignore[override]
        return ElasticPool(self.cfg.threads, self.worker_connections)

    def handle_exit(self, sig: int, frame: Any) -> None:
        STOPPING.set()
        super().handle_exit(sig, frame)

    def handle_quit(self, sig: int, frame: Any) -> None:
        STOPPING.set()
        self.tpool.shutdown()
        super(ThreadWorker, self).handle_quit(sig, frame)

    def run(self) -> None:
        if self.cfg.is_ssl:  # now, not at the first connection: Let's Encrypt renews meanwhile
            self._tls()
        self.poller.register(
            self.method_queue.fileno(), selectors.EVENT_READ, self.method_queue.run_callbacks
        )
        self.set_accept_enabled(True)
        while self.alive:
            if time.monotonic() >= self._next_heartbeat:
                self.notify()  # a system call: once a second, not on every event
                self._next_heartbeat = time.monotonic() + HEARTBEAT
                self._published = -1  # and to the board, which takes it as a heartbeat too
            can_accept = self._fair_share() and self.nr_conns < self.worker_connections
            if can_accept != self._accepting:
                self.set_accept_enabled(can_accept)
            self.wait_for_and_dispatch_events(timeout=self._next_wakeup())
            if not self.is_parent_alive():
                break
            self._expire()
            self._unpark()
        self._stop()

    def _fair_share(self) -> bool:
        """Publish this worker's connections on the board; whether it may accept another."""
        if self.board is None:
            return True
        if self.nr_conns != self._published:
            self.board.publish(self.board_slot, self.nr_conns)
            self._published = self.nr_conns
        self._held_back = not self.board.may_accept(self.board_slot, self.nr_conns)
        return not self._held_back

    def accept(self, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        sock.setblocking(False)
        local = listener.getsockname()
        secure = debug.speaks_tls(self.app.config, local, self.cfg.is_ssl)
        if not secure:
            _kernel_timeouts(sock, self.timeouts.body)
        conn = _Connection(sock, client, local, secure)
        self._wait(conn, "hello" if conn.tls else "head", self.timeouts.header)

    def finish_request(self, conn: _Connection, keepalive: bool) -> None:
        """On the loop: a thread is done with ``conn``; wait for its next request or close."""
        if not keepalive:
            self._close(conn, graceful=True)
            return
        conn.head = bytearray(conn.parser.unreader.take_buffered())
        if conn.head:  # the client sent its next request already (pipelining)
            self._wait(conn, "head", self.timeouts.header)
            self._on_ready(conn)
        else:
            self._wait(conn, "idle", self._idle_timeout())

    def handle(self, conn: _Connection) -> bool:  # type: ignore[override]
        """In a thread: serve the request whose head is in ``conn``'s parser."""
        req = None
        try:
            req = next(conn.parser)
            if not req:
                return False
            keepalive = self.handle_request(req, conn)
            if not keepalive or _read_whole(req):
                return keepalive
            return self._keepalive_after(conn, keepalive)
        except http.errors.NoMoreData as err:
            self.log.debug("Ignored premature client disconnection. %s", err)
        except StopIteration as err:
            self.log.debug("Closing connection. %s", err)
        except ssl.SSLError as err:
            if err.args[0] == ssl.SSL_ERROR_EOF:
                self.log.debug("ssl connection closed")
            else:
                self.handle_error(req, conn.sock, conn.client, err)
        except (TimeoutError, BlockingIOError):  # the socket's or the kernel's timeout
            self.log.debug("Closing connection: client too slow")
        except OSError as err:
            if err.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except Exception as err:
            self.handle_error(req, conn.sock, conn.client, err)
        return False

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """A request gunicorn could not take is answered in plain text, as Go's ``net/http``
        answers it; anything else that escaped the app is an OCI ``UNKNOWN`` error. gunicorn's
        own answer is an HTML page, which no client of a registry expects."""
        if isinstance(exc, (http.errors.ParseException, ssl.SSLError)) and not isinstance(
            exc, _SERVER_FAULTS
        ):
            status, reason = next(
                ((status, reason) for kind, status, reason in _REFUSED if isinstance(exc, kind)),
                (400, "Bad Request"),
            )
            self.log.warning("Invalid request from ip=%s: %s", addr[0] if addr else "", exc)
            content_type = "text/plain; charset=utf-8"
            body = f"{status} {reason}: {exc}".encode("utf-8", "replace")
        else:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
            status, reason = 500, "Internal Server Error"
            content_type = "application/json"
            body = json.dumps({"errors": [errors.Unknown().to_dict()]}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            util.write_nonblock(client, head.encode() + body)

    def handle_request(self, req: Any, conn: _Connection) -> bool:  # type: ignore[override]
        """gunicorn's, answering with :class:`CoalescingResponse`; gunicorn's ``pre_request`` and
        ``post_request`` hooks, which ``registry serve`` never sets, are not called."""
        environ: dict[str, Any] = {}
        resp = None
        try:
            request_start = datetime.now()
            resp, environ = requesthead.create(
                req, conn.sock, conn.client, conn.server, self.cfg, CoalescingResponse
            )
            environ["wsgi.multithread"] = True
            self.nr += 1
            if self.nr >= self.max_requests:
                if self.alive:
                    self.log.info("Autorestarting worker after current request.")
                    self.alive = False
                resp.force_close()
            closing = not self.alive or not self.cfg.keepalive
            if closing or len(self.keepalived_conns) >= self.max_keepalived:
                resp.force_close()
            respiter = self.wsgi(environ, resp.start_response)
            try:
                if isinstance(respiter, environ["wsgi.file_wrapper"]):
                    resp.write_file(respiter)
                else:
                    for item in respiter:
                        resp.write(item)
                resp.close()
            finally:
                self.log.access(resp, req, environ, datetime.now() - request_start)
                if hasattr(respiter, "close"):
                    respiter.close()
            return not resp.should_close()
        except OSError:
            raise
        except (Exception, SystemExit):
            if resp and resp.headers_sent:
                # Writing a 500 on a started response would corrupt it.
                self.log.exception("Error handling request")
                util.close_graceful(conn.sock)
                raise StopIteration() from None
            raise

    def _idle_timeout(self) -> float:
        if not self.alive:
            return min(self.timeouts.idle, STOP_KEEPALIVE_LINGER)
        return self.timeouts.idle

    def _wait(self, conn: _Connection, state: str, timeout: float) -> None:
        """Put ``conn`` on the loop, waiting for ``state``'s event for at most ``timeout``."""
        if conn.state == "busy":
            conn.sock.setblocking(False)
            if state == "idle":
                self.keepalived_conns.add(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, lambda _: self._on_ready(conn))
        conn.state = state
        self._set_deadline(conn, time.monotonic() + timeout)

    def _set_deadline(self, conn: _Connection, deadline: float) -> None:
        conn.deadline = deadline
        heapq.heappush(self._deadlines, (deadline, next(self._order), conn))

    def _on_ready(self, conn: _Connection) -> None:
        try:
            if conn.state == "hello":
                self._on_hello(conn)
            if conn.state == "handshake":
                self._on_handshake(conn)
            if conn.state == "idle":
                self.keepalived_conns.discard(conn)
                conn.state = "head"
                self._set_deadline(conn, time.monotonic() + self.timeouts.header)
            if conn.state == "head":
                self._on_head(conn)
            elif conn.state == "closing":
                self._on_closing(conn)
        except (ssl.SSLError, OSError) as err:
            self.log.debug("Closing connection from %s: %s", conn.client, err)
            self._close(conn)

    def _on_hello(self, conn: _Connection) -> None:
        """The start of a TLS port's connection, left unread: plain HTTP gets Go's 400; a
        ClientHello gets the context :meth:`_tls` chooses for it, which may refuse it or have
        it wait for its certificate."""
        server = self._tls()
        size = clienthello.MAX_SIZE if server.reads_hello else 1
        try:
            data = conn.sock.recv(size, socket.MSG_PEEK)
        except BlockingIOError:
            return
        if not data:
            self._close(conn)
            return
        if data[0] != _TLS_HANDSHAKE_RECORD:
            _send_and_forget(conn.sock, PLAIN_HTTP_ON_TLS)
            self._close(conn, graceful=True)
            return
        hello = None
        if server.reads_hello:
            try:
                hello = clienthello.parse(data)
            except clienthello.Malformed as err:
                self.log.debug("Refusing TLS from %s: %s", conn.client, err)
                self._refuse(conn, tls.Refused(tls.DECODE_ERROR))
                return
            if isinstance(hello, int):
                self._await_hello(conn, hello, len(data))
                return
            if conn.lowat:
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
                conn.lowat = 0
        try:
            context = server.context(hello)
        except tls.Refused as refused:
            self._refuse(conn, refused)
            return
        if context is None:
            self._park(conn)
            return
        self.poller.unregister(conn.sock)
        conn.sock = context.wrap_socket(
            conn.sock,
            server_side=True,
            do_handshake_on_connect=False,
            suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
        )
        self.poller.register(conn.sock, selectors.EVENT_READ, lambda _: self._on_ready(conn))
        conn.state = "handshake"

    def _await_hello(self, conn: _Connection, needed: int, have: int) -> None:
        """Have the poller wake for ``conn`` only once ``needed`` bytes of its ClientHello are
        there (peeked bytes stay readable, so waking on each would spin)."""
        if conn.lowat and have < conn.lowat:  # woken short of them: the client is gone
            self._close(conn)
        elif conn.sock.family == socket.AF_UNIX:  # its poll ignores SO_RCVLOWAT
            self._park(conn)
        else:
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, needed)
            conn.lowat = needed

    def _park(self, conn: _Connection) -> None:
        """Take ``conn`` off the poller until its hello is read again, within
        :data:`PARKED_RECHECK`: it waits for a certificate (or the rest of its hello), within
        its deadline."""
        self.poller.unregister(conn.sock)
        conn.state = "certificate"
        self._parked.add(conn)

    def _unpark(self) -> None:
        """Put the parked connections back on the poller, once every :data:`PARKED_RECHECK`
        (on each pass, a readable hello would have the loop spin while a certificate is
        ordered)."""
        now = time.monotonic()
        if not self._parked or now < self._next_unpark:
            return
        self._next_unpark = now + PARKED_RECHECK
        parked, self._parked = self._parked, set()
        for conn in parked:
            if conn.state == "certificate":
                conn.state = "hello"
                self.poller.register(
                    conn.sock, selectors.EVENT_READ, lambda _, conn=conn: self._on_ready(conn)
                )

    def _refuse(self, conn: _Connection, refused: tls.Refused) -> None:
        """End a connection whose handshake has not started with a TLS alert."""
        _send_and_forget(conn.sock, refused.alert)
        self._close(conn, graceful=True)

    def _on_handshake(self, conn: _Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.poller.modify(conn.sock, selectors.EVENT_READ, lambda _: self._on_ready(conn))
            return
        except ssl.SSLWantWriteError:
            self.poller.modify(conn.sock, selectors.EVENT_WRITE, lambda _: self._on_ready(conn))
            return
        self.poller.modify(conn.sock, selectors.EVENT_READ, lambda _: self._on_ready(conn))
        conn.state = "head"

    def _on_head(self, conn: _Connection) -> None:
        """Read what has arrived; hand the connection to a thread once the head is complete."""
        complete = _head_end(conn.head, 0)
        while not complete:
            if len(conn.head) > MAX_HEAD:
                _send_and_forget(conn.sock, HEAD_TOO_LARGE)
                self._close(conn, graceful=True)
                return
            try:
                data = conn.sock.recv(READ_SIZE)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            if not data:
                self._close(conn)
                return
            if not conn.head and not conn.tls and data[0] == _TLS_HANDSHAKE_RECORD:
                _send_and_forget(conn.sock, TLS_ON_PLAIN_HTTP)
                self._close(conn, graceful=True)
                return
            searched = max(0, len(conn.head) - 3)  # a trickled head is searched once, not n times
            conn.head += data
            complete = _head_end(conn.head, searched)
        self._dispatch(conn)

    def _dispatch(self, conn: _Connection) -> None:
        self.poller.unregister(conn.sock)
        conn.state = "busy"
        if conn.tls:  # the ssl module retries a read the kernel timed out: time it here
            conn.sock.settimeout(self.timeouts.body)
        else:
            conn.sock.setblocking(True)
        if conn.parser is None:
            conn.parser = HTTPParser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(bytes(conn.head))
        conn.head = bytearray()
        self.tpool.submit(lambda: self._serve(conn))

    def _serve(self, conn: _Connection) -> None:
        """Serve the request, and the connection's next ones while they come at once."""
        keepalive = False
        try:
            keepalive = self.handle(conn)
            while keepalive and self.alive and _next_head(conn):
                keepalive = self.handle(conn)
        finally:
            self.method_queue.defer(self.finish_request, conn, keepalive)

    def _on_closing(self, conn: _Connection) -> None:
        """Drain what the client still sends after our last answer, until it closes."""
        try:
            data = conn.sock.recv(READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        conn.head += data[: CLOSE_DRAIN - len(conn.head)]
        if not data or len(conn.head) >= CLOSE_DRAIN:
            self._close(conn)

    def _close(self, conn: _Connection, graceful: bool = False) -> None:
        """Close ``conn``; ``graceful`` half-closes first and lingers on the loop for the
        client's end, so the last answer is not cut off by a reset."""
        if conn.state == "closed":
            return
        if graceful:
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError:
                graceful = False
        if graceful:
            self._wait(conn, "closing", CLOSE_LINGER)
            conn.head = bytearray()
            return
        if conn.state == "certificate":
            self._parked.discard(conn)
        elif conn.state != "busy":
            self.poller.unregister(conn.sock)
            self.keepalived_conns.discard(conn)
        conn.state = "closed"
        self.nr_conns -= 1
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _expire(self) -> None:
        """Close every waiting connection whose deadline has passed."""
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, conn = heapq.heappop(self._deadlines)
            if conn.deadline == deadline and conn.state not in ("busy", "closed"):
                if conn.state == "head" and conn.head:
                    self.log.debug("Closing connection from %s: head too slow", conn.client)
                if conn.state == "certificate":  # no certificate came in time
                    _send_and_forget(conn.sock, tls.Refused(tls.INTERNAL_ERROR).alert)
                self._close(conn)

    def _next_wakeup(self) -> float:
        """Seconds until the next deadline or look at the parked connections, at most one;
        while held back, the board's counts are looked at again soon (another worker may have
        taken its share meanwhile)."""
        longest = HELD_BACK_RECHECK if self._held_back else 1.0
        if self._parked:
            longest = min(longest, max(0.0, self._next_unpark - time.monotonic()))
        if not self._deadlines:
            return longest
        return min(longest, max(0.0, self._deadlines[0][0] - time.monotonic()))

    def _stop(self) -> None:
        """Stop accepting. Requests in flight, heads half received included, get up to
        ``graceful_timeout``; a connection with nothing received yet, a short linger for a
        request already on its way. Off the board first: the other workers take every new
        connection."""
        if self.board is not None:
            self.board.withdraw(self.board_slot)
        self._held_back = False
        self.set_accept_enabled(False)
        linger = time.monotonic() + STOP_KEEPALIVE_LINGER
        for _, _, conn in list(self._deadlines):
            idle = conn.state in ("hello", "certificate", "head", "idle") and not conn.head
            if idle and conn.deadline > linger:
                self._set_deadline(conn, linger)
        end = time.monotonic() + self.cfg.graceful_timeout
        while self.nr_conns > 0 and time.monotonic() < end:
            self.notify()
            self.wait_for_and_dispatch_events(timeout=self._next_wakeup())
            self._expire()
        self.tpool.shutdown()
        self.poller.close()
        self.method_queue.close()
        for listener in self.sockets:
            listener.close()

    def _tls(self) -> tls.ServerTLS:
        """What chooses the TLS context of each connection (:mod:`distribution.tls`), made
        once in this worker."""
        if self._server_tls is None:
            if self.tls_factory is None:
                raise RuntimeError("a TLS port needs the worker class's tls_factory")
            self._server_tls = self.tls_factory(self.cfg)
        return self._server_tls


class CoalescingResponse(wsgi.Response):
    """gunicorn's response, sending the head with the first piece of the body in one
    ``send`` when that piece is small: a manifest or an error costs one system call, not
    two, and reaches the client in one packet."""

    _hold = False
    _held: bytes | None = None

    def process_headers(self, headers: list[tuple[str, str]]) -> None:
        """gunicorn's, with all names checked in one match and all values in another, not two
        per header; any header that fails goes to gunicorn's, which refuses it by name."""
        try:
            names, values = "\n".join(n for n, _ in headers), "\n".join(v for _, v in headers)
        except TypeError:  # not a str
            super().process_headers(headers)
            return
        lines = len(headers) - 1
        if not (
            _NAMES.fullmatch(names)
            and _VALUES.fullmatch(values)
            and names.count("\n") == lines
            and values.count("\n") == lines
        ):
            super().process_headers(headers)
            return
        kept = self.headers
        for name, value in headers:
            value, lower = value.strip(" \t"), name.lower()
            if lower == "content-length":
                self.response_length = int(value)
            elif lower in util.hop_headers:
                if lower == "connection" and value.lower() == "upgrade":
                    self.upgrade = True
                elif lower == "upgrade" and value.lower() == "websocket":
                    kept.append((name, value))
                continue
            kept.append((name, value))

    def default_headers(self) -> list[str]:
        """gunicorn's status line and headers, with a ``Date`` formatted once a second rather
        than for every answer."""
        if self.upgrade:
            connection = "upgrade"
        elif self.should_close():
            connection = "close"
        else:
            connection = "keep-alive"
        # The request's version, up to 1.1: what this server speaks (RFC 9110 2.5; Go too).
        major, minor = min(self.req.version, (1, 1))
        headers = [
            f"HTTP/{major}.{minor} {self.status}\r\n",
            f"Server: {self.version}\r\n",
            f"Date: {http_date()}\r\n",
            f"Connection: {connection}\r\n",
        ]
        if self.chunked:
            headers.append("Transfer-Encoding: chunked\r\n")
        return headers

    def send_headers(self) -> None:
        if self.headers_sent or not self._hold:
            super().send_headers()
            return
        lines = self.default_headers()
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        self._held = f"{''.join(lines)}\r\n".encode("latin-1")
        self.headers_sent = True

    def write(self, arg: bytes) -> None:
        self._hold = not self.headers_sent
        try:
            super().write(arg)
        finally:
            self._hold = False
            self._send_held()  # the body was empty, or not sent (HEAD, 304)

    def _emit_body(self, data: bytes) -> None:
        if self._held is not None and not self.chunked and len(data) <= COALESCE_MAX:
            data, self._held = self._held + data, None
        self._send_held()
        util.write(self.sock, data, self.chunked)

    def _send_held(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            util.write(self.sock, held)


_date = (0, "")


def http_date() -> str:
    """The ``Date`` header's value for now, formatted at most once a second."""
    global _date
    now = int(time.time())
    second, text = _date
    if second != now:
        text = util.http_date(now)
        _date = (now, text)
    return text


def _head_end(head: bytearray, start: int) -> bool:
    """Whether the blank line that ends a request head is in ``head`` at or after ``start``."""
    return head.find(b"\r\n\r\n", start) >= 0 or head.find(b"\n\n", start) >= 0


def _next_head(conn: _Connection) -> bool:
    """Whether the next request's whole head is at hand within :data:`NEXT_REQUEST_WAIT`, so
    the thread that served the last one serves it too, sparing two trips through the loop.

    Only complete heads are taken: whatever else arrived stays in the parser's buffer for the
    loop, which waits for the rest under the header timeout. TLS connections always go back
    to the loop.
    """
    if conn.tls:
        return False
    unreader = conn.parser.unreader
    head = unreader.take_buffered()
    if not _head_end(head, 0):
        poller = select.poll()
        poller.register(conn.sock, select.POLLIN)
        if poller.poll(NEXT_REQUEST_WAIT_MS):
            try:
                data = conn.sock.recv(READ_SIZE, socket.MSG_DONTWAIT)
            except OSError:  # nothing yet, or the client reset: the loop sees which
                data = None
            if data:  # an orderly close (b"") is the loop's to see
                head += data
    unreader.unread(head)
    return _head_end(head, 0)


def settle(cfg: Config) -> None:
    """Make each of gunicorn's settings a plain attribute of ``cfg``, as it stands when a worker
    starts (a reload starts new workers). gunicorn reads a setting through ``__getattr__`` and
    its ``Setting`` object, about 15 times per request: a tenth of what serving one cost it."""
    for name, setting in cfg.settings.items():
        if not isinstance(getattr(type(cfg), name, None), property):
            cfg.__dict__[name] = setting.get()


def hold_stop_signals(hold: bool) -> None:
    """Hold back (or let through, once handled) the signals that stop a worker."""
    signal.pthread_sigmask(signal.SIG_BLOCK if hold else signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _kernel_timeouts(sock: socket.socket, seconds: float) -> None:
    """Bound each read and write of a blocking socket in the kernel (``SO_RCVTIMEO``,
    ``SO_SNDTIMEO``): a Python socket timeout would cost a ``poll`` before every call."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class HTTPParser(RequestParser):
    """gunicorn's HTTP/1 parser (what ``http.get_parser`` gives for our settings), without the
    socket timeout it reads and sets back before each request to drain the last one's body,
    when that body is already read: a GET's, most of them. Setting a timeout is a system call
    that lets go of the GIL, which under load costs a switch between threads. Plain heads are
    read by :mod:`distribution.requesthead`."""

    mesg_class = staticmethod(requesthead.parse)

    def finish_body(self, deadline: float | None = None, max_bytes: int | None = None) -> bool:
        if self.mesg and _read_whole(self.mesg):
            return True
        return super().finish_body(deadline, max_bytes)


def _read_whole(req: Any) -> bool:
    """Whether nothing of the request's body is left to drop before the next request
    (a request without one, most of them), so no draining is needed."""
    reader = getattr(req.body, "reader", None)
    return isinstance(reader, LengthReader) and reader.length == 0


def _send_and_forget(sock: socket.socket, data: bytes) -> None:
    """A short answer on a non-blocking socket, as far as it goes without waiting."""
    with contextlib.suppress(OSError):
        sock.send(data)


def _raise_open_files_limit() -> None:
    """Raise the soft open-files limit to the hard one, as Go's runtime does at start: every
    waiting connection holds a descriptor."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError) as err:
            log.debug("cannot raise the open files limit: %s", err)
