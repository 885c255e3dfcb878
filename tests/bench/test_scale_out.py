"""The scale-out figures: ratios taken within each repetition, a skipped section said so, and HAProxy's config
rendered from deploy/haproxy/haproxy.cfg for one replica or two on loopback."""

import subprocess
from pathlib import Path
from typing import cast

import pytest

from lambdallm import debian_servers
from lambdallm.bench.loadgen import LoadResult
from lambdallm.bench.plan import QUICK
from lambdallm.bench.scale_out import ScaleOutFigures, markdown_row, measure_scale_out
from lambdallm.debian_servers import HAPROXY_CFG, haproxy_config
from lambdallm.stack import Stack
from tests.fakes.servers import debian_binary


def _run(ok: int, errors: int = 0, kinds: dict[str, int] | None = None) -> LoadResult:
    return LoadResult(
        requests=ok,
        ok=ok,
        errors=errors,
        tokens=0,
        duration_s=2.0,
        p50_ms=1,
        p99_ms=1,
        mean_ms=1,
        error_kinds=kinds or {},
    )


def test_two_over_one_and_one_over_direct_are_ratios_within_each_repetition() -> None:
    figures = ScaleOutFigures(
        loaded={
            "direct": [_run(1000), _run(800)],
            "one_replica": [_run(900), _run(400)],
            "two_replicas": [_run(720, errors=2, kinds={"503": 2}), _run(400, errors=3, kinds={"503": 1, "read": 2})],
        },
        haproxy_cpu_ms={"one_replica": [0.2, 0.4], "two_replicas": [0.3, 0.3]},
        second_share=[0.5, 0.25],
        connections=64,
    )
    result = figures.as_dict()
    assert result["direct_rps_many"] == {"median": 450.0, "min": 400.0, "max": 500.0, "n": 2}
    assert (result["two_over_one_rps_many"]["min"], result["two_over_one_rps_many"]["max"]) == (0.8, 1.0)
    assert (result["one_over_direct_rps_many"]["min"], result["one_over_direct_rps_many"]["max"]) == (0.5, 0.9)
    assert result["haproxy_cpu_ms_per_request"]["one_replica"]["median"] == 0.3
    assert result["two_replicas_second_share"]["min"] == 0.25
    assert (result["errors_many"], result["connections"]) == (5, 64)
    assert result["errors_by_mode"] == {"direct": {}, "one_replica": {}, "two_replicas": {"503": 3, "read": 2}}
    name, value = markdown_row(result, lambda spread: f"{spread['median']:g}")
    assert "HAProxy" in name
    assert value == "450 / 325 / 280; 0.9; 0.7"


def test_a_skipped_section_says_why_and_has_no_figures() -> None:
    result = ScaleOutFigures(skipped="haproxy is missing and cannot be installed here").as_dict()
    assert result == {"skipped": "haproxy is missing and cannot be installed here"}
    assert markdown_row(result, str)[1] == "skipped: haproxy is missing and cannot be installed here"


def test_the_config_balances_over_exactly_the_replicas_given_on_loopback(tmp_path: Path) -> None:
    one = haproxy_config(9000, [9001])
    two = haproxy_config(9000, [9001, 9002])
    shipped = [line.split()[3:] for line in HAPROXY_CFG.read_text().splitlines() if "server rest-" in line]
    servers = [[line.split() for line in text.splitlines() if "server rest-" in line] for text in (one, two)]

    assert servers[0] == [["server", "rest-1", "127.0.0.1:9001", *shipped[0]]]
    assert servers[1] == [
        ["server", "rest-1", "127.0.0.1:9001", *shipped[0]],
        ["server", "rest-2", "127.0.0.1:9002", *shipped[1]],
    ]
    assert "bind 127.0.0.1:9000" in one and "bind :8080" not in one
    rest = [line for line in one.splitlines() if "server rest-" not in line]
    assert rest == [
        line
        for line in HAPROXY_CFG.read_text().replace("bind :8080", "bind 127.0.0.1:9000").splitlines()
        if "server rest-" not in line
    ]
    binary = debian_binary("haproxy", "haproxy")
    (tmp_path / "one.cfg").write_text(one)
    checked = subprocess.run([binary, "-c", "-f", str(tmp_path / "one.cfg")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_haproxy_the_section_is_skipped_saying_why_and_starts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian_servers.shutil, "which", lambda *args, **kwargs: None)
    monkeypatch.setattr(debian_servers.os, "geteuid", lambda: 1000)
    steps: list[str] = []

    figures = measure_scale_out(cast(Stack, None), QUICK, steps.append)  # the stack is never touched

    assert (
        figures.skipped
        == "haproxy is missing and cannot be installed here (needs apt-get as root: apt-get install haproxy)"
    )
    assert len(steps) == 1
