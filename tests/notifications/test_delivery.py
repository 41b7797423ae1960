"""One endpoint's delivery: the POST itself, Go's breaker, retrying until accepted."""

from __future__ import annotations

import threading
import time

import pytest

from distribution.notifications.delivery import Breaker, DeliveryError, HTTPSender, deliver
from tests.notifications.receiver import Receiver

BODY = b'{"events": [{"id": "1"}]}'
BODY_JSON = {"events": [{"id": "1"}]}


def test_breaker_waits_only_after_threshold_failures() -> None:
    breaker = Breaker(threshold=2, backoff=5.0)
    assert breaker.wait(100.0) == 0
    breaker.failure(100.0)
    assert breaker.wait(100.0) == 0
    breaker.failure(101.0)
    assert breaker.wait(102.0) == pytest.approx(4.0)
    assert breaker.wait(107.0) == 0
    breaker.success()
    assert breaker.wait(102.0) == 0


def test_sender_posts_the_envelope_with_headers(receiver: Receiver) -> None:
    sender = HTTPSender(receiver.url + "?key=1", {"X-A": ("1", "2")}, timeout=5)
    assert sender.send(BODY) == 200
    post = receiver.posts[0]
    assert post.path == "/events?key=1"
    assert post.body == {"events": [{"id": "1"}]}
    assert post.header("X-A") == ["1", "2"]


def test_sender_sends_the_urls_user_info_as_basic_auth(receiver: Receiver) -> None:
    """As Go's ``http.Client`` does for ``https://user:password@host/...``: the user info
    (unescaped) becomes a ``Basic`` header before the configured ones, never on a redirect."""
    url = receiver.url.replace("http://", "http://hook:s%40cret@")
    sender = HTTPSender(url, {"Authorization": ("Bearer x",)}, timeout=5)
    assert sender.send(BODY) == 200
    post = receiver.posts.pop()
    assert post.header("Authorization") == ["Basic aG9vazpzQGNyZXQ=", "Bearer x"]
    assert post.header("Host") == [receiver.url.split("/")[2]]
    target = Receiver().start()
    try:
        receiver.status, receiver.location = 307, target.url
        assert sender.send(BODY) == 200
        assert target.posts.pop().header("Authorization") == ["Bearer x"]
    finally:
        target.stop()


def test_sender_fails_on_error_status_and_refused_connection(receiver: Receiver) -> None:
    sender = HTTPSender(receiver.url, {}, timeout=5)
    receiver.status = 500
    with pytest.raises(DeliveryError, match="500"):
        sender.send(BODY)
    receiver.status = 302
    assert sender.send(BODY) == 302  # 3xx without a Location is accepted, as in Go
    receiver.stop()
    with pytest.raises(DeliveryError, match="error posting"):
        sender.send(BODY)


def test_sender_follows_redirects_as_gos_client(receiver: Receiver) -> None:
    target = Receiver().start()
    try:
        sender = HTTPSender(receiver.url, {"X-A": ("1",)}, timeout=5)
        receiver.location = target.url + "?moved=1"
        for status in (307, 308):  # the POST is repeated there, body and headers
            receiver.status = status
            assert sender.send(BODY) == 200
            post = target.posts.pop()
            assert (post.method, post.path, post.body) == ("POST", "/events?moved=1", BODY_JSON)
            assert post.header("X-A") == ["1"]
        for status in (301, 302, 303):  # the POST becomes a GET, as Go's client does
            receiver.status = status
            assert sender.send(BODY) == 200
            post = target.posts.pop()
            assert (post.method, post.body, post.header("X-A")) == ("GET", {}, ["1"])
        receiver.status = 307
        target.status = 500
        with pytest.raises(DeliveryError, match="500"):
            sender.send(BODY)
        receiver.location = receiver.url  # round and round
        with pytest.raises(DeliveryError, match="10 redirects"):
            sender.send(BODY)
        receiver.location = "ftp://elsewhere/"
        with pytest.raises(DeliveryError, match="redirected"):
            sender.send(BODY)
    finally:
        target.stop()


def test_sender_turns_any_failure_into_a_delivery_error(receiver: Receiver) -> None:
    """A header value checked at start-up can still not reach a thread crash."""
    sender = HTTPSender(receiver.url, {}, timeout=5)
    sender.headers = {"X-A": ("\u2615",)}
    with pytest.raises(DeliveryError):
        sender.send(BODY)


def test_deliver_retries_until_the_endpoint_is_back(receiver: Receiver) -> None:
    receiver.stop()
    sender = HTTPSender(receiver.url, {}, timeout=5)
    breaker = Breaker(threshold=3, backoff=0.2)
    beats: list[float] = []
    result: list[bool] = []
    stopping = threading.Event()
    thread = threading.Thread(
        target=lambda: result.append(
            deliver(BODY, sender.send, breaker, stopping, "test", lambda: beats.append(1), 0.1)
        )
    )
    thread.start()
    deadline = time.monotonic() + 30
    while breaker.recent < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert breaker.recent >= 5 and beats
    receiver.start()
    thread.join(30)
    assert result == [True]
    assert len(receiver.posts) == 1
    assert breaker.recent == 0


def test_deliver_gives_up_only_when_stopping(receiver: Receiver) -> None:
    receiver.status = 503
    stopping = threading.Event()
    breaker = Breaker(threshold=1, backoff=60)
    sender = HTTPSender(receiver.url, {}, timeout=5)
    timer = threading.Timer(0.3, stopping.set)
    timer.start()
    assert deliver(BODY, sender.send, breaker, stopping, "test") is False
    assert breaker.recent == 1
