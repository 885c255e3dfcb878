"""The specs load, compile and agree with each other; the generated code imports.

That generated/ is current is checked by `tox -e codegen-check`, which `make test` runs first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"


@pytest.mark.parametrize("name", ["openapi.yaml", "backend.yaml", "openai.yaml"])
def test_openapi_documents_are_valid_3_0(name: str) -> None:
    spec, _ = read_from_filename(str(SPECS / name))
    assert str(spec["openapi"]).startswith("3.0.")
    validate(spec)


def test_proto_compiles_with_protoc(tmp_path: Path) -> None:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{SPECS}", f"-I{include}", f"--python_out={tmp_path}", "llm.proto"])
    assert code == 0
    assert (tmp_path / "llm_pb2.py").is_file()


def test_generated_modules_import_as_packages() -> None:
    from generated.llm.v1 import llm_pb2, llm_pb2_grpc
    from generated.llm_client.api.llm import generate_text
    from generated.llm_client.models import GenerateRequest

    assert hasattr(llm_pb2_grpc, "LlmServiceStub")
    assert llm_pb2.DESCRIPTOR.package == "llm.v1"
    assert GenerateRequest(prompt="Hi", max_tokens=5).to_dict() == {"prompt": "Hi", "max_tokens": 5}
    assert callable(generate_text.asyncio_detailed)


def _schema(spec: str, name: str) -> dict[str, object]:
    document = yaml.safe_load((SPECS / spec).read_text())
    return document["components"]["schemas"][name]


def _bounds(properties: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    return {name: {k: v for k, v in prop.items() if k != "description"} for name, prop in properties.items()}


def test_every_boundary_carries_the_same_fields() -> None:
    """A field in one contract but not the others would be silently dropped at a boundary."""
    from generated.llm.v1 import llm_pb2

    rest_in = _schema("openapi.yaml", "GenerateRequest")
    backend_in = _schema("backend.yaml", "BackendRequest")
    assert _bounds(rest_in["properties"]) == _bounds(backend_in["properties"])
    assert rest_in["required"] == backend_in["required"]
    assert set(rest_in["properties"]) == set(llm_pb2.LlmQueryRequest.DESCRIPTOR.fields_by_name)

    rest_out = _schema("openapi.yaml", "GenerateResponse")
    backend_out = _schema("backend.yaml", "BackendResponse")
    # `timing` is each hop's own (Server-Timing: headers, gRPC trailing metadata, the stream's done event).
    answered = set(rest_out["properties"]) - {"timing"}
    assert answered == set(backend_out["properties"])
    assert answered == set(llm_pb2.LlmQueryResponse.DESCRIPTOR.fields_by_name)
    reasons = _schema("openapi.yaml", "FinishReason")["enum"]
    assert backend_out["properties"]["finish_reason"]["enum"] == reasons
