"""Pinned C library behaviour that the benchmark harness (benchmarks/) depends on."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_MMAP_THRESHOLD_PROBE = """
import resource, socket
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
def faults(n):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        a.send(b"x" * 64)
        b.recvfrom(256 * 1024)  # what asyncio's datagram transport asks for each time
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
fresh = faults(1000)
block = bytearray(512 * 1024)
del block
print(fresh, faults(1000))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc is what this pins")
def test_a_freed_large_block_makes_the_stdlib_receive_buffer_cheap() -> None:
    # Pinned libc behaviour (glibc, why the benchmark's peers never import aiomcast): the
    # stdlib datagram transport receives into a fresh 256 KiB bytes object per datagram. In
    # a fresh process glibc serves that with an mmap, so every datagram costs page faults
    # (and mmap, mremap, munmap: about 15 us here). Once the process has freed a larger
    # block that was mmapped, glibc's dynamic mmap threshold rises above it and the buffer
    # comes from the heap. Importing aiomcast from source frees such a block, which made the
    # stdlib rows three to four times faster in the peers' processes (receivers.set_rcvbuf).
    probe = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _MMAP_THRESHOLD_PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    fresh, after = (int(word) for word in probe.stdout.split())
    assert fresh >= 1000, probe.stdout  # at least one page fault per datagram
    assert after < 100, probe.stdout  # the heap's chunk, reused
