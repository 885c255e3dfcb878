"""What a block of work leaves to the cyclic garbage collector: the collector is off while it runs, and what it
then finds unreachable is counted by type name."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_garbage() -> Iterator[Counter[str]]:
    """Yield a Counter that, once the block has ended, holds the type names of the objects the block left in
    cycles (freed only by the collector, not by reference counting)."""
    gc.collect()
    gc.disable()
    left: Counter[str] = Counter()
    try:
        yield left
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            left.update(type(thing).__name__ for thing in gc.garbage)
        finally:
            gc.garbage.clear()
            gc.set_debug(0)
            gc.enable()


def of_types(left: Counter[str], names: set[str]) -> dict[str, int]:
    """The counts in `left` of the types named in `names`."""
    return {name: count for name, count in left.items() if name in names}
