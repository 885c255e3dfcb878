"""The reference: the local Bedrock's default model generating in this process with llama-cpp-python, no tiers."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdallm import settings
from lambdallm.bench.streaming import Stream
from lambdallm.local_cloud.chat_template import ChatTemplate
from lambdallm.local_cloud.models import DEFAULT, MODEL_FILES, MODEL_NAMES

# Sent as a prompt: the local Bedrock gives InvokeModel's inputText to its instruct model as a user turn, and the
# direct model and llama-server are given the same rendered turn; the answer runs past 128 tokens at temperature 0
# without an EOS.
PROMPT = "The history of the Roman Empire is long and complicated. It began"


@dataclass(frozen=True)
class Generation:
    """One timed generation: how many tokens, in how many seconds, and when its first and last token came."""

    tokens: int
    seconds: float
    first_s: float = 0.0
    last_s: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds

    def as_stream(self) -> Stream:
        """The generation as a stream read token by token, to compare with the chain's streamed answers."""
        return Stream(first_s=self.first_s, last_s=self.last_s, tokens=self.tokens)


def model_path() -> Path:
    """The GGUF file of the local Bedrock's default model (the one the bench measures)."""
    return MODEL_FILES[DEFAULT]()


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


MODEL = {"id": settings.CloudSettings().model_id, "name": MODEL_NAMES[DEFAULT]}  # named in latest.json


class DirectModel:
    """The default model of the local Bedrock (the one the chain's model id reaches), loaded here with the local
    cloud's own thread and context settings."""

    def __init__(self) -> None:
        from llama_cpp import Llama

        cloud = settings.load(settings.CloudSettings, "local-cloud")
        with _quiet_stderr():  # llama.cpp prints notices from C even with verbose=False; they break the bar
            self.llama: Any = Llama(
                model_path=str(model_path()), n_threads=cloud.threads, n_ctx=cloud.context_tokens, verbose=False
            )
        bos, eos = (self.llama.token_bos(), self.llama.token_eos())
        text = [self.llama.detokenize([token], special=True).decode() for token in (bos, eos)]
        self.template = ChatTemplate.of_model(self.llama.metadata, *text)

    def rendered(self, prompt: str) -> str:
        """`prompt` as the local Bedrock feeds it to this model: one user turn of its chat template."""
        return self.template.instruction(prompt)

    def generate(self, prompt: str, max_tokens: int, temperature: float = 0.0, fresh: bool = False) -> Generation:
        """Sample up to `max_tokens` tokens with `Llama.generate`, timed from tokenizing the prompt.

        It skips create_completion's per-token Python bookkeeping, so the reference is the model's own pace. Unless
        `fresh`, it keeps the KV cache of a prompt it has just seen and skips evaluating it again; `fresh` evaluates
        the whole prompt, as the local Bedrock's engine does for every request (time to first token).
        """
        if fresh:
            self.llama.reset()  # no cached prefix: the prompt is evaluated again
        start = time.perf_counter()
        prompt_tokens = self.llama.tokenize(self.rendered(prompt).encode("utf-8"), add_bos=True, special=True)
        eos, count, first, last = self.llama.token_eos(), 0, 0.0, 0.0
        tokens = self.llama.generate(prompt_tokens, temp=temperature, reset=True)
        try:
            for token in tokens:
                if token == eos:
                    break
                last = time.perf_counter() - start
                first = first or last
                count += 1
                if count == max_tokens:
                    break
        finally:
            tokens.close()
        return Generation(tokens=count, seconds=time.perf_counter() - start, first_s=first, last_s=last)

    def close(self) -> None:
        """Free the model's memory."""
        self.llama.close()
