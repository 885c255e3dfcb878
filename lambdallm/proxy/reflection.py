"""gRPC server reflection under both names clients ask for: grpc.reflection.v1 (grpcurl, Postman) and v1alpha.

grpcio-reflection serves only v1alpha; v1 is the same protocol under a new package name (the messages are
identical on the wire), so the one servicer answers both.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1_SERVICE_NAME = "grpc.reflection.v1.ServerReflection"


def enable_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Serve reflection v1alpha and v1 for `service_names` (the v1alpha name is added to them)."""
    names = (*service_names, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    servicer = reflection.aio.ReflectionServicer(names)
    method = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    v1 = grpc.method_handlers_generic_handler(V1_SERVICE_NAME, {"ServerReflectionInfo": method})
    server.add_generic_rpc_handlers((v1,))
