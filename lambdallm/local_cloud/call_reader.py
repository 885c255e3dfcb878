"""The reading of a tool-using model's text back into Converse's content blocks, whole or as stream events: its
text, and each `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` as a toolUse block whose input is the
arguments' JSON. The arguments are read as JSON, not searched for the closing tag, which a string may hold.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lambdallm.local_cloud.grammar import TOOL_CALL_CLOSE, TOOL_CALL_OPEN

_CALL_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_ID_CHARS = string.ascii_letters + string.digits


def new_tool_use_id() -> str:
    """An id like Bedrock's (`tooluse_` and 22 letters and digits)."""
    return "tooluse_" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


def _any_prefix(literal: str) -> str:
    """A pattern for any prefix of `literal`, the empty one too."""
    pattern = ""
    for char in reversed(literal):
        pattern = f"(?:{re.escape(char)}{pattern})?"
    return pattern


_CALL_TAIL = re.compile(r"\s*\}\s*" + re.escape(TOOL_CALL_CLOSE))
_CALL_TAIL_SO_FAR = re.compile(r"\s*(?:\}\s*" + _any_prefix(TOOL_CALL_CLOSE) + ")?")
_OPEN_SO_FAR = re.compile(_any_prefix(TOOL_CALL_OPEN[:-1]) + r"\Z")  # the text's end that may still open a call
TEXT, HEAD, ARGUMENTS, TAIL = "text", "head", "arguments", "tail"


@dataclass
class _ValueEnd:
    """Finds where a JSON object or array ends, a piece at a time: brackets are counted outside strings only, so
    a string that holds `}` or `</tool_call>` does not end the call."""

    depth: int = 0
    in_string: bool = False
    escaped: bool = False

    def scan(self, text: str) -> int:
        """The index just past the value's end in `text`, or -1 if the value goes on."""
        for i, char in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                self.depth -= 1
                if self.depth == 0:
                    return i + 1
        return -1


@dataclass
class CallReader:
    """Reads a model's text as it comes into events: ("text", piece), ("start", id, name), ("input", fragment),
    ("stop",). Text that may begin a call is held back until it is known; a call's input is its arguments' JSON,
    read as JSON, so the call's closing brace and tag never reach it. The same reader makes the whole answer's
    blocks, so streamed pieces always add up to them."""

    pending: str = ""
    state: str = TEXT
    _value: _ValueEnd = field(default_factory=_ValueEnd)
    _events: list[tuple[str, ...]] = field(default_factory=list)

    def feed(self, text: str) -> list[tuple[str, ...]]:
        """The events `text` completes."""
        self.pending += text
        while self._step():
            pass
        events, self._events = self._events, []
        return events

    def finish(self) -> list[tuple[str, ...]]:
        """The events left at the end of the text (a call cut short ends with what it had)."""
        if self.state == TEXT and self.pending:
            self._events.append(("text", self.pending))
        elif self.state == ARGUMENTS:
            self._events.append(("stop",))
        self.pending, self.state = "", TEXT
        events, self._events = self._events, []
        return events

    def _step(self) -> bool:
        if self.state == TEXT:
            return self._text()
        if self.state == HEAD:
            return self._head()
        if self.state == ARGUMENTS:
            return self._arguments()
        return self._tail()

    def _text(self) -> bool:
        start = self.pending.find(TOOL_CALL_OPEN)
        if start < 0:
            keep = _partial_open(self.pending)
            if len(self.pending) > keep:
                self._events.append(("text", self.pending[: len(self.pending) - keep]))
                self.pending = self.pending[len(self.pending) - keep :]
            return False
        if self.pending[:start].strip():
            self._events.append(("text", self.pending[:start]))
        self.pending, self.state = self.pending[start + len(TOOL_CALL_OPEN) :], HEAD
        return True

    def _head(self) -> bool:
        head = _CALL_HEAD.match(self.pending)
        if head is None:
            return False
        self._events.append(("start", new_tool_use_id(), json.loads(f'"{head.group(1)}"')))
        self.pending, self.state, self._value = self.pending[head.end() :], ARGUMENTS, _ValueEnd()
        return True

    def _arguments(self) -> bool:
        end = self._value.scan(self.pending)
        arguments = self.pending if end < 0 else self.pending[:end]
        if arguments:
            self._events.append(("input", arguments))
        if end < 0:
            self.pending = ""
            return False
        self._events.append(("stop",))
        self.pending, self.state = self.pending[end:], TAIL
        return True

    def _tail(self) -> bool:
        """After the arguments, the call's `}` and closing tag; anything else is text again."""
        if tail := _CALL_TAIL.match(self.pending):
            self.pending, self.state = self.pending[tail.end() :], TEXT
            return True
        if _CALL_TAIL_SO_FAR.fullmatch(self.pending):
            return False
        self.state = TEXT
        return True


def _partial_open(text: str) -> int:
    """How much of `text`'s end may still become a call's opening tag (the longest such end: the leftmost match)."""
    return len(_OPEN_SO_FAR.search(text).group())  # type: ignore[union-attr]  # matches the empty end at least


def content_blocks(text: str) -> Iterator[dict[str, Any]]:
    """A whole answer's text as Converse content blocks: its text, and each call as a toolUse block."""
    reader = CallReader()
    call: dict[str, Any] | None = None
    for event in [*reader.feed(text), *reader.finish()]:
        if event[0] == "text":
            yield {"text": event[1]}
        elif event[0] == "start":
            call = {"toolUseId": event[1], "name": event[2], "input": ""}
        elif event[0] == "input" and call is not None:
            call["input"] += event[1]
        elif event[0] == "stop" and call is not None:
            try:
                call["input"] = json.loads(call["input"])
            except ValueError:
                call["input"] = {}  # a call cut short by maxTokens: its stream had the pieces it got to
            yield {"toolUse": call}
            call = None
