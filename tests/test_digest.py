"""Digest parsing: what is refused, and that a digest parsed once is not parsed again."""

from __future__ import annotations

import pytest

from distribution import digest as digest_module
from distribution import errors
from distribution.digest import Digest

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sha256", "invalid digest format"),
        (f"SHA256:{HEX}", "invalid digest format"),
        (f"md5:{HEX}", "unsupported digest algorithm"),
        ("sha256:abc", "invalid checksum digest format"),
        (f"sha256:{'A' * 64}", "invalid checksum digest format"),
    ],
)
def test_a_bad_digest_is_refused_every_time(text: str, message: str) -> None:
    for _ in range(2):  # a refusal is not remembered as anything else
        with pytest.raises(errors.DigestInvalid) as refused:
            Digest.parse(text)
        assert refused.value.message == message


def test_a_digest_parsed_again_is_the_one_remembered() -> None:
    first = Digest.parse(f"sha256:{HEX}")
    assert first == Digest("sha256", HEX) and str(first) == f"sha256:{HEX}"
    assert Digest.parse(f"sha256:{HEX}") is first


def test_the_digests_remembered_are_bounded() -> None:
    for i in range(digest_module.PARSED_MAX + 10):
        Digest.parse(f"sha256:{i:064x}")
    assert digest_module._parse.cache_info().currsize == digest_module.PARSED_MAX
