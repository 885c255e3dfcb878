"""The house's rules that a read of the whole tree checks (issue 19): short modules, the environment changed only
by entry points, each request limit's number in one module, one watcher for a client's hang-up, and SSE read by
httpx-sse, never by hand."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_wire import limits

ROOT = Path(__file__).resolve().parents[2]
HAND_WRITTEN = ("lambdallm", "lambda", "handlers", "client_app", "scripts")
MAX_LINES = 300
# Programs' entry points, which may set their own process environment: none needs to today.
ENVIRONMENT_WRITERS: set[str] = set()
# The numbers of the request limits that no other code uses by chance, each in llm_wire/limits.py only; Titan Text
# Premier's largest maxTokenCount (AWS's number, in the local Bedrock's table) is the API's bound too.
LIMIT_NUMBERS = {
    limits.MAX_PROMPT_CHARS: set(),
    limits.MAX_SYSTEM_CHARS: set(),
    limits.MAX_TOKENS: {"bedrock_errors.py"},
}
# A client that counts events on a raw socket to hang up at an exact point (issue 26's soak), reading no event's data.
EVENT_COUNTERS = {"abandon.py"}
ENVIRON_WRITES = {"update", "clear", "pop", "popitem", "setdefault", "__setitem__", "__delitem__"}


def modules(*folders: str) -> Iterator[Path]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "_shipped" not in path.parts:
                yield path


def tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def is_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name)


def environment_writes(module: ast.Module) -> list[int]:
    """Lines that change os.environ (or call os.putenv / os.unsetenv)."""
    lines = []
    for node in ast.walk(module):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign | ast.Delete):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign):
            targets = [node.target]
        if any(isinstance(target, ast.Subscript) and is_environ(target.value) for target in targets):
            lines.append(node.lineno)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            function = node.func
            if (function.attr in ENVIRON_WRITES and is_environ(function.value)) or function.attr in (
                "putenv",
                "unsetenv",
            ):
                lines.append(node.lineno)
    return sorted(lines)


def test_no_hand_written_module_of_the_tiers_is_over_300_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in modules("lambdallm", "lambda")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_environment_is_changed_only_by_entry_points() -> None:
    writes = {str(p.relative_to(ROOT)): lines for p in modules(*HAND_WRITTEN) if (lines := environment_writes(tree(p)))}
    assert set(writes) <= ENVIRONMENT_WRITERS, writes


def test_the_environment_check_sees_each_way_of_changing_it() -> None:
    source = "import os\nos.environ['A'] = '1'\nos.environ.update(B='2')\ndel os.environ['A']\nos.environ.clear()\n"
    assert environment_writes(ast.parse(source)) == [2, 3, 4, 5]


@pytest.mark.parametrize("number", LIMIT_NUMBERS)
def test_each_limits_number_is_written_in_one_module(number: int) -> None:
    found = {
        path.name
        for path in modules(*HAND_WRITTEN)
        for node in ast.walk(tree(path))
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value == number
    }
    assert found == {"limits.py"} | LIMIT_NUMBERS[number]


def test_one_module_watches_for_a_client_that_hangs_up() -> None:
    watchers = {str(p.relative_to(ROOT)) for p in modules(*HAND_WRITTEN) if '"http.disconnect"' in p.read_text()}
    assert watchers == {"lambdallm/disconnect.py"}


def test_server_sent_events_are_read_by_httpx_sse_not_by_hand() -> None:
    readers = [
        p
        for p in modules("client_app", "lambdallm/bench")
        if "event-stream" in p.read_text() and p.name not in EVENT_COUNTERS
    ]
    assert readers, "no SSE reader found: the check would pass for nothing"
    for path in readers:
        text = path.read_text()
        assert "httpx_sse" in text, path
        strings = [n.value for n in ast.walk(tree(path)) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        assert not [s for s in strings if s.startswith(("data:", "event:"))], path
