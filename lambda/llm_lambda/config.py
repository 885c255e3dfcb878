"""The function's configuration: one frozen object, read from the environment once by the AWS entry point, or
built directly by a host that runs the handlers itself (the local cloud, the tests)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

from llm_wire.request import is_model_id

# One attempt: a generation that timed out has been billed and would most likely time out again, and it would
# run after API Gateway already answered 504. Throttling and "not ready" go back to the caller as 429/503 with
# a reason, and the client retries, as with Bedrock and the major LLM APIs. The function's timeout covers
# connect + read (see docs/configuration.md, "Time budget").
BEDROCK_ATTEMPTS = 1
TRUE = ("1", "true", "yes", "on")
# A session with static credentials reads no profile and no shared config or credentials file (botocore's
# session variables: config name, environment variables, default, converter).
NO_PROFILE = {
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}


class ConfigError(ValueError):
    """A configuration value the function cannot run with; the message names the variable."""


def model_ids(key: str, text: str) -> tuple[str, ...]:
    """The model ids of a comma-separated value, or a ConfigError naming `key` and the bad id."""
    ids = tuple(part.strip() for part in text.split(","))
    for model_id in ids:
        if not is_model_id(model_id):
            raise ConfigError(f"{key}: {model_id[:80]!r} is not a Bedrock model id (comma-separated ids)")
    return ids


@dataclass(frozen=True)
class FunctionConfig:
    """What the handlers need: the model, the Bedrock client's region, timeouts and pool, whether prompts are
    logged; and, for a host outside AWS, the endpoint and static credentials (None: boto3's own resolution)."""

    model_id: str = "amazon.titan-text-premier-v1:0"
    region: str = "us-east-1"
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 25.0
    # In AWS an execution environment runs one invocation at a time; a host that runs several at once through
    # one client (the local cloud runs up to 64) says how many, so that each keeps its connection.
    max_pool_connections: int = 10
    log_prompts: bool = False
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    # The other model ids a request may name (the allowlist is `model_id` first, then these), and which of the
    # allowed models are base models, which continue text rather than follow instructions (GET /models).
    other_model_ids: tuple[str, ...] = ()
    base_model_ids: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FunctionConfig:
        """The configuration deploy/template.yaml gives the function through its environment variables; a bad
        model id list raises ConfigError naming its variable."""
        model_id = environ.get("BEDROCK_MODEL_ID", cls.model_id).strip()
        if not is_model_id(model_id):
            raise ConfigError(f"BEDROCK_MODEL_ID: {model_id[:80]!r} is not a Bedrock model id (one id)")
        others_text = environ.get("BEDROCK_MODEL_IDS", "").strip()
        others = model_ids("BEDROCK_MODEL_IDS", others_text) if others_text else ()
        base = environ.get("BEDROCK_BASE_MODEL_IDS", "").strip()
        base_ids = model_ids("BEDROCK_BASE_MODEL_IDS", base) if base else ()
        if stray := [model for model in base_ids if model not in (model_id, *others)]:
            raise ConfigError(f"BEDROCK_BASE_MODEL_IDS: {stray[0][:80]!r} is not one of the allowed models")
        return cls(
            model_id=model_id,
            other_model_ids=others,
            base_model_ids=base_ids,
            region=environ.get("AWS_REGION", cls.region),
            connect_timeout_s=float(environ.get("BEDROCK_CONNECT_TIMEOUT_S", cls.connect_timeout_s)),
            read_timeout_s=float(environ.get("BEDROCK_READ_TIMEOUT_S", cls.read_timeout_s)),
            max_pool_connections=int(environ.get("BEDROCK_MAX_POOL_CONNECTIONS", cls.max_pool_connections)),
            log_prompts=environ.get("LOG_PROMPTS", "false").strip().lower() in TRUE,
        )

    @property
    def allowed_model_ids(self) -> tuple[str, ...]:
        """The ids a request may name, the default (`model_id`) first, each once."""
        return tuple(dict.fromkeys((self.model_id, *self.other_model_ids)))

    def bedrock_client(self) -> Any:
        """A Bedrock Runtime client as configured. With static credentials, a session of its own with those keys
        and no profile, so that the host's AWS_PROFILE and credential files cannot take part."""
        core = botocore.session.Session(session_vars=NO_PROFILE if self.access_key_id is not None else None)
        # botocore makes a response parser per call, and its default blob parser is a bound method of the parser:
        # each call left a cycle for the garbage collector. The same decoding as a plain function leaves none.
        core.get_component("response_parser_factory").set_parser_defaults(blob_parser=base64.b64decode)
        if self.access_key_id is not None:
            session = boto3.Session(
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                region_name=self.region,
                botocore_session=core,
            )
        else:
            session = boto3.Session(region_name=self.region, botocore_session=core)
        return session.client(
            "bedrock-runtime",
            endpoint_url=self.endpoint_url,
            config=Config(
                connect_timeout=self.connect_timeout_s,
                read_timeout=self.read_timeout_s,
                retries={"mode": "standard", "total_max_attempts": BEDROCK_ATTEMPTS},
                max_pool_connections=self.max_pool_connections,
            ),
        )
