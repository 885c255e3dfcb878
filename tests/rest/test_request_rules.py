"""The REST tier refuses a request the spec's rules refuse (exactly one of prompt and messages, system only beside
messages) itself, as Connexion validates the body: a problem+json naming the fields, with no proxy to ask."""

from __future__ import annotations

import httpx
import pytest

from tests.contract.test_request_rules import REFUSED
from tests.fakes.stack import AUTHORIZATION, running_rest

NO_PROXY = "127.0.0.1:9"  # discard: nothing answers gRPC there, so a 400 can only be the REST tier's own


@pytest.mark.parametrize(("body", "detail"), REFUSED)
async def test_a_request_against_the_specs_rules_is_400_from_the_rest_tier_itself(body, detail) -> None:
    async with running_rest(NO_PROXY) as url, httpx.AsyncClient(base_url=url, headers=AUTHORIZATION) as http:
        response = await http.post("/query", json=body)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == detail
