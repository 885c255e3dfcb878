"""Model choice at the REST tier, over real HTTP through a real proxy to the fake backend: `model` and
`continuation` on /query reach the backend, an unknown model is a 404 naming the served ids, and GET /models is
the proxy's ListModels."""

import httpx
import pytest

from tests.fakes.backend import Reply, problem
from tests.rest.test_query import VALID, assert_problem

UNKNOWN = "model: 'gpt-4' is not served here (served: fake-model, fake-base)"


async def test_model_and_continuation_reach_the_backend(http, fake):
    response = await http.post("/query", json=VALID | {"model": "fake-base", "continuation": True})
    assert response.status_code == 200, response.text
    assert fake.requests[-1][1] == VALID | {"model": "fake-base", "continuation": True}


async def test_an_unknown_model_is_a_404_naming_the_served_ids(http, fake):
    fake.replies.append(problem(404, UNKNOWN))
    body = assert_problem(await http.post("/query", json=VALID | {"model": "gpt-4"}), 404, UNKNOWN)
    assert body["title"] == "Not Found"


async def test_an_unknown_model_on_a_stream_is_the_same_404_before_it_begins(http, fake):
    fake.replies.append(problem(404, UNKNOWN))
    response = await http.post("/query", json=VALID | {"model": "gpt-4"}, headers={"Accept": "text/event-stream"})
    assert_problem(response, 404, UNKNOWN)


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"model": ""}, "model"), ({"model": "a b"}, "model"), ({"continuation": "yes"}, "continuation")],
)
async def test_a_bad_model_or_continuation_is_a_400_naming_it(http, fake, extra, field):
    assert_problem(await http.post("/query", json=VALID | extra), 400, field)


async def test_get_models_lists_the_backends_models_default_first(http, fake):
    response = await http.get("/models", headers={"X-Request-ID": "rid-list"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "models": [
            {"id": "fake-model", "owned_by": "fake", "instruct": True},
            {"id": "fake-base", "owned_by": "fake", "instruct": False},
        ]
    }
    assert response.headers["x-request-id"] == "rid-list"
    assert (fake.paths[-1], fake.requests[-1][0]["X-Request-ID"]) == ("/models", "rid-list")


async def test_get_models_needs_the_api_key(rest):
    async with httpx.AsyncClient(base_url=rest, timeout=10) as anonymous:
        assert_problem(await anonymous.get("/models"), 401)


@pytest.mark.parametrize(("backend", "status"), [(503, 503), (502, 502), (504, 504)])
async def test_a_failed_model_list_is_the_problem_its_status_maps_to(http, fake, backend, status):
    fake.models = problem(backend, f"backend says {backend}")
    assert_problem(await http.get("/models"), status, f"backend says {backend}")


async def test_a_model_list_that_breaks_the_contract_is_a_502(http, fake):
    fake.models = Reply(body={"models": "none"})
    assert_problem(await http.get("/models"), 502, "models is missing or empty")
