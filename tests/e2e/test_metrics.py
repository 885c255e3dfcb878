"""Every tier's /metrics, scraped over HTTP from the real processes after real requests through the chain."""

from __future__ import annotations

import httpx
import pytest

from lambdallm.stack import Stack
from tests.scrape import moved, scrape

pytestmark = [pytest.mark.e2e]

GENERATE = "llm.v1.LlmService/GenerateText"
STREAM = "llm.v1.LlmService/GenerateTextStream"


def test_each_tier_counts_the_requests_and_tokens_that_crossed_it(instant_chain: Stack) -> None:
    urls = instant_chain.metrics_urls
    assert instant_chain.ports.proxy_metrics > 0  # announced by the proxy, not the configured 9464
    before = {tier: scrape(url) for tier, url in urls.items()}
    body = {"prompt": "one two three four", "max_tokens": 3}
    with httpx.Client(base_url=instant_chain.rest_url, timeout=30, headers=instant_chain.auth_headers) as client:
        answers = [client.post("/query", json=body) for _ in range(2)]
        streamed = client.post("/query", json=body, headers={"Accept": "text/event-stream"})
        refused = client.post("/query", json={"prompt": ""})
    after = {tier: scrape(url) for tier, url in urls.items()}

    def grew(tier: str, name: str, **labels: str) -> float:
        return moved(before[tier], after[tier], name, **labels)

    assert [a.status_code for a in answers] == [200, 200]
    assert (streamed.status_code, refused.status_code) == (200, 400)
    output = sum(a.json()["output_tokens"] for a in answers) + 3
    assert grew("rest", "lambdallm_rest_requests_total", route="/query", method="POST", status="200") == 3
    assert grew("rest", "lambdallm_rest_requests_total", route="/query", method="POST", status="400") == 1
    assert grew("rest", "lambdallm_rest_tokens_total", type="output") == output
    assert grew("proxy", "lambdallm_proxy_rpcs_total", method=GENERATE, code="OK") == 2
    assert grew("proxy", "lambdallm_proxy_rpcs_total", method=STREAM, code="OK") == 1
    assert grew("proxy", "lambdallm_proxy_rpc_duration_seconds_count", method=GENERATE) == 2
    assert grew("proxy", "lambdallm_proxy_tokens_total", type="output") == output
    # The proxy takes whole answers from the backend's stream too.
    assert (
        grew("local-cloud", "lambdallm_apigateway_requests_total", route="/query/stream", method="POST", status="200")
        == 3
    )
    assert grew("local-cloud", "lambdallm_bedrock_tokens_total", type="output") == output
    operations = ("invoke", "invoke-with-response-stream", "converse", "converse-stream")
    bedrock_calls = sum(
        grew(
            "local-cloud",
            "lambdallm_bedrock_requests_total",
            route=f"/model/{{model_id}}/{op}",
            method="POST",
            status="200",
        )
        for op in operations
    )
    assert bedrock_calls == 3
