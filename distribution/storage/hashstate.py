"""A sha256 whose running state is saved with an upload, so that any process can continue it.

hashlib's objects cannot be saved. An upload whose next request lands in another worker or
replica (behind nginx, consecutive requests of one client go to any of them) was therefore
re-hashed whole at commit: a second read of the blob, from disk or from the cloud. This
hasher runs OpenSSL's own SHA-256 (the code and speed hashlib gets from it; the GIL is let go
during each update, as hashlib does) on a context whose fields are public, and saves it in
Go's binary format, ``crypto/sha256``'s ``MarshalBinary``::

    b"sha\\x03" | h[0..7] (uint32) | the pending bytes, zero-padded to 64 | bytes hashed (uint64)

all big-endian, 108 bytes. Where libcrypto does not export ``SHA256_Update`` (OpenSSL 3 still
does, as deprecated API) or its context is not laid out as ``openssl/sha.h`` says, :func:`new`
returns None and uploads hash with hashlib, re-hashing at commit when they must.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import struct
from typing import Any

#: The saved state: magic, the eight state words, the pending block, the bytes hashed.
_STATE = struct.Struct(">4s8I64sQ")
_MAGIC = b"sha\x03"
_BLOCK = 64
_LIBRARIES = ("libcrypto.so.3", "libcrypto.so.1.1")

log = logging.getLogger(__name__)


class _Context(ctypes.Structure):
    """OpenSSL's ``SHA256_CTX``: the state words, the length in bits, the pending block."""

    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_ubyte * _BLOCK),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


class Sha256:
    """A running sha256 with hashlib's ``update`` and ``hexdigest``, and :meth:`state`."""

    def __init__(self, library: Any, context: _Context) -> None:
        self._library = library
        self._context = context

    @property
    def size(self) -> int:
        """How many bytes have been hashed."""
        return (self._context.Nh << 32 | self._context.Nl) >> 3

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        if not view.nbytes:
            return
        try:
            buffer: Any = (ctypes.c_char * view.nbytes).from_buffer(view)
        except TypeError:  # read-only: ctypes passes a bytes object's own memory
            buffer = data if isinstance(data, bytes) else view.tobytes()
        self._library.SHA256_Update(ctypes.byref(self._context), buffer, view.nbytes)

    def hexdigest(self) -> str:
        out = ctypes.create_string_buffer(32)
        self._library.SHA256_Final(out, ctypes.byref(_Context.from_buffer_copy(self._context)))
        return out.raw.hex()

    def state(self) -> bytes:
        """The state in Go's format, for :func:`restore`."""
        context, pending = self._context, self._context.num
        return _STATE.pack(_MAGIC, *context.h, bytes(context.data)[:pending], self.size)


def new() -> Sha256 | None:
    """A fresh hasher; None where this libcrypto cannot give one."""
    library = _library()
    if library is None:
        return None
    context = _Context()
    library.SHA256_Init(ctypes.byref(context))
    return Sha256(library, context)


def restore(state: bytes) -> Sha256 | None:
    """The hasher :meth:`Sha256.state` saved (or Go's ``MarshalBinary``).

    ``ValueError`` if ``state`` is not a sha256 state; None where this libcrypto cannot give
    a hasher.
    """
    if len(state) != _STATE.size:
        raise ValueError(f"a sha256 state is {_STATE.size} bytes, not {len(state)}")
    magic, *words, block, size = _STATE.unpack(state)
    if magic != _MAGIC:
        raise ValueError("not a sha256 state")
    hasher = new()
    if hasher is None:
        return None
    context, bits = hasher._context, size << 3
    context.h[:] = words
    context.Nl, context.Nh = bits & 0xFFFFFFFF, bits >> 32 & 0xFFFFFFFF
    context.num = size % _BLOCK
    context.data[:] = block
    return hasher


@functools.cache
def _library() -> Any:
    """libcrypto with its SHA256 functions typed, if one loads and its context checks out."""
    for name in _LIBRARIES:
        try:
            library = ctypes.CDLL(name)
            library.SHA256_Init.argtypes = [ctypes.POINTER(_Context)]
            library.SHA256_Update.argtypes = [
                ctypes.POINTER(_Context),
                ctypes.c_void_p,
                ctypes.c_size_t,
            ]
            library.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Context)]
        except (OSError, AttributeError):
            continue
        if _works(library):
            return library
        log.warning("%s's SHA256_CTX is not laid out as expected; uploads re-hash at commit", name)
        return None
    log.info("no libcrypto with SHA256_Update; an upload continued elsewhere re-hashes at commit")
    return None


def _works(library: Any) -> bool:
    """Whether the context holds what ``openssl/sha.h`` says, checked on 67 bytes."""
    data = bytes(range(67))
    hasher = Sha256(library, _Context())
    library.SHA256_Init(ctypes.byref(hasher._context))
    hasher.update(data)
    context = hasher._context
    return (
        context.Nl == len(data) * 8
        and context.num == len(data) % _BLOCK
        and bytes(context.data)[: context.num] == data[_BLOCK:]
        and hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    )
