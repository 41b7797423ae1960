"""Posting envelopes to one endpoint, and retrying as Go's ``RetryingSink`` with a ``Breaker``.

One attempt is one POST with the endpoint's ``timeout`` and ``headers``; any 2xx or 3xx
answer accepts the envelope, as in Go (redirects are not followed). Failed attempts are
retried for ever: straight away until ``threshold`` failures in a row, then one attempt per
``backoff``.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from distribution.notifications.events import EVENTS_MEDIA_TYPE

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """An attempt failed: no connection, a timeout, or an answer other than 2xx/3xx."""


class HTTPSender:
    """POSTs envelopes to ``url``: ``Content-Type`` first, then the configured ``headers``
    (each value its own header line, as Go's ``http.Header``)."""

    def __init__(self, url: str, headers: Mapping[str, Sequence[str]], timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http or https URL")
        self.url = url
        self.headers = headers
        self.timeout = timeout
        self._scheme = parts.scheme
        self._netloc = parts.netloc.rpartition("@")[2]
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def send(self, body: bytes) -> int:
        """One attempt; the status on acceptance, :class:`DeliveryError` otherwise."""
        connection = self._connection()
        try:
            connection.putrequest("POST", self._target)
            connection.putheader("Content-Type", EVENTS_MEDIA_TYPE)
            for name, values in self.headers.items():
                for value in values:
                    connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as err:
            raise DeliveryError(
                f"error posting to {self.url}: {err or type(err).__name__}"
            ) from None
        finally:
            connection.close()
        if not 200 <= response.status < 400:
            raise DeliveryError(
                f"{self.url}: response status {response.status} {response.reason} unaccepted"
            )
        return response.status

    def _connection(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(
                self._netloc, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._netloc, timeout=self.timeout)


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
    send: Callable[[bytes], object],
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
            send(body)
        except DeliveryError as err:
            breaker.failure(time.monotonic())
            log.warning("notifications: endpoint %s: %s, retrying", name, err)
            heartbeat()
            continue
        breaker.success()
        return True
    return False
