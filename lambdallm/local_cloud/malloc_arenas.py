"""At most a few glibc malloc arenas in the local cloud, whose Lambda threads would each hold one.

glibc gives a thread that allocates its own arena, up to eight per core, and an arena keeps the memory its thread
once peaked at. The local cloud runs each invocation on one of up to 64 Lambda threads, so its RSS climbs by an
arena's worth each time a new thread joins in, megabytes for a burst of abandoned streams, and looks like a leak.
The GIL lets one thread allocate at a time, so the arenas spare no contention here; two are enough.
"""

from __future__ import annotations

import ctypes

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h
ARENAS = 2


def bound_malloc_arenas(count: int = ARENAS) -> bool:
    """Let no more than `count` malloc arenas be made from now on; False where the C library has no such setting
    (not glibc). Threads that already have an arena keep it: call this before the process starts its threads."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, count))
