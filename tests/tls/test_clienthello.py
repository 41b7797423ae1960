"""The ClientHello reader, on hellos made by OpenSSL (Python's ``ssl``) and on garbage."""

from __future__ import annotations

import random
import ssl

import pytest

from distribution.tls import clienthello
from distribution.tls.clienthello import ClientHello, Malformed


def openssl_hello(server_name: str | None = None, alpn: list[str] | None = None) -> bytes:
    """The first flight of an OpenSSL client: its ClientHello record(s)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def refragment(data: bytes, size: int) -> bytes:
    """The same handshake message re-cut into records of at most ``size`` bytes."""
    message = data[5:]
    records = b""
    for start in range(0, len(message), size):
        piece = message[start : start + size]
        records += b"\x16\x03\x01" + len(piece).to_bytes(2, "big") + piece
    return records


def test_server_name_and_alpn() -> None:
    data = openssl_hello("Registry.Example.TEST", ["acme-tls/1"])
    assert clienthello.parse(data) == ClientHello("registry.example.test", ("acme-tls/1",))


def test_several_protocols_in_order_and_a_trailing_dot() -> None:
    data = openssl_hello("registry.example.test.", ["h2", "http/1.1"])
    assert clienthello.parse(data) == ClientHello("registry.example.test", ("h2", "http/1.1"))


def test_no_name_no_alpn() -> None:
    assert clienthello.parse(openssl_hello()) == ClientHello(None, ())


def test_every_prefix_asks_for_more() -> None:
    data = openssl_hello("a.test", ["acme-tls/1"])
    for end in range(len(data)):
        needed = clienthello.parse(data[:end])
        assert isinstance(needed, int)
        assert end < needed <= len(data)


def test_a_hello_split_across_records() -> None:
    data = refragment(openssl_hello("split.test", ["acme-tls/1", "http/1.1"]), 50)
    assert clienthello.parse(data) == ClientHello("split.test", ("acme-tls/1", "http/1.1"))
    for end in range(len(data)):
        assert isinstance(clienthello.parse(data[:end]), int)


def test_bytes_after_the_hello_are_left_alone() -> None:
    data = openssl_hello("a.test") + b"\x17\x03\x03garbage"
    assert clienthello.parse(data) == ClientHello("a.test", ())


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"\x16\x02\x00\x00\x10" + b"\x00" * 16,  # not TLS 1.x
        b"\x16\x03\x01\x00\x00",  # an empty record
        b"\x16\x03\x01\xff\xff",  # a record longer than TLS allows
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00",  # a ServerHello
        b"\x16\x03\x01\x00\x04\x01\xff\xff\xff",  # a hello of 16 MiB
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x03",  # a hello cut short inside
    ],
)
def test_garbage_is_malformed(data: bytes) -> None:
    with pytest.raises(Malformed):
        clienthello.parse(data)


def test_a_name_that_is_not_printable_ascii_is_malformed() -> None:
    data = bytearray(openssl_hello("abcdef.test"))
    data[data.index(b"abcdef")] = 0x0A
    with pytest.raises(Malformed):
        clienthello.parse(bytes(data))


def test_random_corruption_never_raises_anything_else() -> None:
    rng = random.Random(20)
    base = openssl_hello("fuzz.example.test", ["acme-tls/1", "http/1.1"])
    for _ in range(3000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data = data[: rng.randint(0, len(data))] if rng.random() < 0.3 else data
        try:
            result = clienthello.parse(bytes(data))
        except Malformed:
            continue
        assert isinstance(result, ClientHello | int)
