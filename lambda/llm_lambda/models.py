"""The models the function serves: its allowlist (FunctionConfig), what `GET /models` says of each, and which
Bedrock API each is called through."""

from __future__ import annotations

from typing import Any

from llm_lambda.config import FunctionConfig
from llm_wire.errors import BackendError

# Cross-region inference profile ids begin with their geography (us.anthropic.claude-..., global.amazon.nova-...).
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")
# Titan Text models take a prompt through InvokeModel (its inputText); every other model through Converse.
INVOKE_MODEL_FAMILIES = ("amazon.titan-text",)


def foundation_id(model_id: str) -> str:
    """The foundation model's id behind `model_id`: the id of an ARN, without an inference profile's prefix."""
    name = model_id.rsplit("/", 1)[-1]
    return next((name[len(prefix) :] for prefix in PROFILE_PREFIXES if name.startswith(prefix)), name)


def owned_by(model_id: str) -> str:
    """Who makes the model, from its id's provider part (amazon, anthropic, meta, google ...)."""
    return foundation_id(model_id).split(".", 1)[0]


def takes_invoke_model(model_id: str) -> bool:
    """Whether a prompt for `model_id` goes through InvokeModel with Titan's body (else through Converse)."""
    return foundation_id(model_id).startswith(INVOKE_MODEL_FAMILIES)


def served_models(config: FunctionConfig) -> list[dict[str, Any]]:
    """`GET /models`' list (specs/backend.yaml ModelInfo): every allowed id, the default first."""
    return [
        {"id": model_id, "owned_by": owned_by(model_id), "instruct": model_id not in config.base_model_ids}
        for model_id in config.allowed_model_ids
    ]


def chosen_model(config: FunctionConfig, requested: str | None) -> str:
    """The model a request names, or the default; an id outside the allowlist is a 404 naming the allowed ids."""
    if requested is None:
        return config.model_id
    if requested not in config.allowed_model_ids:
        allowed = ", ".join(config.allowed_model_ids)
        raise BackendError(404, f"model: {requested[:200]!r} is not served here (served: {allowed})")
    return requested
