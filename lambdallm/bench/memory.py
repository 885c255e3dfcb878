"""Resident memory and CPU time of a process and all its descendants, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """RSS in MiB of `pid` and every process below it (0 for a process that is gone)."""
    return sum(_own_rss_kb(p) for p in (pid, *_descendants(pid))) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds that `pid` and every process below it have used so far."""
    return sum(_own_cpu_ticks(p) for p in (pid, *_descendants(pid))) / TICKS_PER_S


def _own_cpu_ticks(pid: int) -> int:
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat(5), after pid and comm)


def _own_rss_kb(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(children.get(child, []))
    return found
