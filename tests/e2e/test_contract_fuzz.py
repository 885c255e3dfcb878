"""Schemathesis fuzzes the live contracts: the REST tier over the whole chain, and the backend's API Gateway."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Schemathesis' own defaults but for 413: a body over the tier's size limit is refused before its schema is read.
PLAIN_CONFIG = Path(__file__).with_name("schemathesis-plain.toml")
# What OpenAPI 3.0 cannot state, so a run without the hooks may send it as valid: turns alternating from user to
# user, all turns with `system` within the text budget, the tool rules (each call answered by a tool turn right
# after it, names and ids unique, tool_choice naming one of the tools, a parameters schema of an object, tools for
# tool turns), and which model serves tools and structured output (the fuzzed echo engine serves neither). The
# tiers refuse it with these words (llm_wire.request and llm_wire.tools; the local Bedrock's for the model).
CONVERSATION_RULES = re.compile(
    r"turns alternate|the last turn must be the user's|all turns and system together|tool only right after"
    r"|have no tool turn|must be the id of a call|must be unique|is not one of the tools|a JSON Schema of an object"
    r"|required when the conversation holds tool calls|doesn't support (tool use|structured output)"
    r"|a JSON object as text|must not be blank"
)
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "positive_data_acceptance",
        "unsupported_method",
    ]
)


def _schemathesis(
    spec: Path, url: str, tmp_path: Path, *options: str, checks: str = CHECKS
) -> subprocess.CompletedProcess[str]:
    command = [
        Path(sys.executable).with_name("schemathesis").as_posix(), "--config-file", str(CONFIG),
        "run", str(spec), "--url", url, *options,
        "--checks", checks, "--max-examples", "100", "--seed", "20261125",
        "--request-timeout", "20", "--output-sanitize", "false", "--no-color",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    hooks = {"SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=os.environ | hooks)


def test_the_rest_contract_holds_over_the_whole_chain(instant_chain: Stack, tmp_path: Path) -> None:
    # Authenticated with the chain's key; ignored_auth also sends each operation that needs a key without one
    # and with a wrong one, and fails unless it is refused (401).
    key = f"Authorization: Bearer {instant_chain.api_key}"
    url = instant_chain.rest_url
    result = _schemathesis(SPECS / "openapi.yaml", url, tmp_path, "--header", key, checks=f"{CHECKS},ignored_auth")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_openai_contract_holds_over_the_whole_chain(instant_chain: Stack, tmp_path: Path) -> None:
    # /v1 (specs/openai.yaml, whose servers URL carries the /v1) with the same checks and keys as /query.
    key = f"Authorization: Bearer {instant_chain.api_key}"
    url = f"{instant_chain.rest_url}/v1"
    result = _schemathesis(SPECS / "openai.yaml", url, tmp_path, "--header", key, checks=f"{CHECKS},ignored_auth")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_backend_contract_holds_at_the_local_api_gateway(instant_chain: Stack, tmp_path: Path) -> None:
    # This chain's gateway checks no signatures (IAM is tested in test_iam.py and tests/local_cloud/test_sigv4.py):
    # an Authorization header stands in for the signature the spec requires, so the fuzz is of the contract.
    unsigned = "Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/execute-api/aws4_request"
    url = f"http://127.0.0.1:{instant_chain.ports.apigw}"
    # No stateful phase: the one link it infers here (a tool call's id from /query's answer into a stream's turns)
    # can't be followed, since the fuzzed echo engine calls no tools; its 844 scenarios covered nothing and took
    # seven of the test's eight minutes (schemathesis 4.32, 3 December). Tools are tested on the real model.
    phases = "examples,fuzzing"
    result = _schemathesis(SPECS / "backend.yaml", url, tmp_path, "--header", unsigned, "--phases", phases)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_without_the_hooks_only_the_conversation_rules_the_spec_cannot_state_fail(
    instant_chain: Stack, tmp_path: Path
) -> None:
    # As anyone else's contract test would run it: no hooks, every check and phase (coverage included), seed 777.
    env = {name: value for name, value in os.environ.items() if name != "SCHEMATHESIS_HOOKS"}
    command = [
        Path(sys.executable).with_name("schemathesis").as_posix(), "--config-file", str(PLAIN_CONFIG),
        "run", str(SPECS / "openapi.yaml"), "--url", instant_chain.rest_url,
        "--header", f"Authorization: Bearer {instant_chain.api_key}",
        "--seed", "777", "--max-examples", "100", "--continue-on-failure", "--request-timeout", "20",
        "--output-sanitize", "false", "--no-color", "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env)

    assert result.returncode in (0, 1), result.stdout[-6000:] + result.stderr[-2000:]
    failures = [f.text or "" for f in ElementTree.parse(next(tmp_path.glob("*.xml"))).iter("failure")]
    for failure in failures:
        assert "ST202" in failure and all(code == "ST202" for code in re.findall(r"- (ST\d+) ", failure)), failure
        details = re.findall(r'"detail": "([^"]*)"', failure)
        assert details and all(CONVERSATION_RULES.search(detail) for detail in details), details
