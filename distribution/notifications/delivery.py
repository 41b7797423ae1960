"""Posting envelopes to one endpoint, and retrying as Go's ``RetryingSink`` with a ``Breaker``.

One attempt is one POST with the endpoint's ``headers`` (after a ``Basic`` header for user
info in the URL, as Go's client sends), following redirects as Go's ``http.Client`` does (at
most 10; 307 and 308 repeat the POST, 301, 302 and 303 turn it into a GET); the final answer
accepts the envelope when it is 2xx or 3xx, as in Go. The endpoint's ``timeout`` bounds the
whole attempt, redirects included, as Go's ``Client.Timeout`` does: an endpoint that answers a
byte at a time cannot hold a sender (nor an event a Redis queue believes taken) for longer.
The answer's body is never read. Failed attempts are retried for ever: straight away until
``threshold`` failures in a row, then one attempt per ``backoff``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import logging
import math
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

from distribution import metrics
from distribution.notifications.events import EVENTS_MEDIA_TYPE

#: Redirects followed in one attempt, as Go's ``http.Client``.
MAX_REDIRECTS = 10
REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: An HTTP header name (RFC 9110 ``token``).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

log = logging.getLogger(__name__)

#: Proxies from the environment that cannot be used, each logged once.
_unusable_proxies: set[str] = set()


class DeliveryError(Exception):
    """An attempt failed: no connection, a timeout, or an answer other than 2xx/3xx
    (``status``, None without an answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HTTPSender:
    """POSTs envelopes to ``url``: ``Content-Type`` first, then the configured ``headers``
    (each value its own header line, as Go's ``http.Header``)."""

    def __init__(self, url: str, headers: Mapping[str, Sequence[str]], timeout: float) -> None:
        check_url(url)
        check_headers(headers)
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self._tls: ssl.SSLContext | None = None
        self._watchdog = _Watchdog()

    def send(self, body: bytes) -> int:
        """One attempt; the final status on acceptance, :class:`DeliveryError` otherwise."""
        method, url, data = "POST", self.url, body
        deadline = time.monotonic() + self.timeout
        for _ in range(MAX_REDIRECTS + 1):
            status, reason, location = self._request(method, url, data, deadline)
            if status not in REDIRECTS or not location:
                break
            url = urljoin(url, location)
            try:
                check_url(url)
            except ValueError as err:
                raise DeliveryError(f"{redacted(self.url)}: redirected to {err}") from None
            if status not in (307, 308):
                method, data = "GET", None
        else:
            raise DeliveryError(f"{redacted(self.url)}: stopped after {MAX_REDIRECTS} redirects")
        if not 200 <= status < 400:
            raise DeliveryError(
                f"{redacted(url)}: response status {status} {reason} unaccepted", status
            )
        return status

    def _request(
        self, method: str, url: str, body: bytes | None, deadline: float
    ) -> tuple[int, str, str | None]:
        """Status, reason and ``Location`` of one request to ``url``, through the
        environment's proxy where Go's client would use one, over by ``deadline``."""
        parts = urlsplit(url)
        netloc = parts.netloc.rpartition("@")[2]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = _environment_proxy(parts)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeliveryError(f"error posting to {redacted(url)}: {self._timed_out()}")
        connection = self._connection(parts.scheme, netloc, proxy, remaining)
        # A socket timeout bounds each read, not their sum: at the deadline the socket is shut.
        attempt = self._watchdog.watch(connection, deadline)
        try:
            if proxy is not None and parts.scheme == "http":
                target = f"http://{netloc}{target}"  # a proxy takes the absolute URL
            connection.putrequest(method, target)
            if proxy is not None and parts.scheme == "http" and "@" in proxy.netloc:
                connection.putheader("Proxy-Authorization", _basic(proxy))
            if "@" in parts.netloc:
                connection.putheader("Authorization", _basic(parts))
            if body is not None:
                connection.putheader("Content-Type", EVENTS_MEDIA_TYPE)
            for name, values in self.headers.items():
                for value in values:
                    connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as err:
            reason = self._timed_out() if attempt.fired else err or type(err).__name__
            raise DeliveryError(f"error posting to {redacted(url)}: {reason}") from None
        finally:
            self._watchdog.forget(attempt)
            connection.close()
        return response.status, response.reason, response.getheader("Location")

    def _timed_out(self) -> str:
        return f"no answer within the timeout ({self.timeout:g}s)"

    def _connection(
        self, scheme: str, netloc: str, proxy: SplitResult | None, timeout: float
    ) -> http.client.HTTPConnection:
        """A connection to ``netloc``, or to ``proxy`` (for HTTPS, a tunnel through it)."""
        address = netloc if proxy is None else proxy.netloc.rpartition("@")[2]
        if scheme != "https":
            return http.client.HTTPConnection(address, timeout=timeout)
        if self._tls is None:  # loading the trusted CAs takes tens of milliseconds: once
            self._tls = ssl.create_default_context()
        connection = http.client.HTTPSConnection(address, timeout=timeout, context=self._tls)
        if proxy is not None:
            auth = {"Proxy-Authorization": _basic(proxy)} if "@" in proxy.netloc else None
            connection.set_tunnel(netloc, headers=auth)
        return connection


class _Attempt:
    """One request being watched; :attr:`fired` once its deadline shut its socket."""

    fired = False


class _Watchdog:
    """Shuts the socket of each watched request still under way at its deadline, failing
    whatever read or write it was in. One thread serves a sender's attempts (a thread per
    attempt cost 0.2 ms a delivery); it starts at the first, in the process that sends."""

    def __init__(self) -> None:
        self._pid = 0
        self._starting = threading.Lock()
        self._cond = threading.Condition()
        self._watched: dict[_Attempt, tuple[float, http.client.HTTPConnection]] = {}
        #: When the thread wakes next: it is woken sooner only for an earlier deadline, so a
        #: sender's attempts (each with the same timeout) do not wake it one by one.
        self._until = math.inf

    def watch(self, connection: http.client.HTTPConnection, deadline: float) -> _Attempt:
        """Watch ``connection`` until :meth:`forget` (call it whatever happens)."""
        attempt = _Attempt()
        if self._pid != os.getpid():
            with self._starting:
                if self._pid != os.getpid():  # first use, or a forked copy without the thread
                    self._cond, self._watched, self._until = threading.Condition(), {}, math.inf
                    threading.Thread(
                        target=self._run, name="notification-deadlines", daemon=True
                    ).start()
                    self._pid = os.getpid()
        with self._cond:
            self._watched[attempt] = (deadline, connection)
            if deadline < self._until:
                self._cond.notify()
        return attempt

    def forget(self, attempt: _Attempt) -> None:
        with self._cond:
            self._watched.pop(attempt, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for attempt, (deadline, connection) in list(self._watched.items()):
                    if deadline <= now:
                        del self._watched[attempt]
                        attempt.fired = True
                        _shut(connection)
                self._until = min(
                    (deadline for deadline, _ in self._watched.values()), default=math.inf
                )
                self._cond.wait(None if self._until == math.inf else self._until - now)


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:  # before the connection is made, its own timeout holds
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def redacted(url: str) -> str:
    """``url`` with its password replaced, as Go's ``URL.Redacted``: what logs, metrics and
    queue names show of an endpoint's URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.split(':', 1)[0]}:xxxxx@{host}").geturl()


def check_url(url: str) -> None:
    """Raise ``ValueError`` unless ``url`` is an http(s) URL with a host and a valid port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http or https URL")
    try:
        valid_port = parts.port is None or parts.port > 0
    except ValueError:
        valid_port = False
    if not valid_port:
        raise ValueError(f"{url!r} has an invalid port")


def check_headers(headers: Mapping[str, Sequence[str]]) -> None:
    """Raise ``ValueError`` for a header HTTP cannot carry: a name that is not a token, or a
    value with a line break or a character outside Latin-1."""
    for name, values in headers.items():
        if not _TOKEN.fullmatch(name):
            raise ValueError(f"header name {name!r} is not valid in HTTP")
        for value in values:
            if "\r" in value or "\n" in value or not _latin1(value):
                raise ValueError(f"header {name}: value {value!r} cannot be sent in HTTP")


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _environment_proxy(url: SplitResult) -> SplitResult | None:
    """The proxy Go's ``http.ProxyFromEnvironment`` picks for ``url``: ``HTTPS_PROXY`` or
    ``HTTP_PROXY`` by scheme (upper case first; ``http://`` when it names none), unless the
    host is loopback or ``NO_PROXY`` names it (``*``, a domain and its subdomains, a CIDR).

    Only ``http://`` proxies are spoken to; another kind (``https://``, ``socks5://``) is
    logged once and bypassed.
    """
    from urllib.request import proxy_bypass_environment  # heavy: only where events are sent

    name = "HTTPS_PROXY" if url.scheme == "https" else "HTTP_PROXY"
    value = os.environ.get(name) or os.environ.get(name.lower())
    host = (url.hostname or "").lower()
    if not value or host == "localhost" or _in_networks(host, ("127.0.0.0/8", "::1/128")):
        return None
    no_proxy = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    entries = [entry.strip() for entry in no_proxy.split(",") if entry.strip()]
    if (
        "*" in entries
        or _in_networks(host, [e for e in entries if "/" in e])
        or proxy_bypass_environment(
            url.netloc.rpartition("@")[2], {"no": ",".join(e for e in entries if "/" not in e)}
        )
    ):
        return None
    proxy = urlsplit(value if "://" in value else f"http://{value}")
    if proxy.scheme == "http" and proxy.hostname:
        return proxy
    if value not in _unusable_proxies:
        _unusable_proxies.add(value)
        log.warning("notifications: %s is not an http:// proxy; posting without it", name)
    return None


def _in_networks(host: str, networks: Iterable[str]) -> bool:
    """Whether ``host`` is an IP address in one of ``networks`` (CIDRs; bad ones skipped)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    for network in networks:
        with contextlib.suppress(ValueError):
            if address in ipaddress.ip_network(network, strict=False):
                return True
    return False


def _basic(parts: SplitResult) -> str:
    """The ``Basic`` header of a URL's user info, which Go's ``http.Client`` sends for it."""
    pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


class Breaker:
    """Go's ``events.Breaker``: no wait until ``threshold`` failures in a row, then ``backoff``
    after the last failure."""

    def __init__(self, threshold: int, backoff: float) -> None:
        self.threshold = threshold
        self.backoff = backoff
        self.recent = 0
        self.last = 0.0

    def wait(self, now: float) -> float:
        """Seconds to wait before the next attempt."""
        if self.recent < self.threshold:
            return 0.0
        return max(0.0, self.last + self.backoff - now)

    def success(self) -> None:
        self.recent = 0
        self.last = 0.0

    def failure(self, now: float) -> None:
        self.recent += 1
        self.last = now


def deliver(
    body: bytes,
    send: Callable[[bytes], int],
    breaker: Breaker,
    stopping: threading.Event,
    name: str,
    heartbeat: Callable[[], None] = lambda: None,
    heartbeat_every: float = 2.0,
) -> bool:
    """Send ``body`` until it is accepted (True) or ``stopping`` is set (False).

    ``heartbeat`` is called between attempts, at least every ``heartbeat_every`` seconds of
    waiting, so a shared queue knows the event is still being worked on.
    """
    while not stopping.is_set():
        pause = breaker.wait(time.monotonic())
        while pause > 0:
            heartbeat()
            if stopping.wait(min(pause, heartbeat_every)):
                return False
            pause = breaker.wait(time.monotonic())
        try:
            status = send(body)
        except DeliveryError as err:
            if err.status is None:
                metrics.notifications.failed(name)
            else:
                metrics.notifications.answered(name, err.status, accepted=False)
            breaker.failure(time.monotonic())
            log.warning("notifications: endpoint %s: %s, retrying", name, err)
            heartbeat()
            continue
        metrics.notifications.answered(name, status, accepted=True)
        breaker.success()
        return True
    return False
