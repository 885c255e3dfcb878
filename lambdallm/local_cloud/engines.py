"""Text generation engines for the local Bedrock: the shared request/answer types, and a deterministic echo.

The real models' engine (continuous batching over llama.cpp) is in `llama_engine.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lambdallm.local_cloud.chat_template import ECHO_TEMPLATE, ChatTemplate
from lambdallm.settings import CloudSettings

# Titan completion reasons, honestly reported.
FINISH, LENGTH, STOP = "FINISH", "LENGTH", "STOP_CRITERIA_MET"

Emit = Callable[[str, int], None]  # (new text, output tokens so far)


class PromptTooLong(ValueError):
    """The prompt leaves no room in the model's context."""


class Cancelled(Exception):
    """The caller went away; the generation stopped early and its result is void."""


@dataclass(frozen=True)
class Grammar:
    """A GBNF grammar the generated text must follow (lambdallm.local_cloud.grammar makes them from JSON Schemas).
    With `triggers` it is lazy: the text is free until one of them appears, then follows the grammar from it."""

    gbnf: str
    triggers: tuple[str, ...] = ()


@dataclass(frozen=True)
class GenerationRequest:
    """One generation, with Titan's defaults already applied.

    `seed` makes sampling at temperature > 0 repeatable; `parse_special` says the prompt was rendered from a
    chat template: its special tokens (such as `<start_of_turn>`) are parsed as such, and a BOS it already
    starts with is not added twice. `grammar` constrains the text (only for an engine whose `grammars` is true).
    """

    prompt: str
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    stop_sequences: tuple[str, ...] = ()
    seed: int | None = None
    # The prompt was rendered by the model's chat template: it holds special tokens (BOS too, if the model wants
    # one), so it is tokenized with them parsed and without a second BOS.
    parse_special: bool = False
    grammar: Grammar | None = None


@dataclass
class DecodeSteps:
    """The model's forward passes (llama_decode calls) and the time they took, by kind: `prompt` steps feed some
    prompt tokens (a new request's chunk, perhaps beside others' next tokens), `generate` steps only generated
    tokens. Written by the engine's thread alone; read at scrape time (docs/metrics.md)."""

    prompt_steps: int = 0
    prompt_seconds: float = 0.0
    generate_steps: int = 0
    generate_seconds: float = 0.0

    def record(self, prompt: bool, seconds: float) -> None:
        if prompt:
            self.prompt_steps += 1
            self.prompt_seconds += seconds
        else:
            self.generate_steps += 1
            self.generate_seconds += seconds


@dataclass(frozen=True)
class Completion:
    """What came out: the text (without any stop sequence), token counts and the Titan completion reason."""

    text: str
    input_tokens: int
    output_tokens: int
    reason: str


class Engine(Protocol):
    """A model. It generates for up to `slots` requests at once; `slots == 0` means it answers inline, at once."""

    slots: int
    chat_template: ChatTemplate  # how conversations become this model's prompts (rendered by the caller)
    # Instruction-tuned: a Titan inputText reaches it as one user turn of its chat template, since Titan Text takes
    # inputText as an instruction (raw, an instruct model takes it for a finished turn and ends at once).
    instruct: bool
    grammars: bool  # it can constrain its text with a `Grammar` (tool use and structured output)
    steps: DecodeSteps  # its forward passes so far (none for an engine without a model)

    def submit(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Future[Completion]:
        """Start generating for `request`, calling `emit` with text as it becomes final; the result's future.

        Cancelling the future before it runs drops the request; setting `cancelled` stops it at its next token.
        """
        ...

    def close(self) -> None:
        """Stop generating and free the model."""
        ...


class StopMatcher:
    """Accumulates generated text and holds back any tail that could still become a stop sequence."""

    def __init__(self, stops: Iterable[str]) -> None:
        self.stops = tuple(stops)
        self.text = ""
        self.released = 0

    def add(self, piece: str) -> tuple[str, bool]:
        """Append `piece`; return the text now safe to release, and whether a stop sequence was met."""
        self.text += piece
        hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.text = self.text[: min(hits)]
            return self._release(len(self.text)), True
        held = max((k for s in self.stops for k in range(1, len(s)) if self.text.endswith(s[:k])), default=0)
        return self._release(len(self.text) - held), False

    def flush(self) -> str:
        """Release whatever was held back: the generation ended without meeting a stop sequence."""
        return self._release(len(self.text))

    def _release(self, upto: int) -> str:
        out, self.released = self.text[self.released : upto], max(self.released, upto)
        return out


class TextStream:
    """One generation's text as its tokens arrive: the one place that decides Titan's ending.

    FINISH when the model ends, LENGTH once `limit` tokens have come, STOP_CRITERIA_MET on a stop sequence (the
    text ends before it); text is passed to `emit` as soon as no stop sequence can claim it. At the limit the model
    is not run once more to see whether it would have ended there (as llama-server, vLLM and OpenAI's API report
    `length`): that pass would cost a whole decode step and delay the answer by it.
    """

    def __init__(self, request: GenerationRequest, limit: int, emit: Emit | None) -> None:
        self.matcher = StopMatcher(request.stop_sequences)
        self.limit, self.emit = limit, emit
        self.count, self.reason = 0, FINISH

    def push(self, piece: str) -> bool:
        """Take the next token's text; False once the generation is over (a stop sequence, or the limit)."""
        self.count += 1
        out, stopped = self.matcher.add(piece)
        if out and self.emit:
            self.emit(out, self.count)
        if stopped:
            self.reason = STOP
        elif self.count >= self.limit:
            self.reason = LENGTH
        return self.reason == FINISH

    def result(self) -> tuple[str, int, str]:
        """The text, the output token count and the reason, releasing any tail held back for a stop sequence."""
        if self.reason != STOP and (tail := self.matcher.flush()) and self.emit:
            self.emit(tail, self.count)
        return self.matcher.text, self.count, self.reason


def run_generation(
    pieces: Iterator[str], limit: int, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event
) -> tuple[str, int, str]:
    """Drive a whole token stream through a `TextStream`; raises `Cancelled` once `cancelled` is set."""
    stream = TextStream(request, limit, emit)
    for piece in pieces:
        if cancelled.is_set():
            raise Cancelled
        if not stream.push(piece):
            break
    return stream.result()


class InstantEngine:
    """Echoes the prompt's whitespace-separated words back, one token per word, with no model compute.

    Input tokens = words in the prompt; output = the words joined by single spaces, ending with FINISH after
    the last word, LENGTH at max tokens, or STOP_CRITERIA_MET when the text reaches a stop sequence.
    """

    slots = 0  # answers inline: never queued, never refused
    instruct = False  # it echoes the prompt as it comes
    grammars = False  # an echo follows no grammar: tool use and structured output are refused for it

    def __init__(self) -> None:
        self.chat_template = ChatTemplate(ECHO_TEMPLATE)
        self.steps = DecodeSteps()  # no model, no forward pass: it stays at zero

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        """Echo the prompt (see the class docstring)."""
        words = request.prompt.split()
        pieces = (word if i == 0 else " " + word for i, word in enumerate(words))
        text, count, reason = run_generation(pieces, request.max_tokens, request, emit, cancelled)
        return Completion(text, len(words), count, reason)

    def submit(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Future[Completion]:
        """`generate`, already done."""
        future: Future[Completion] = Future()
        try:
            future.set_result(self.generate(request, emit, cancelled))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Nothing to free."""


def create_engine(settings: CloudSettings, model_file: Callable[[], Path]) -> Engine:
    """The engine `settings.engine` names: the model in `model_file()` loaded (about a second), or the echo."""
    if settings.engine == "instant":
        return InstantEngine()
    from lambdallm.local_cloud.llama_engine import LlamaEngine

    return LlamaEngine(
        model_file(), settings.threads, settings.context_tokens, settings.slots, settings.prompt_chunk_tokens
    )
