"""The server name (SNI) and ALPN protocols of a TLS ClientHello, read from its raw bytes.

Python's ``ssl`` shows a server neither before it picks its certificate: ``sni_callback`` gets
the name but not the ALPN list, and the certificate cannot wait for ALPN. The TLS-ALPN-01
challenge (RFC 8737) needs both, so the worker peeks at the ClientHello before the handshake
and this module reads it. Pure functions over bytes, no I/O; anything malformed raises
:class:`Malformed` and nothing here trusts a length it has not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The largest ClientHello read (records and all). Real ones are under 2 KiB, or about 8 KiB
#: with post-quantum key shares; a longer one is refused rather than waited for.
MAX_SIZE = 32 << 10

_RECORD_HEADER = 5
_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_MAX_RECORD = (1 << 14) + 2048
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_HOST_NAME = 0


class Malformed(ValueError):
    """The bytes are not a ClientHello this server can read."""


@dataclass(frozen=True)
class ClientHello:
    #: The host name the client asked for, in lower case without a trailing dot; None if none.
    server_name: str | None
    #: The ALPN protocols offered, in the client's order.
    alpn: tuple[str, ...]


def parse(data: bytes) -> ClientHello | int:
    """The ClientHello at the start of ``data``, or, when ``data`` is only the start of it, the
    number of bytes needed before trying again (a lower bound: more may follow)."""
    message = bytearray()
    offset = 0
    while True:
        if len(data) < offset + _RECORD_HEADER:
            return offset + _RECORD_HEADER
        content_type, major = data[offset], data[offset + 1]
        length = int.from_bytes(data[offset + 3 : offset + 5], "big")
        if content_type != _HANDSHAKE or major != 3:
            raise Malformed("not a TLS handshake record")
        if not 0 < length <= _MAX_RECORD:
            raise Malformed(f"bad record length {length}")
        end = offset + _RECORD_HEADER + length
        if end > MAX_SIZE:
            raise Malformed("ClientHello too large")
        if len(data) < end:
            return end
        message += data[offset + _RECORD_HEADER : end]
        offset = end
        if len(message) >= 4:
            if message[0] != _CLIENT_HELLO:
                raise Malformed("first handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(message[1:4], "big")
            if needed > MAX_SIZE:
                raise Malformed("ClientHello too large")
            if len(message) >= needed:
                return _hello(_Reader(bytes(message[4:needed])))


def _hello(body: _Reader) -> ClientHello:
    body.take(2 + 32)  # legacy_version, random
    body.vector(1)  # legacy_session_id
    body.vector(2)  # cipher_suites
    body.vector(1)  # legacy_compression_methods
    server_name, alpn = None, ()
    if body.left:  # extensions are optional (an SSL 3.0-style hello has none)
        extensions = _Reader(body.vector(2))
        seen = set()
        while extensions.left:
            kind = extensions.number(2)
            data = _Reader(extensions.vector(2))
            if kind in seen:
                raise Malformed(f"extension {kind} twice")
            seen.add(kind)
            if kind == _EXT_SERVER_NAME:
                server_name = _server_name(data)
            elif kind == _EXT_ALPN:
                alpn = _protocols(data)
    return ClientHello(server_name, alpn)


def _server_name(data: _Reader) -> str | None:
    names = _Reader(data.vector(2))
    while names.left:
        kind = names.number(1)
        name = names.vector(2)
        if kind == _HOST_NAME:
            if not name or any(not 0x21 <= byte <= 0x7E for byte in name):
                raise Malformed("server name is not printable ASCII")
            return name.decode("ascii").lower().rstrip(".") or None
    return None


def _protocols(data: _Reader) -> tuple[str, ...]:
    protocols = _Reader(data.vector(2))
    offered = []
    while protocols.left:
        offered.append(protocols.vector(1).decode("latin-1"))
    return tuple(offered)


class _Reader:
    """Bytes read front to back, every read checked against what is left."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, size: int) -> bytes:
        if size > self.left:
            raise Malformed("truncated ClientHello")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def number(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.number(length_size))
