"""The SAM template: cfn-lint finds nothing, and it deploys the function the specs and the code expect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    parsed, errors = decode(str(TEMPLATE))
    assert not errors
    return parsed


def test_cfn_lint_finds_nothing() -> None:
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_the_function_is_the_one_the_backend_spec_integrates(template: dict[str, Any]) -> None:
    function = template["Resources"]["QueryFunction"]["Properties"]
    assert "${QueryFunction.Arn}" in (ROOT / "specs" / "backend.yaml").read_text()
    module, _, name = function["Handler"].rpartition(".")
    assert (TEMPLATE.parent / function["CodeUri"] / (module.replace(".", "/") + ".py")).is_file()
    assert name == "lambda_handler"
    assert function["Runtime"] == "python3.13"
    assert function["Timeout"] >= 30


def test_the_api_is_specs_backend_yaml(template: dict[str, Any]) -> None:
    body = template["Resources"]["BackendApi"]["Properties"]["DefinitionBody"]["Fn::Transform"]
    assert body["Name"] == "AWS::Include"
    assert (TEMPLATE.parent / body["Parameters"]["Location"]).resolve() == ROOT / "specs" / "backend.yaml"


def test_the_function_may_invoke_only_its_model(template: dict[str, Any]) -> None:
    (statement,) = template["Resources"]["QueryFunction"]["Properties"]["Policies"][0]["Statement"]
    assert sorted(statement["Action"]) == ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"]
    assert statement["Resource"]["Fn::Sub"].endswith(":foundation-model/${ModelId}")
    permission = template["Resources"]["QueryFunctionApiPermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
