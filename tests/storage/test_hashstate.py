"""The saved sha256: hashlib's answers, any split, and Go's binary format (Go's own states are
read in ``tests/replicas/test_uploads.py``)."""

from __future__ import annotations

import hashlib
import mmap
import random
import struct

import pytest

from distribution.storage import hashstate

DATA = random.Random(7).randbytes(100_003)


def test_libcrypto_gives_a_hasher_here() -> None:
    """CI's Debian and the image's have it; without it uploads fall back to hashlib."""
    assert hashstate.new() is not None


@pytest.mark.parametrize("cut", [0, 1, 63, 64, 65, 127, 128, 4096, 99_999, 100_003])
def test_a_restored_state_continues_to_hashlibs_digest(cut: int) -> None:
    hasher = hashstate.new()
    assert hasher is not None
    hasher.update(DATA[:cut])
    state = hasher.state()
    restored = hashstate.restore(state)
    assert restored is not None
    assert restored.size == cut
    assert restored.state() == state
    restored.update(DATA[cut:])
    assert restored.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert hasher.hexdigest() == hashlib.sha256(DATA[:cut]).hexdigest()  # not finished by it


def test_any_buffer_in_any_pieces() -> None:
    rng = random.Random(8)
    mapped = mmap.mmap(-1, len(DATA), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mapped.write(DATA)
    kinds = [bytes, bytearray, memoryview, lambda piece: memoryview(piece).toreadonly()]
    for _ in range(20):
        hasher = hashstate.new()
        assert hasher is not None
        offset = 0
        while offset < len(DATA):
            end = min(len(DATA), offset + rng.randrange(0, 20_000))
            if rng.random() < 0.3:
                hasher.update(memoryview(mapped)[offset:end])
            else:
                hasher.update(rng.choice(kinds)(DATA[offset:end]))
            offset = end
        assert hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
        assert hasher.size == len(DATA)


def test_the_state_is_gos_layout() -> None:
    """``"sha\\x03"``, eight big-endian words, the pending bytes zero-padded, the length."""
    hasher = hashstate.new()
    assert hasher is not None
    hasher.update(DATA[:130])
    state = hasher.state()
    assert len(state) == 108
    assert state[:4] == b"sha\x03"
    assert state[36:38] == DATA[128:130]
    assert state[38:100] == bytes(62)
    assert struct.unpack(">Q", state[100:]) == (130,)
    fresh = hashstate.new()
    assert fresh is not None
    initial = struct.unpack(">8I", fresh.state()[4:36])
    assert initial[0] == 0x6A09E667 and initial[7] == 0x5BE0CD19  # FIPS 180-4's H(0)


@pytest.mark.parametrize(
    "state",
    [b"", b"sha\x03", bytes(108), b"sha\x02" + bytes(104), b"sha\x03" + bytes(105)],
    ids=["empty", "short", "zeros", "sha224", "long"],
)
def test_what_is_not_a_state_is_refused(state: bytes) -> None:
    with pytest.raises(ValueError):
        hashstate.restore(state)
