"""The local cloud's /metrics (on the Bedrock endpoint), scraped over HTTP after real requests."""

from __future__ import annotations

import json
import threading
import time

import httpx

from lambdallm.local_cloud.server import LocalCloud, running_local_cloud
from tests.local_cloud.conftest import MODEL_ID, GatedEngine, bedrock_client, settings
from tests.scrape import Samples, moved, scrape, value

MODEL = {"model": MODEL_ID}


def metrics_url(cloud: LocalCloud) -> str:
    return f"{cloud.bedrock_url}/metrics"


def test_both_servers_count_requests_by_route_template_and_the_tokens_generated(instant_cloud: LocalCloud) -> None:
    before = scrape(metrics_url(instant_cloud))
    client = bedrock_client(instant_cloud)
    client.invoke_model(modelId=MODEL_ID, body=json.dumps({"inputText": "red green blue"}))
    client.converse(modelId=MODEL_ID, messages=[{"role": "user", "content": [{"text": "one two"}]}])
    gateway = httpx.post(f"{instant_cloud.apigw_url}/query", json={"prompt": "a b c d", "max_tokens": 2}, timeout=30)
    httpx.get(f"{instant_cloud.apigw_url}/no/such/thing", timeout=30)
    after = scrape(metrics_url(instant_cloud))

    def grew(name: str, **labels: str) -> float:
        return moved(before, after, name, **labels)

    assert gateway.status_code == 200
    assert grew("lambdallm_bedrock_requests_total", route="/model/{model_id}/invoke", method="POST", status="200") == 2
    assert (
        grew("lambdallm_bedrock_requests_total", route="/model/{model_id}/converse", method="POST", status="200") == 1
    )
    assert (
        grew("lambdallm_bedrock_request_duration_seconds_count", route="/model/{model_id}/invoke", method="POST") == 2
    )
    assert grew("lambdallm_apigateway_requests_total", route="/query", method="POST", status="200") == 1
    assert grew("lambdallm_apigateway_requests_total", route="unmatched", method="GET", status="404") == 1
    assert grew("lambdallm_bedrock_tokens_total", type="output") >= 3 + 2
    assert grew("lambdallm_bedrock_tokens_total", type="input") >= 3 + 4
    assert not any("no/such" in str(key) for key in after)


def test_the_model_queue_and_busy_slots_are_read_from_the_scheduler() -> None:
    engine = GatedEngine(slots=2)
    with running_local_cloud(settings(queue_size=2), engine=engine) as cloud:
        try:
            url = metrics_url(cloud)
            idle = scrape(url)
            client = bedrock_client(cloud)
            body = json.dumps({"inputText": "hello there"})
            calls = [
                threading.Thread(target=client.invoke_model, kwargs={"modelId": MODEL_ID, "body": body}) for _ in "abc"
            ]
            for call in calls:
                call.start()
            deadline = time.monotonic() + 10
            while value(scrape(url), "lambdallm_bedrock_queue_depth", **MODEL) < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            busy = scrape(url)
        finally:
            engine.gate.set()
        for call in calls:
            call.join(30)
        done = scrape(url)

    def gauges(scraped: Samples) -> tuple[float, float, float]:
        return tuple(
            value(scraped, f"lambdallm_bedrock_{name}", **MODEL) for name in ("slots", "busy_slots", "queue_depth")
        )

    assert gauges(idle) == (2, 0, 0)
    assert gauges(busy) == (2, 2, 1)
    assert gauges(done) == (2, 0, 0)


def test_the_model_forward_passes_and_their_time_are_counted_by_kind(model_cloud: LocalCloud) -> None:
    before = scrape(metrics_url(model_cloud))
    answer = bedrock_client(model_cloud).invoke_model(
        # Greedy, and a prompt whose answer is long, so 5 tokens cut it (a sampled colour ended within them in CI).
        modelId=MODEL_ID,
        body=json.dumps(
            {
                "inputText": "Write a long story about a lighthouse keeper.",
                "textGenerationConfig": {"maxTokenCount": 5, "temperature": 0},
            }
        ),
    )
    result = json.loads(answer["body"].read())["results"][0]
    after = scrape(metrics_url(model_cloud))

    def grew(name: str, kind: str) -> float:
        return moved(before, after, name, kind=kind, **MODEL)

    assert result["completionReason"] == "LENGTH"
    assert grew("lambdallm_bedrock_decode_steps_total", "generate") == result["tokenCount"] - 1
    assert grew("lambdallm_bedrock_decode_steps_total", "prompt") >= 1
    assert grew("lambdallm_bedrock_decode_seconds_total", "generate") > 0
    assert grew("lambdallm_bedrock_decode_seconds_total", "prompt") > 0
