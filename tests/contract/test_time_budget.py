"""One time budget: API Gateway's integration timeout, and every timeout around it derived from it.

From the inside out, each layer gives up after the one it waits for, so that the inner layer's own answer
(with its reason) reaches the caller, and no work starts after the caller was told it failed.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from client_app.config import ClientSettings
from lambdallm.local_cloud.server import BEDROCK_CONNECT_TIMEOUT_S, function_config
from lambdallm.settings import CloudSettings, ProxySettings, RestSettings
from llm_lambda.config import FunctionConfig

ROOT = Path(__file__).resolve().parents[2]


def _template() -> dict:
    from cfnlint.decode import decode

    parsed, errors = decode(str(ROOT / "deploy" / "template.yaml"))
    assert not errors
    return parsed


def test_each_layer_waits_longer_than_the_one_it_calls() -> None:
    spec = yaml.safe_load((ROOT / "specs" / "backend.yaml").read_text())
    integration_s = spec["paths"]["/query"]["post"]["x-amazon-apigateway-integration"]["timeoutInMillis"] / 1000
    function = _template()["Resources"]["QueryFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    bedrock_s = float(variables["BEDROCK_CONNECT_TIMEOUT_S"]) + float(variables["BEDROCK_READ_TIMEOUT_S"])

    assert integration_s == 29  # API Gateway's default maximum for a buffered answer
    assert bedrock_s < function["Timeout"] < integration_s
    assert integration_s < ProxySettings().backend_timeout_s < RestSettings().deadline_s < ClientSettings().timeout_s


def test_the_local_cloud_splits_the_budget_like_the_template() -> None:
    function = _template()["Resources"]["QueryFunction"]["Properties"]
    variables = function["Environment"]["Variables"]
    cloud = CloudSettings()
    local = function_config(cloud, "http://127.0.0.1:1")
    aws = FunctionConfig.from_environ({name: value for name, value in variables.items() if isinstance(value, str)})

    assert cloud.lambda_timeout_s == function["Timeout"]
    assert (local.connect_timeout_s, local.read_timeout_s) == (aws.connect_timeout_s, aws.read_timeout_s)
    assert BEDROCK_CONNECT_TIMEOUT_S + local.read_timeout_s < cloud.lambda_timeout_s


def test_a_stream_has_its_own_longer_budget_in_the_same_order() -> None:
    spec = yaml.safe_load((ROOT / "specs" / "backend.yaml").read_text())
    integration = spec["paths"]["/query/stream"]["post"]["x-amazon-apigateway-integration"]
    function = _template()["Resources"]["QueryStreamFunction"]["Properties"]

    assert integration["responseTransferMode"] == "STREAM"
    assert CloudSettings().stream_lambda_timeout_s == function["Timeout"] < integration["timeoutInMillis"] / 1000
    assert function["Timeout"] < ProxySettings().stream_timeout_s < RestSettings().stream_deadline_s
