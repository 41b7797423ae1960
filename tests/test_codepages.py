"""Unmapping the library code a process ran only to start (:mod:`distribution.codepages`)."""

from __future__ import annotations

import hashlib
import ssl
import subprocess
import sys

from distribution import codepages
from tests.process import resident_kib

SMAPS = """\
00400000-00401000 r--p 00000000 fe:01 11 /usr/bin/python3.11
Rss:                   4 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
7f0000000000-7f0000100000 r-xp 00010000 fe:01 12 /usr/lib/libcrypto.so.3
Size:               1024 kB
Anonymous:             0 kB
7f0000100000-7f0000110000 r--p 00110000 fe:01 12 /usr/lib/libcrypto.so.3
Anonymous:            64 kB
7f0000110000-7f0000120000 rw-p 00120000 fe:01 12 /usr/lib/libcrypto.so.3
Anonymous:            16 kB
7f0000120000-7f0000130000 rw-p 00000000 00:00 0
Anonymous:            64 kB
7f0000130000-7f0000140000 r--s 00000000 00:05 13 /dev/shm/segment
Anonymous:             0 kB
7f0000140000-7f0000150000 r-xp 00000000 00:00 0
Anonymous:             0 kB
7ffc00000000-7ffc00002000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
7f0000150000-7f0000160000 r-xp 00000000 fe:01 14 /tmp/ffi (deleted)
THPeligible:    0
Anonymous:             0 kB
"""


def test_only_read_only_copies_of_a_file_qualify() -> None:
    """A relocated read-only segment (private pages), writable, shared, anonymous and kernel
    mappings are left alone: unmapping them would lose data or change nothing."""
    ranges = list(codepages.read_only_ranges(SMAPS.splitlines()))
    assert ranges == [
        (0x00400000, 0x00401000),
        (0x7F0000000000, 0x7F0000100000),
        (0x7F0000150000, 0x7F0000160000),
    ]


def test_a_process_keeps_working_after_letting_go_of_its_code() -> None:
    """In a real process: after start-up, most of OpenSSL's code is unmapped, and hashing and
    TLS fault back what they run, unchanged."""
    script = (
        "import hashlib, ssl, sys\n"
        "from distribution import codepages\n"
        "ssl.create_default_context()\n"
        "print('started', flush=True)\n"
        "sys.stdin.readline()\n"
        "print(codepages.release(), flush=True)\n"
        "sys.stdin.readline()\n"
        "context = ssl.create_default_context()\n"
        "print(hashlib.sha256(b'still hashing').hexdigest(), context.verify_mode, flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline() == "started\n"
        before = resident_kib(child.pid, "libcrypto")
        child.stdin.write("release\n")
        child.stdin.flush()
        advised = int(child.stdout.readline())
        after = resident_kib(child.pid, "libcrypto")
        child.stdin.write("go on\n")
        child.stdin.flush()
        digest, verify_mode = child.stdout.readline().split()
    finally:
        child.kill()
        child.wait()
    assert advised > 0
    assert before > 1024, before  # setting OpenSSL up ran more than 1 MiB of it
    assert after < before / 2, (before, after)
    assert digest == hashlib.sha256(b"still hashing").hexdigest()
    assert verify_mode == str(int(ssl.CERT_REQUIRED))
