"""The local cloud's threads share a bounded number of malloc arenas (glibc), so its RSS does not climb by an
arena's worth each time a new Lambda thread joins in. glibc's malloc_stats() prints one "Arena N:" block per
arena on stderr; a child process counts them after eight threads have allocated at once."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

CHILD = """
import ctypes, sys, threading
from lambdallm.local_cloud.malloc_arenas import bound_malloc_arenas
if sys.argv[1] == "bound":
    bound_malloc_arenas(2)
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
together = threading.Barrier(8)
def allocate():
    block = libc.malloc(50_000)  # under the mmap threshold: from the thread's arena
    together.wait()  # all eight hold theirs at once, so that no thread could reuse another's arena
    libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc.malloc_stats()
"""

glibc_only = pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_stats"), reason="glibc's malloc only")


def arenas_after_eight_threads(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True, timeout=60)
    return sum(line.startswith("Arena ") for line in done.stderr.splitlines())


@glibc_only
def test_eight_threads_share_two_arenas_once_bounded() -> None:
    assert arenas_after_eight_threads("bound") <= 2


@glibc_only
def test_eight_threads_make_more_arenas_unbounded() -> None:
    """The reference: without the bound the same threads make arenas of their own (so the test above can fail)."""
    assert arenas_after_eight_threads("free") > 2
