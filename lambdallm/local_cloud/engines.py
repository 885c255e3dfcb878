"""Text generation engines for the local Bedrock: a GGUF model through llama.cpp, and a deterministic echo."""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
class GenerationRequest:
    """One Titan generation, with Titan's defaults already applied."""

    prompt: str
    max_tokens: int = 512
    temperature: float = 0.7
    top_p: float = 0.9
    stop_sequences: tuple[str, ...] = ()
    # The prompt was rendered by the model's chat template: it holds special tokens (BOS too, if the model wants
    # one), so it is tokenized with them parsed and without a second BOS.
    templated: bool = False


@dataclass(frozen=True)
class Completion:
    """What came out: the text (without any stop sequence), token counts and the Titan completion reason."""

    text: str
    input_tokens: int
    output_tokens: int
    reason: str


class Engine(Protocol):
    """A model. `blocking` engines run in the one model thread, behind the queue; others run inline."""

    blocking: bool
    chat_template: ChatTemplate  # how conversations become this model's prompts (rendered by the caller)

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        """Generate for `request`, calling `emit` with text as it becomes final."""
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


def run_generation(
    pieces: Iterator[str], limit: int, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event
) -> tuple[str, int, str]:
    """Drive a token stream to a Titan ending: FINISH when it ends, LENGTH when more came after `limit`
    tokens, STOP_CRITERIA_MET on a stop sequence (the text ends before it)."""
    matcher, count, reason = StopMatcher(request.stop_sequences), 0, FINISH
    for piece in pieces:
        if cancelled.is_set():
            raise Cancelled
        if count >= limit:
            reason = LENGTH
            break
        count += 1
        out, stopped = matcher.add(piece)
        if out and emit:
            emit(out, count)
        if stopped:
            return matcher.text, count, STOP
    if (tail := matcher.flush()) and emit:
        emit(tail, count)
    return matcher.text, count, reason


class InstantEngine:
    """Echoes the prompt's whitespace-separated words back, one token per word, with no model compute.

    Input tokens = words in the prompt; output = the words joined by single spaces, ending with FINISH after
    the last word, LENGTH at max tokens, or STOP_CRITERIA_MET when the text reaches a stop sequence.
    """

    blocking = False

    def __init__(self) -> None:
        self.chat_template = ChatTemplate(ECHO_TEMPLATE)

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        """Echo the prompt (see the class docstring)."""
        words = request.prompt.split()
        pieces = (word if i == 0 else " " + word for i, word in enumerate(words))
        text, count, reason = run_generation(pieces, request.max_tokens, request, emit, cancelled)
        return Completion(text, len(words), count, reason)


class LlamaEngine:
    """One GGUF model through llama-cpp-python, loaded once; its chat template comes from the file."""

    blocking = True

    def __init__(self, model_path: Path, settings: CloudSettings) -> None:
        from llama_cpp import Llama

        self.llm: Any = Llama(
            model_path=str(model_path), n_ctx=settings.context_tokens, n_threads=settings.threads, verbose=False
        )
        self._is_eog = _eog_test(self.llm)
        self.chat_template = ChatTemplate.of_model(self.llm)

    def generate(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Completion:
        """Sample up to `max_tokens` tokens after the prompt; the caller serialises calls."""
        encoded = request.prompt.encode("utf-8")
        prompt = self.llm.tokenize(encoded, add_bos=not request.templated, special=request.templated)
        room = self.llm.n_ctx() - len(prompt)
        if room <= 0:
            raise PromptTooLong(f"the prompt is {len(prompt)} tokens; the model's context is {self.llm.n_ctx()}")
        tokens = self.llm.generate(prompt, temp=request.temperature, top_p=request.top_p, reset=True)
        try:
            pieces = self._pieces(tokens)
            text, count, reason = run_generation(pieces, min(request.max_tokens, room), request, emit, cancelled)
        finally:
            tokens.close()
        return Completion(text, len(prompt), count, reason)

    def _pieces(self, tokens: Iterator[int]) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for token in tokens:
            if self._is_eog(token):
                return
            # Multi-byte characters can span tokens: the decoder keeps partial bytes until they complete.
            yield decoder.decode(self.llm.detokenize([token]))


def _eog_test(llm: Any) -> Callable[[int], bool]:
    import llama_cpp

    if hasattr(llama_cpp, "llama_vocab_is_eog") and hasattr(llama_cpp, "llama_model_get_vocab"):
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))
    eos = llm.token_eos()
    return lambda token: token == eos


def create_engine(settings: CloudSettings, model_file: Callable[[], Path]) -> Engine:
    """The engine `settings.engine` names: the model in `model_file()` loaded (about a second), or the echo."""
    return LlamaEngine(model_file(), settings) if settings.engine == "llama" else InstantEngine()
