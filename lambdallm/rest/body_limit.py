"""The REST tier's body limit, derived from the contract: the largest valid request in its costliest encoding.

A character's cost depends on how the client's JSON library writes it: one byte as ASCII, up to four as raw
UTF-8, six as a `\\uXXXX` escape, and twelve for a character outside the Basic Multilingual Plane written as an
escaped surrogate pair (`\\ud83d\\ude00`, what Python's json.dumps writes by default). So the limit is the size
of the largest request the spec allows, every character such a pair, pretty-printed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lambdallm.settings import RestSettings, SettingsError

WIDEST_CHARACTER = "\U0001f600"  # 12 bytes escaped as a surrogate pair
# The longest way json.dumps writes a number within 0..1 (23 characters: 17 digits and an exponent).
LONGEST_FRACTION = 2.2250738585072014e-308


def largest_requests(spec: Path) -> list[dict[str, Any]]:
    """The largest valid GenerateRequest of each shape (a prompt, a conversation), at every bound of the spec.

    A conversation's turns and `system` share the prompt's `maxLength` (the schema's description says so, and
    the proxy checks it), so the largest conversation spends it on the most turns and the longest `system`."""
    schemas = yaml.safe_load(spec.read_text())["components"]["schemas"]
    fields = schemas["GenerateRequest"]["properties"]
    total = fields["prompt"]["maxLength"]
    stops = fields["stop_sequences"]
    common = {
        "max_tokens": fields["max_tokens"]["maximum"],
        "temperature": LONGEST_FRACTION,
        "top_p": LONGEST_FRACTION,
        "stop_sequences": [WIDEST_CHARACTER * stops["items"]["maxLength"]] * stops["maxItems"],
        "model": "m" * fields["model"]["maxLength"],  # ASCII only (its pattern)
        "continuation": False,  # only with a prompt; `false` is the longer of the two
    }
    turns = fields["messages"]["maxItems"] // 2 * 2 + 1  # odd: user first and last, roles alternating
    system = min(fields["system"]["maxLength"], total - turns)
    contents = _split(total - system, turns)
    messages = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": WIDEST_CHARACTER * n} for i, n in enumerate(contents)
    ]
    return [
        {"prompt": WIDEST_CHARACTER * total} | common,
        {"messages": messages, "system": WIDEST_CHARACTER * system} | common,
    ]


def largest_request_bytes(spec: Path) -> int:
    """The size of the largest valid request, every character escaped as a surrogate pair and indented."""
    return max(len(json.dumps(request, indent=2).encode()) for request in largest_requests(spec))


def body_limit(settings: RestSettings, spec: Path) -> int:
    """`max_body_bytes`, or (0, the default) the largest valid request; a SettingsError if it is set below that,
    since it would refuse requests the contract accepts."""
    floor = largest_request_bytes(spec)
    if settings.max_body_bytes == 0:
        return floor
    if settings.max_body_bytes < floor:
        raise SettingsError(
            f"max_body_bytes: must be at least {floor}, the largest valid request JSON-escaped (0 picks it)"
        )
    return settings.max_body_bytes


def _split(characters: int, parts: int) -> list[int]:
    """`characters` in `parts` lengths as even as they can be, each at least 1."""
    share, extra = divmod(characters, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]
