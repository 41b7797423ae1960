"""The head of a plain ``GET`` or ``HEAD`` request, read in one pass.

gunicorn's parser checks each line of a head with a few regular expressions, and its
``wsgi.create`` builds the environ in a dozen steps: together a third of the Python a small
request costs (``benchmarks/hotpath.py``). Most requests a registry serves are ``GET`` and
``HEAD`` with a few ASCII headers and no body. :func:`parse` reads exactly those, and leaves
anything else to gunicorn's parser, which then reads, answers or refuses the head as it always
did: another method or version, a body, ``Expect``, a header name with ``_``, folding, bytes
outside printable ASCII, a fragment, a target starting ``//``, a repeated ``Host`` or
``Content-Type``, a limit reached, disagreeing scheme headers, the PROXY protocol, a missing or
malformed ``Host`` (which :class:`FramedRequest` refuses, as Go does). So the fast path accepts
nothing gunicorn refuses, and makes the request and environ gunicorn makes;
``tests/test_requesthead.py`` compares the two head by head.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.body import Body, ChunkedReader, LengthReader
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeader,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.http.message import RFC9110_5_3_SINGLETON_FIELDS, Request
from gunicorn.http.unreader import IterUnreader, Unreader
from gunicorn.util import unquote_to_wsgi_str

#: A plain head: the request line, then ``name: value`` lines of printable ASCII, then the
#: blank line. The target is origin-form without a fragment, never ``//`` (gunicorn splits
#: those apart); header names are tokens without ``_`` (gunicorn drops or refuses those).
_HEAD = re.compile(
    rb"(GET|HEAD) (/(?!/)[!\"$-~]*) HTTP/1\.([01])\r\n"
    rb"((?:[-!#$%&'*+.^`|~0-9A-Za-z]+:[\t -~]*\r\n)*)\r\n"
)
#: Headers that give the request a body or a handshake: gunicorn's to read.
_FRAMING = frozenset({"CONTENT-LENGTH", "TRANSFER-ENCODING", "EXPECT"})
#: A ``Host`` value Go's server takes (``httpguts.ValidHostHeader``): these bytes, any number.
_HOST = re.compile(r"[-!$%&'()*+,.0-9:;=A-Z\[\]_a-z~]*")


class MissingHost(ParseException):
    """An HTTP/1.1 request without ``Host``: 400, as RFC 9112 requires and Go answers."""

    def __str__(self) -> str:
        return "missing required Host header"


class MalformedHost(ParseException):
    """A ``Host`` with bytes no host name or address has: 400, as in Go."""

    def __str__(self) -> str:
        return "malformed Host header"


def host_refusal(version: tuple[int, int], host: str | None) -> ParseException | None:
    """Why Go's server refuses a request's ``Host`` (gunicorn takes any, or none), if it does."""
    if host is None:
        return MissingHost() if version >= (1, 1) else None
    return None if _HOST.fullmatch(host) else MalformedHost()


class PlainRequest(Request):
    """A request whose head :func:`parse` read: gunicorn's ``Request`` in every attribute."""


class FramedRequest(Request):
    """gunicorn's ``Request``, taking ``Host`` and a body's framing as Go's server does.

    gunicorn takes ``gzip, chunked`` and hands the body on still compressed, which an upload
    would store as it came. Go takes one ``Transfer-Encoding`` header of exactly ``chunked``
    and answers anything else 501 (Go 2.8.2: ``gzip, chunked``, ``identity``, two headers).
    gunicorn also takes an HTTP/1.1 request without ``Host``, and any ``Host`` value.
    """

    def set_body_reader(self) -> None:
        # The first step after the head is read, with or without header lines.
        host = next((value for name, value in self.headers if name == "HOST"), None)
        refusal = host_refusal(self.version, host)
        if refusal is not None:
            raise refusal
        codings = [value for name, value in self.headers if name == "TRANSFER-ENCODING"]
        if codings and (len(codings) > 1 or codings[0].lower() != "chunked"):
            raise UnsupportedTransferCoding(", ".join(codings))
        super().set_body_reader()
        reader = self.body.reader
        if isinstance(reader, LengthReader) and reader.length > MAX_LENGTH:
            # Go's ``ParseUint(..., 63)``: a length no body can have is a bad request (400),
            # not a request whose body is then waited for.
            raise InvalidHeader("CONTENT-LENGTH", req=self)
        if type(reader) is ChunkedReader:
            self.body = Body(BoundedChunkedReader(self, self.unreader))


#: The longest body a request may announce (Go's: 63 bits).
MAX_LENGTH = (1 << 63) - 1


class BoundedChunkedReader(ChunkedReader):
    """gunicorn's chunked reader, refusing a chunk size of more than 64 bits as Go's does
    ("http chunk length too large") instead of waiting for it until the body timeout."""

    def parse_chunk_size(self, unreader: Unreader, data: bytes | None = None) -> tuple[int, Any]:
        size, rest = super().parse_chunk_size(unreader, data)
        if size >> 64:
            raise InvalidChunkSize(b"chunk length too large")
        return size, rest


def parse(cfg: Config, unreader: Unreader, peer_addr: Any, req_number: int) -> Request:
    """The next request on ``unreader``: read here when its whole head is buffered and plain,
    else by gunicorn's parser (:class:`FramedRequest`). Same arguments as ``Request``."""
    data = unreader.take_buffered()
    request = _plain(cfg, unreader, peer_addr, req_number, data) if data else None
    if request is None:
        if data:
            unreader.unread(data)
        return FramedRequest(cfg, unreader, peer_addr, req_number)
    return request


def create(
    req: Request, sock: Any, client: Any, server: Any, cfg: Config, response_class: type
) -> tuple[wsgi.Response, dict[str, Any]]:
    """gunicorn's ``wsgi.create``, in fewer steps for a :class:`PlainRequest` on a TCP
    listener: no ``Content-Length``, ``Expect`` or PROXY protocol to look at."""
    if type(req) is not PlainRequest or not isinstance(server, tuple):
        return wsgi.create(req, sock, client, server, cfg, response_class)
    resp = response_class(req, sock, cfg)
    # gunicorn's ``default_environ``, inline: 9,500 instructions a request less (1.8 % of a
    # ``GET /v2/``); the tests compare the whole environ with gunicorn's.
    environ = {
        "wsgi.errors": wsgi.WSGIErrorsWrapper(cfg),
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": cfg.workers > 1,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": wsgi.FileWrapper,
        "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": wsgi.SERVER_SOFTWARE,
        "wsgi.input": req.body,
        "gunicorn.socket": sock,
        "REQUEST_METHOD": req.method,
        "QUERY_STRING": req.query,
        "RAW_URI": req.uri,
        "SERVER_PROTOCOL": "HTTP/1.1" if req.version == (1, 1) else "HTTP/1.0",
    }
    repeated: dict[str, list[str]] = {}
    for name, value in req.headers:
        if name == "CONTENT-TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        key = "HTTP_" + name.replace("-", "_")
        if key in environ:
            repeated.setdefault(key, [environ[key]]).append(value)
        else:
            environ[key] = value
    for key, values in repeated.items():
        environ[key] = ",".join(values)
    environ["wsgi.url_scheme"] = req.scheme
    if isinstance(client, tuple):
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    else:
        environ["REMOTE_ADDR"] = client.decode() if isinstance(client, bytes) else client
    environ["SERVER_NAME"] = server[0]
    environ["SERVER_PORT"] = str(server[1])
    path, script_name = req.path, os.environ.get("SCRIPT_NAME", "")
    if script_name:
        if not path.startswith(script_name):
            return wsgi.create(req, sock, client, server, cfg, response_class)  # refuses it
        path = path[len(script_name) :]
    environ["PATH_INFO"] = unquote_to_wsgi_str(path) if "%" in path else path
    environ["SCRIPT_NAME"] = script_name
    environ["wsgi.early_hints"] = wsgi._make_early_hints_callback(req, sock, resp)
    return resp, environ


def _plain(
    cfg: Config, unreader: Unreader, peer_addr: Any, req_number: int, data: bytes
) -> PlainRequest | None:
    """The request ``data`` starts with, or None if its head is not plain (or not whole)."""
    match = _HEAD.match(data)
    if match is None:
        return None
    fixed = _fixed(cfg)
    if fixed is None:
        return None
    line_end = data.index(b"\r\n")
    if line_end > fixed["limit_request_line"] > 0:
        return None
    lines = match.group(4).decode("ascii").split("\r\n")
    lines.pop()  # the block ends with a line break
    if len(lines) > fixed["limit_request_fields"]:
        return None
    field_limit = fixed["limit_request_field_size"]
    request = PlainRequest.__new__(PlainRequest)
    request.__dict__.update(fixed)
    request.peer_addr = request.remote_addr = peer_addr
    request.scheme = "https" if cfg.is_ssl else "http"
    host = peer_addr[0] if isinstance(peer_addr, tuple) else None
    secure = cfg.secure_scheme_headers and _trusted(cfg, host)
    schemed = False
    headers, seen, host_header = [], set(), None
    for line in lines:
        if len(line) + 2 > field_limit > 0:
            return None
        name, _, value = line.partition(":")
        name = name.upper()
        if name in _FRAMING:
            return None
        if name in RFC9110_5_3_SINGLETON_FIELDS:
            if name in seen:
                return None
            seen.add(name)
        value = value.strip(" \t")
        if name == "HOST":
            host_header = value
        if name in secure:
            scheme = "https" if value == secure[name] else "http"
            if schemed and scheme != request.scheme:
                return None
            request.scheme, schemed = scheme, True
        headers.append((name, value))
    version = (1, int(match.group(3)))
    if host_refusal(version, host_header) is not None:
        return None  # refused by :class:`FramedRequest`
    uri = match.group(2).decode("ascii")
    path, _, query = uri.partition("?")
    request.method = match.group(1).decode("ascii")
    request.uri, request.path, request.query, request.fragment = uri, path, query, ""
    request.version = version
    request.headers = headers
    request.trailers = []
    request.req_number = req_number
    request.unreader = unreader
    request.body = Body(LengthReader(unreader, 0))
    rest = data[match.end() :]
    if rest:
        unreader.unread(rest)
    return request


@functools.lru_cache(maxsize=256)
def _trusted(cfg: Config, host: str | None) -> dict[str, str]:
    """The scheme headers a peer at ``host`` (None: on a Unix socket) may set; gunicorn parses
    the allowed addresses for every request."""
    probe = PlainRequest.__new__(PlainRequest)
    probe.cfg, probe.peer_addr = cfg, "unix" if host is None else (host, 0)
    return probe._peer_trusted_for_forwarded()[0]


@functools.lru_cache(maxsize=8)
def _fixed(cfg: Config) -> dict[str, Any] | None:
    """The attributes every request gets from ``cfg`` (limits and the like), as gunicorn's
    ``Request`` sets them; None when ``cfg`` asks for the PROXY protocol, which the fast path
    does not read, or when its limits are so small that gunicorn refuses every head."""
    if cfg.proxy_protocol != "off":
        return None
    try:
        sample = Request(cfg, IterUnreader([b"GET / HTTP/1.1\r\n\r\n"]), ("127.0.0.1", 0), 1)
    except ParseException:  # limits below the shortest head: gunicorn refuses every request
        return None
    return {
        key: value
        for key, value in vars(sample).items()
        if key.startswith(("limit_", "_fast_", "_use_", "max_"))
        or key in ("cfg", "must_close", "proxy_protocol_info", "_expected_100_continue")
    }
