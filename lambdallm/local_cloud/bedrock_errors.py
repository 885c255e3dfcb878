"""Bedrock Runtime's error type as the local Bedrock answers it, and the limits it keeps (AWS's own, and the
twin's where AWS documents none)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse

from llm_wire import limits

# Titan text models and their largest maxTokenCount (AWS's numbers: Premier's is also the λλM API's bound).
TITAN_MAX_TOKENS = {
    "amazon.titan-text-premier-v1:0": 3072,
    "amazon.titan-text-express-v1": 8192,
    "amazon.titan-text-lite-v1": 4096,
}
# Other models served (Gemma) take as many tokens as the λλM API asks for.
OTHER_MAX_TOKENS = limits.MAX_TOKENS
# Bedrock's own bounds: InvokeModel takes a body of at most 25,000,000 bytes, and Titan's request schema an
# inputText of at most 50,000 characters. Titan documents no bound on stopSequences; the twin takes what the
# major LLM APIs take (OpenAI: up to 4), as short as the λλM API sends them, so that no request can make the
# model's stop matching slow for everyone queued behind it.
MAX_BODY_BYTES = 25_000_000
MAX_INPUT_CHARS = 50_000
MAX_STOP_SEQUENCES = limits.MAX_STOP_SEQUENCES
MAX_STOP_CHARS = limits.MAX_STOP_CHARS


@dataclass
class BedrockError(Exception):
    """An error as Bedrock Runtime reports it: status, `x-amzn-errortype` name and a message."""

    status: int
    name: str
    message: str

    def to_response(self, request_id: str) -> JSONResponse:
        """The HTTP answer boto3 turns into the named exception."""
        headers = {"x-amzn-errortype": f"{self.name}:", "x-amzn-RequestId": request_id}
        return JSONResponse({"message": self.message}, self.status, headers=headers)


def validation(message: str) -> BedrockError:
    """A ValidationException worded like Bedrock's."""
    return BedrockError(400, "ValidationException", f"Malformed input request: {message}, please reformat your input")


def too_large() -> BedrockError:
    """The ValidationException for a body over MAX_BODY_BYTES."""
    return validation(f"body: expected maxLength: {MAX_BODY_BYTES}")
