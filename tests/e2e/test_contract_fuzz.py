"""Schemathesis fuzzes the live contracts: the REST tier over the whole chain, and the backend's API Gateway."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lambdallm.stack import Stack

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
CONFIG = Path(__file__).with_name("schemathesis.toml")
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
    result = _schemathesis(SPECS / "backend.yaml", url, tmp_path, "--header", unsigned)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
