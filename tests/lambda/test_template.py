"""The SAM template: cfn-lint finds nothing, and it deploys the function the specs and the code expect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

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


def test_the_api_is_specs_backend_yaml(template: dict[str, Any]) -> None:
    body = template["Resources"]["BackendApi"]["Properties"]["DefinitionBody"]["Fn::Transform"]
    assert body["Name"] == "AWS::Include"
    assert (TEMPLATE.parent / body["Parameters"]["Location"]).resolve() == ROOT / "specs" / "backend.yaml"


def bedrock_actions_called() -> set[str]:
    """The IAM actions of the bedrock-runtime operations the function's code calls (invoke_model -> InvokeModel)."""
    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    source = "".join(path.read_text() for path in (ROOT / "lambda" / "llm_lambda").glob("*.py"))
    return {
        f"bedrock:{name}" for name in model.operation_names if re.search(rf"\.{re.escape(xform_name(name))}\(", source)
    }


# What each function's handler calls: the whole answer (InvokeModel, and Converse, which IAM authorises as
# InvokeModel) and the streamed one (InvokeModelWithResponseStream, and ConverseStream likewise); the ForEach
# loop that grants it on each allowlisted model.
GRANTS = {
    "QueryFunction": ("Fn::ForEach::ModelGrants", {"bedrock:InvokeModel"}),
    "QueryStreamFunction": ("Fn::ForEach::StreamModelGrants", {"bedrock:InvokeModelWithResponseStream"}),
}
MODEL_ARN = "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${Model}"
PROFILE_ARN = "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/${Model}"


def test_each_function_may_do_exactly_what_its_code_does_and_only_on_the_allowlist(template: dict[str, Any]) -> None:
    called = {action.replace("ConverseStream", "InvokeModelWithResponseStream") for action in bedrock_actions_called()}
    assert {action.replace("bedrock:Converse", "bedrock:InvokeModel") for action in called} == set().union(
        *(actions for _, actions in GRANTS.values())
    )
    for name, (loop, actions) in GRANTS.items():
        assert "Policies" not in template["Resources"][name]["Properties"]  # no grant but the loop's
        variable, over, body = template["Resources"][loop]
        assert (variable, over) == ("Model", {"Ref": "ModelIds"})
        ((_, policy),) = body.items()
        assert policy["Properties"]["Roles"] == [{"Ref": f"{name}Role"}]
        direct, behind = policy["Properties"]["PolicyDocument"]["Statement"]
        assert set(direct["Action"]) == set(behind["Action"]) == actions
        # The model of that id and the inference profile of that id, in the function's region and account ...
        assert [resource["Fn::Sub"] for resource in direct["Resource"]] == [MODEL_ARN, PROFILE_ARN]
        # ... and whatever model that profile routes to, only when called through it.
        assert behind["Resource"]["Fn::Sub"] == "arn:${AWS::Partition}:bedrock:*::foundation-model/*"
        assert behind["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": {"Fn::Sub": PROFILE_ARN}}}
        permission = template["Resources"][f"{name}ApiPermission"]["Properties"]
        assert permission["Principal"] == "apigateway.amazonaws.com"


def test_the_function_reads_the_allowlist_the_template_grants(template: dict[str, Any]) -> None:
    for name in GRANTS:
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["BEDROCK_MODEL_ID"] == {"Fn::Select": [0, {"Ref": "ModelIds"}]}
        assert variables["BEDROCK_MODEL_IDS"] == {"Fn::Join": [",", {"Ref": "ModelIds"}]}
        assert variables["BEDROCK_BASE_MODEL_IDS"] == {"Ref": "BaseModelIds"}
    assert template["Parameters"]["ModelIds"]["Default"] == "amazon.titan-text-premier-v1:0"


def test_the_streaming_function_is_the_one_the_stream_route_integrates(template: dict[str, Any]) -> None:
    function = template["Resources"]["QueryStreamFunction"]["Properties"]
    assert "${QueryStreamFunction.Arn}/response-streaming-invocations" in (ROOT / "specs" / "backend.yaml").read_text()
    assert function["Handler"] == "llm_lambda.handler.stream_handler"
    wrapper = function["Environment"]["Variables"]["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper.startswith("/var/task/")
    assert (TEMPLATE.parent / function["CodeUri"] / wrapper.removeprefix("/var/task/")).is_file()


@pytest.mark.parametrize("name", GRANTS)
def test_spend_is_bounded_by_reserved_concurrency_and_stage_throttling(template: dict[str, Any], name: str) -> None:
    function = template["Resources"][name]["Properties"]
    assert function["ReservedConcurrentExecutions"] == {"Ref": "MaxConcurrency"}
    (method,) = template["Resources"]["BackendApi"]["Properties"]["MethodSettings"]
    assert (method["ResourcePath"], method["HttpMethod"]) == ("/*", "*")
    assert method["ThrottlingRateLimit"] == {"Ref": "ThrottleRate"}
    assert method["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurst"}
    assert all(
        template["Parameters"][name]["Default"] >= 1 for name in ("MaxConcurrency", "ThrottleRate", "ThrottleBurst")
    )


def test_every_backend_method_requires_iam_and_the_invoke_policy_covers_exactly_them(template: dict[str, Any]) -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "specs" / "backend.yaml").read_text())
    (scheme,) = spec["components"]["securitySchemes"].values()
    assert scheme["x-amazon-apigateway-authtype"] == "awsSigv4"
    methods = set()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"sigv4": []}], f"{method} {path} is open"
            methods.add(f"/${{StageName}}/{method.upper()}{path}")
    (statement,) = template["Resources"]["BackendInvokePolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Allow", ["execute-api:Invoke"])
    prefix = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${BackendApi}"
    resources = {resource["Fn::Sub"] for resource in statement["Resource"]}
    assert {resource.removeprefix(prefix) for resource in resources} == methods


def test_the_documented_ceiling_on_bedrock_calls_is_the_templates(template: dict[str, Any]) -> None:
    default = template["Parameters"]["MaxConcurrency"]["Default"]
    resources = [r for r in template["Resources"].values() if isinstance(r, dict)]  # not the Fn::ForEach loops
    functions = [r["Properties"] for r in resources if r["Type"] == "AWS::Serverless::Function"]
    reserved = [f["ReservedConcurrentExecutions"] for f in functions]
    total = sum(default if value == {"Ref": "MaxConcurrency"} else value for value in reserved)
    documented = " ".join((TEMPLATE.parent / "README.md").read_text().split())
    assert f"at most {total} Bedrock calls at once" in documented
