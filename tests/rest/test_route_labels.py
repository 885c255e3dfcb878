"""The REST tier's route label is the path template of the operation Connexion routed a request to, looked up by
the operation id Connexion gives (`controller.operationId`), not only by a path that matches a fixed one."""

from pathlib import Path
from typing import Any

import connexion
import httpx
from connexion.middleware import MiddlewarePosition
from prometheus_client import generate_latest

from lambdallm.metrics import Measured
from lambdallm.rest.app import SnakeCaseResolver
from lambdallm.rest.edge import Edge, keyed_operations
from lambdallm.rest.metrics import RestMetrics, RouteLabels
from tests.scrape import samples

TEMPLATED = """
openapi: 3.0.3
info: {title: templated, version: "1"}
paths:
  /models/{model_id}:
    get:
      operationId: getModel
      x-openapi-router-controller: tests.rest.test_route_labels
      parameters:
        - {name: model_id, in: path, required: true, schema: {type: string}}
      responses:
        "200": {description: the model}
"""


async def get_model(model_id: str) -> dict[str, Any]:
    """The one operation of the templated spec."""
    return {"id": model_id}


async def test_a_templated_path_is_labelled_by_the_operation_connexion_routed_to(tmp_path: Path):
    spec = tmp_path / "templated.yaml"
    spec.write_text(TEMPLATED)
    metrics = RestMetrics(1)
    app = connexion.AsyncApp(__name__)
    app.add_api(spec, resolver=SnakeCaseResolver())
    # As the REST tier wires them (lambdallm/rest/app.py): Measured, then Edge inside it.
    position = MiddlewarePosition.BEFORE_EXCEPTION
    app.add_middleware(Measured, position=position, metrics=metrics.http, route_of=RouteLabels(spec))
    app.add_middleware(Edge, position=position, metrics=metrics)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/models/abc")).status_code == 200
        assert (await client.get("/nothing/here")).status_code == 404

    scraped = samples(generate_latest(metrics.registry).decode())
    routes = {dict(labels)["route"] for (name, labels) in scraped if name == "lambdallm_rest_requests_total"}
    assert routes == {"/models/{model_id}", "unmatched"}


KEYED = """
openapi: 3.0.3
info: {title: keyed, version: "1"}
security: [{api_key: []}]
paths:
  /query:
    post:
      operationId: generateText
      x-openapi-router-controller: handlers.query
  /models/{model_id}:
    parameters:
      - {name: model_id, in: path, required: true, schema: {type: string}}
    get:
      operationId: getModel
    delete:
      description: an operation without operationId, which no router reaches
  /health:
    get:
      operationId: getHealth
      x-openapi-router-controller: handlers.health
      security: []
"""


def test_keyed_operations_are_those_whose_security_or_the_specs_asks_for_a_key(tmp_path: Path):
    spec = tmp_path / "keyed.yaml"
    spec.write_text(KEYED)
    assert keyed_operations(spec) == {"handlers.query.generateText", "getModel"}
    spec.write_text(KEYED.replace("security: [{api_key: []}]\n", ""))
    assert keyed_operations(spec) == set()
    spec.write_text(KEYED.replace("security: []", "security: [{api_key: []}]"))
    assert keyed_operations(spec) == {"handlers.query.generateText", "getModel", "handlers.health.getHealth"}


def test_a_route_label_is_the_routed_template_a_fixed_path_or_unmatched(tmp_path: Path):
    spec = tmp_path / "keyed.yaml"
    spec.write_text(KEYED)
    label = RouteLabels(spec)

    def routed(path: str, operation_id: object = None) -> str:
        extensions = {"connexion_routing": {"operation_id": operation_id}} if operation_id else {}
        return label({"path": path, "extensions": extensions})

    assert routed("/models/abc", "getModel") == "/models/{model_id}"
    assert routed("/query", "handlers.query.generateText") == "/query"
    assert routed("/health", "someone.elses") == "/health"
    assert routed("/models/abc", "someone.elses") == "unmatched"
    assert routed("/models/abc", 5) == "unmatched"
    assert routed("/models/{model_id}") == "unmatched"  # a path that spells a template is not routed to it
    assert [routed(path) for path in ("/metrics", "/openapi.json", "/query", "/health")] == [
        "/metrics",
        "/openapi.json",
        "/query",
        "/health",
    ]
    assert [routed(path) for path in ("/ui", "/ui/", "/ui/index.html", "/uix", "/", "/models/abc")] == [
        "/ui",
        "/ui",
        "/ui",
        "unmatched",
        "unmatched",
        "unmatched",
    ]
    assert [routed(path) for path in ("/playground", "/playground/sse.js", "/playgroundx")] == [
        "/playground",
        "/playground",
        "unmatched",
    ]
    assert label({"path": "/metrics"}) == "/metrics"  # a scope without extensions (Edge adds them later)
