"""The bounds of a generation request, as specs/openapi.yaml (GenerateRequest) and specs/backend.yaml
(BackendRequest) state them: the one place the tiers take them from (tests/contract/test_limits.py holds the
specs and these numbers together)."""

from __future__ import annotations

MAX_PROMPT_CHARS = 32000  # a prompt; also the bound on a conversation's text, `system` and calls' arguments included
MAX_MESSAGES = 99
MAX_SYSTEM_CHARS = 8000
MAX_TOKENS = 3072
MAX_STOP_SEQUENCES = 4
MAX_STOP_CHARS = 100
MAX_MODEL_ID_CHARS = 2048  # a model id, inference profile id or ARN, as Bedrock bounds modelId
# A model id's characters (a Bedrock model id, inference profile id or ARN), as both specs' `model` pattern says.
MODEL_ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
MAX_TOOLS = 32  # tools in a request, and calls in one assistant turn
MAX_SCHEMA_CHARS = 16000  # a tool's parameters or a json_schema, as JSON text; also a tool's description
# All of a request's tools together: their descriptions and their parameters as JSON text. Without it 32 tools
# could carry a million characters, more than any model's context and than a Lambda's 6 MB request.
MAX_TOOLS_CHARS = 32000
