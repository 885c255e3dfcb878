"""The bare grpc.aio floor measures a real client and server, in processes of their own."""

from __future__ import annotations

from lambdallm.bench.grpc_floor import FloorRun, floor_cpu_ms


def test_the_floor_is_measured_on_both_sides_per_call_and_per_message() -> None:
    figures = floor_cpu_ms(FloorRun(calls=128, streams=2, tokens=4))  # raises unless 8 messages came

    assert set(figures) == {"per_request", "per_message"}
    for sides in figures.values():
        assert sides["client"] > 0  # process_time: the client's own work, never nothing
        assert sides["server"] >= 0  # whole clock ticks of /proc: a tiny run may spend less than one
        assert sides["both"] == sides["client"] + sides["server"]
