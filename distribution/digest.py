"""Content digests (``sha256:<hex>``): parsing, validation and hashing, with no I/O."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from distribution import errors

#: Algorithms the registry stores content under, with the length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha384": 96, "sha512": 128}
CANONICAL = "sha256"

_GRAMMAR = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True)
class Digest:
    """A validated digest; ``str(digest)`` is its ``algorithm:hex`` form."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``text`` or raise :class:`~distribution.errors.DigestInvalid`.

        The last digests parsed are remembered (a pull asks for the same few again and again,
        each by URL and through a link file); a refused one is checked anew each time.
        """
        return _parse(text)

    @classmethod
    def of(cls, data: bytes, algorithm: str = CANONICAL) -> Digest:
        """The digest of ``data``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm, to verify streamed content."""
        return hashlib.new(self.algorithm)


#: Digests :meth:`Digest.parse` remembers, at most.
PARSED_MAX = 1024


@lru_cache(maxsize=PARSED_MAX)
def _parse(text: str) -> Digest:
    # The one form stored and asked for nearly always: one match, not three.
    if len(text) == 71 and text.startswith("sha256:") and _HEX.fullmatch(text, 7):
        return Digest(CANONICAL, text[7:])
    if not _GRAMMAR.fullmatch(text):
        raise errors.DigestInvalid("invalid digest format", detail=text)
    algorithm, encoded = text.split(":", 1)
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise errors.DigestInvalid("unsupported digest algorithm", detail=text)
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise errors.DigestInvalid("invalid checksum digest format", detail=text)
    return Digest(algorithm, encoded)
