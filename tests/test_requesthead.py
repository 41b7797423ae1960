"""The fast reading of plain heads (``distribution.requesthead``) against gunicorn's parser.

For every head, the fast path either declines it (gunicorn then reads it) or makes the request
and the environ gunicorn makes, leaving the same bytes unread. Each head below is checked both
ways, and so are a few thousand seeded mutations of them.
"""

from __future__ import annotations

import random
import socket
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.unreader import IterUnreader

from distribution import config as config_module
from distribution import requesthead, server, worker

REGISTRY = "Host: registry.example:5000\r\nUser-Agent: docker/27.3.1 go/go1.22.7\r\n"
ACCEPT = (
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json\r\n"
)

#: Heads the fast path reads.
PLAIN = [
    "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:5000\r\n\r\n",
    "GET /v2/ HTTP/1.0\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: [::1]:5000\r\nX: y\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost:\r\n\r\n",
    "HEAD /v2/ HTTP/1.0\r\nHost: x\r\n\r\n",
    f"GET /v2/library/debian/manifests/bookworm HTTP/1.1\r\n{REGISTRY}{ACCEPT}\r\n",
    f"HEAD /v2/a/b/blobs/sha256:{'0' * 64} HTTP/1.1\r\n{REGISTRY}Accept-Encoding: gzip\r\n\r\n",
    "GET /v2/_catalog?n=100&last=a%2Fb HTTP/1.1\r\nHost: h\r\nAuthorization: Basic dTpw\r\n\r\n",
    "GET /v2/a%20b/tags/list? HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/a/tags/list?n=1?x HTTP/1.1\r\nHost:h\r\nAccept:\r\nX-Empty: \t \r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\nACCEPT:  c \r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Ssl: off\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nContent-Type: text/html\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\nPOST /v2/a/blobs/uploads/ HTTP/1.1\r\n",
    "GET /ui/a/b?tag=x&y=%C3%A9 HTTP/1.1\r\nHost: h\r\nCookie: s=abc; t=def\r\nRange: 0-9\r\n\r\n",
    "GET /v2/%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n",
]

#: Heads it leaves to gunicorn, which reads some of them and refuses the others.
OTHER = [
    "POST /v2/a/blobs/uploads/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "PUT /v2/a/manifests/t HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Folded: a\r\n b\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Nul: a\x00b\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost : h\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\n: h\r\n\r\n",
    "GET /v2/ HTTP/1.1\nHost: h\n\n",
    "GET /v2/ HTTP/1.1\r\nHost: h\r\n",
    "\r\nGET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/#top HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET //v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET http://h/v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/\xe9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/ HTTP/2.0\r\nHost: h\r\n\r\n",
    "GET /v2/ HTTP/1.1 \r\nHost: h\r\n\r\n",
    "GET  /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "get /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "OPTIONS /v2/ HTTP/1.1\r\nHost: h\r\n\r\n",
    "DELETE /v2/a/manifests/t HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\n\r\n",
    "GET /v2/ HTTP/1.1\r\nHost: a b\r\n\r\n",
    "HEAD /v2/ HTTP/1.0\r\nHost: a/b\r\n\r\n",
]

#: Addresses a request comes from: one gunicorn trusts for scheme headers, one it does not.
PEERS = [("127.0.0.1", 40000), ("192.0.2.7", 40000)]


def _settled(cfg: Config) -> Config:
    worker.settle(cfg)
    return cfg


def _configs() -> list[tuple[str, Config]]:
    """gunicorn's defaults, ``registry serve``'s settings, and small limits."""
    registry = config_module.parse(
        "version: 0.1\nstorage: {inmemory: {}}\nhttp: {addr: 127.0.0.1:5000}\n", {}
    )
    serve = Config()
    for key, value in server.gunicorn_options(registry).items():
        serve.set(key, value)
    small = Config()
    small.set("limit_request_line", 20)
    small.set("limit_request_fields", 2)
    small.set("limit_request_field_size", 30)
    return [("defaults", _settled(Config())), ("serve", _settled(serve)), ("small", small)]


CONFIGS = _configs()


def _gunicorn(cfg: Config, head: bytes, peer: Any) -> tuple[Any, bytes] | Exception:
    """gunicorn's request for ``head`` and the bytes it left unread, or what it raised."""
    unreader = IterUnreader([head])
    try:
        request = requesthead.Request(cfg, unreader, peer, 1)
    except Exception as err:  # any refusal: the fast path must have declined it
        return err
    return request, unreader.take_buffered()


def _fast(cfg: Config, head: bytes, peer: Any) -> tuple[Any, bytes] | None:
    unreader = IterUnreader([])
    request = requesthead._plain(cfg, unreader, peer, 1, head)
    return None if request is None else (request, unreader.take_buffered())


def _comparable(request: Any) -> dict[str, Any]:
    values = dict(vars(request))
    body = values.pop("body")
    values.pop("unreader")
    values["body"] = (type(body.reader).__name__, getattr(body.reader, "length", None))
    return values


def _environ(create: Any, request: Any, cfg: Config, peer: Any) -> dict[str, Any]:
    left, right = socket.socketpair()
    with left, right:
        response, environ = create(
            request, left, peer, ("127.0.0.1", 5000), cfg, worker.CoalescingResponse
        )
    assert response.req is request
    for key in ("wsgi.errors", "wsgi.early_hints", "wsgi.input", "gunicorn.socket"):
        environ[key] = type(environ[key]).__name__
    return environ


def _check(cfg: Config, head: bytes, peer: Any) -> bool:
    """Whether the fast path read ``head``; if it did, it agrees with gunicorn."""
    fast = _fast(cfg, head, peer)
    if fast is None:
        return False
    slow = _gunicorn(cfg, head, peer)
    assert not isinstance(slow, Exception), f"gunicorn refuses {head!r}: {slow!r}"
    (ours, our_rest), (theirs, their_rest) = fast, slow
    assert type(ours) is requesthead.PlainRequest
    assert _comparable(ours) == _comparable(theirs), head
    assert our_rest == their_rest, head
    assert _environ(requesthead.create, ours, cfg, peer) == _environ(
        wsgi.create, theirs, cfg, peer
    ), head
    return True


@pytest.mark.parametrize("name,cfg", CONFIGS[:2], ids=[name for name, _ in CONFIGS[:2]])
@pytest.mark.parametrize("peer", PEERS, ids=["trusted", "untrusted"])
@pytest.mark.parametrize("head", PLAIN)
def test_plain_heads_are_read_as_gunicorn_reads_them(name: str, cfg: Config, peer, head) -> None:
    assert _check(cfg, head.encode("latin-1"), peer)


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=[name for name, _ in CONFIGS])
@pytest.mark.parametrize("head", OTHER)
def test_other_heads_are_left_to_gunicorn(name: str, cfg: Config, head: str) -> None:
    assert not _check(cfg, head.encode("latin-1"), PEERS[0])


def test_the_scheme_follows_the_trusted_header_only() -> None:
    cfg = CONFIGS[0][1]  # gunicorn's default: only 127.0.0.1 and ::1 are trusted
    head = b"GET /v2/ HTTP/1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n\r\n"
    assert _fast(cfg, head, PEERS[0])[0].scheme == "https"
    assert _fast(cfg, head, PEERS[1])[0].scheme == "http"


def test_limits_send_the_head_to_gunicorn() -> None:
    cfg = CONFIGS[2][1]  # a request line of 20, two fields of 30 with their line break
    for head in (
        b"GET /abcdef HTTP/1.1\r\nHost: 1\r\nB: 2\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nHost: " + b"x" * 22 + b"\r\n\r\n",
    ):
        assert _check(cfg, head, PEERS[0])
    for head in (
        b"GET /abcdefg HTTP/1.1\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
        b"GET /v2/ HTTP/1.1\r\nA: " + b"x" * 26 + b"\r\n\r\n",
    ):
        assert not _check(cfg, head, PEERS[0])
        assert isinstance(_gunicorn(cfg, head, PEERS[0]), Exception)


def test_limits_below_any_head_leave_every_head_to_gunicorn() -> None:
    cfg = Config()
    cfg.set("limit_request_line", 5)
    head = b"GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n"
    assert not _check(cfg, head, PEERS[0])
    assert isinstance(_gunicorn(cfg, head, PEERS[0]), Exception)


def test_the_proxy_protocol_is_left_to_gunicorn() -> None:
    cfg = Config()
    cfg.set("proxy_protocol", "v1")
    assert not _check(cfg, b"GET /v2/ HTTP/1.1\r\nHost: h\r\n\r\n", PEERS[0])


#: Bytes mutations put in: separators, controls, case, and bytes outside ASCII.
_MUTATIONS = [b"\r", b"\n", b"\r\n", b" ", b"\t", b":", b"_", b"#", b"?", b"/", b"%", b"\x00"]
_MUTATIONS += [b"\x7f", b"\xe9", b"a", b"A", b"Host: x\r\n", b"Content-Length: 1\r\n", b"1"]


def test_mutated_heads_are_read_as_gunicorn_reads_them_or_left_to_it() -> None:
    rng = random.Random(24)
    heads = [head.encode("latin-1") for head in PLAIN]
    read = 0
    for _ in range(3000):
        head = bytearray(rng.choice(heads))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(head) + 1)
            if rng.random() < 0.5:
                head[at:at] = rng.choice(_MUTATIONS)
            else:
                del head[at : at + rng.randint(1, 3)]
        _, cfg = rng.choice(CONFIGS)
        read += _check(cfg, bytes(head), rng.choice(PEERS))
    assert read > 300  # the mutations left many heads plain: the comparison ran
