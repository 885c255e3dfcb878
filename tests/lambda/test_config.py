"""The function's configuration: read from the environment the template sets, once, by the AWS entry point only;
a host (the local cloud) builds it directly, and the environment of the process running it takes no part."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lambdallm.local_cloud.server import function_config, running_local_cloud
from lambdallm.settings import CloudSettings
from llm_lambda import handler
from llm_lambda.config import FunctionConfig


def test_the_environment_gives_every_value_and_its_absence_the_defaults() -> None:
    environ = {
        "BEDROCK_MODEL_ID": "amazon.titan-text-lite-v1",
        "AWS_REGION": "eu-west-3",
        "BEDROCK_CONNECT_TIMEOUT_S": "1.5",
        "BEDROCK_READ_TIMEOUT_S": "12",
        "BEDROCK_MAX_POOL_CONNECTIONS": "64",
        "LOG_PROMPTS": " On ",
    }
    assert FunctionConfig.from_environ(environ) == FunctionConfig(
        "amazon.titan-text-lite-v1", "eu-west-3", 1.5, 12.0, 64, log_prompts=True
    )
    assert FunctionConfig.from_environ({}) == FunctionConfig(
        "amazon.titan-text-premier-v1:0", "us-east-1", 2.0, 25.0, 10, log_prompts=False
    )
    assert not FunctionConfig.from_environ({"LOG_PROMPTS": "no"}).log_prompts


def test_the_aws_entry_points_read_the_environment_once_on_first_use(
    monkeypatch: pytest.MonkeyPatch, event: Any, context: Any
) -> None:
    handler.aws_function.cache_clear()
    monkeypatch.setenv("BEDROCK_MODEL_ID", "amazon.titan-text-lite-v1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9")  # never AWS: stubbed below
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    try:
        function = handler.aws_function()
        monkeypatch.setenv("BEDROCK_MODEL_ID", "changed.later")
        with Stubber(function.bedrock) as stubber:
            stubber.add_client_error("invoke_model", "ThrottlingException", "slow down", 429)
            assert handler.lambda_handler(event("query.json"), context)["statusCode"] == 429
        assert handler.aws_function() is function
        assert function.config.model_id == "amazon.titan-text-lite-v1"
    finally:
        handler.aws_function.cache_clear()


def test_the_local_clouds_function_ignores_the_hosts_aws_profile_and_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.2:1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.2:2")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "someone-elses")

    client = function_config(CloudSettings(), "http://127.0.0.1:5").bedrock_client()

    assert (client.meta.endpoint_url, client.meta.region_name) == ("http://127.0.0.1:5", "us-east-1")
    credentials = client._request_signer._credentials
    assert (credentials.access_key, credentials.token) == ("local", None)


def test_a_running_local_cloud_leaves_the_process_environment_alone() -> None:
    before = dict(os.environ)
    settings = CloudSettings(host="127.0.0.1", apigw_port=0, bedrock_port=0, engine="instant")
    with running_local_cloud(settings):
        assert dict(os.environ) == before
    assert dict(os.environ) == before


@pytest.mark.parametrize(("runtime_api", "built"), [(None, "0"), ("127.0.0.1:9", "1")])
def test_the_client_is_built_at_import_only_in_a_lambda_environment(runtime_api: str | None, built: str) -> None:
    """In AWS (the Runtime API is there) the init phase builds it; the local cloud's import builds nothing."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    environ |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    environ |= {"PYTHONPATH": str(Path(handler.__file__).parents[1])}
    if runtime_api:
        environ["AWS_LAMBDA_RUNTIME_API"] = runtime_api
    code = "from llm_lambda import handler; print(handler.aws_function.cache_info().currsize)"
    result = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == built
