"""The instant engine's exact behaviour, and stop sequences held back until they can no longer match."""

from __future__ import annotations

import threading

import pytest

from lambdallm.local_cloud.engines import Cancelled, GenerationRequest, InstantEngine, StopMatcher


def echo(prompt: str, max_tokens: int = 512, stops: tuple[str, ...] = ()) -> tuple[str, int, int, str, list[str]]:
    pieces: list[str] = []
    request = GenerationRequest(prompt, max_tokens, stop_sequences=stops)
    done = InstantEngine().generate(request, lambda text, _: pieces.append(text), threading.Event())
    return done.text, done.input_tokens, done.output_tokens, done.reason, pieces


def test_echoes_the_prompt_words_and_finishes() -> None:
    assert echo("  one two\nthree ") == ("one two three", 3, 3, "FINISH", ["one", " two", " three"])


def test_stops_at_max_tokens_with_length() -> None:
    assert echo("one two three", max_tokens=2)[:4] == ("one two", 3, 2, "LENGTH")


def test_reaching_max_tokens_is_a_length_even_if_nothing_would_follow() -> None:
    # As llama-server and vLLM: the model is not run past the limit to tell the two apart.
    assert echo("one two", max_tokens=2)[3] == "LENGTH"


def test_a_stop_sequence_ends_the_text_before_it() -> None:
    text, _, tokens, reason, pieces = echo("one two three four", stops=("three",))
    assert (text, tokens, reason) == ("one two ", 3, "STOP_CRITERIA_MET")
    assert "".join(pieces) == text


def test_a_possible_stop_sequence_is_held_back_then_released() -> None:
    matcher = StopMatcher(["ab!"])
    assert matcher.add("xa") == ("x", False)
    assert matcher.add("b") == ("", False)
    assert matcher.add("c") == ("abc", False)
    assert matcher.add("ab") == ("", False)
    assert matcher.flush() == "ab"


def test_a_cancelled_generation_stops() -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(Cancelled):
        InstantEngine().generate(GenerationRequest("a b"), None, cancelled)
