"""The models the deployment serves, as the REST tier asks the gRPC proxy for them (ListModels): one function
that every API shape (`GET /models`, OpenAI's `/v1/models`) converts from."""

from __future__ import annotations

from dataclasses import dataclass

from generated.llm.v1 import llm_pb2
from lambdallm.rest.calls import opened
from lambdallm.rest.llm import ProxyClient
from lambdallm.rest.problems import map_grpc_errors


@dataclass(frozen=True)
class ServedModel:
    """One model the backend serves (llm.proto ModelInfo)."""

    id: str
    owned_by: str
    instruct: bool


async def list_models(proxy: ProxyClient, request_id: str, deadline_s: float) -> list[ServedModel]:
    """ListModels on the proxy: the served models, the default first; a failed call raises the ProblemException
    of the REST tier's one table (map_grpc_errors)."""
    call = opened(
        proxy.stub.ListModels(llm_pb2.ListModelsRequest(), timeout=deadline_s, metadata=proxy.call_metadata(request_id))
    )
    with map_grpc_errors():
        reply = await call
    return [ServedModel(model.id, model.owned_by, model.instruct) for model in reply.models]
