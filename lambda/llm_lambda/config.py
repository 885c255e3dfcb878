"""The function's configuration: one frozen object, read from the environment once by the AWS entry point, or
built directly by a host that runs the handlers itself (the local cloud, the tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config

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

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> FunctionConfig:
        """The configuration deploy/template.yaml gives the function through its environment variables."""
        return cls(
            model_id=environ.get("BEDROCK_MODEL_ID", cls.model_id),
            region=environ.get("AWS_REGION", cls.region),
            connect_timeout_s=float(environ.get("BEDROCK_CONNECT_TIMEOUT_S", cls.connect_timeout_s)),
            read_timeout_s=float(environ.get("BEDROCK_READ_TIMEOUT_S", cls.read_timeout_s)),
            max_pool_connections=int(environ.get("BEDROCK_MAX_POOL_CONNECTIONS", cls.max_pool_connections)),
            log_prompts=environ.get("LOG_PROMPTS", "false").strip().lower() in TRUE,
        )

    def bedrock_client(self) -> Any:
        """A Bedrock Runtime client as configured. With static credentials, a session of its own with those keys
        and no profile, so that the host's AWS_PROFILE and credential files cannot take part."""
        if self.access_key_id is not None:
            session = boto3.Session(
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
                region_name=self.region,
                botocore_session=botocore.session.Session(session_vars=NO_PROFILE),
            )
        else:
            session = boto3.Session(region_name=self.region)
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
