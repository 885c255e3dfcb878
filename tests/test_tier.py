"""What the tier processes share (lambdallm.tier), beyond ports: settling once started."""

from __future__ import annotations

import gc

from lambdallm import tier


def test_settling_hides_what_exists_from_the_collector_and_still_collects_new_garbage() -> None:
    try:
        tier.settle()
        assert gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # garbage made after settling is still collected
    finally:
        gc.unfreeze()
