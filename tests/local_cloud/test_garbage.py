"""The local cloud frees each request's objects as it ends, by reference counting: none is left in a cycle for the
garbage collector (lambdallm/tier.py collects the young generation rarely, which is safe because of this). Whole
and streamed answers through the API Gateway, the Lambda (its boto3 client) and the local Bedrock."""

from __future__ import annotations

import time

import httpx

from lambdallm.local_cloud.server import LocalCloud
from tests.garbage import cyclic_garbage, of_types

QUERY = {"prompt": "alpha beta gamma", "max_tokens": 3}
# A request's own objects: the HTTP cycle and the connection of each server (the API Gateway's, the Bedrock's),
# and the response parsers boto3 makes for each call in the Lambda.
PER_REQUEST = {
    "RequestResponseCycle",
    "CycleTransport",
    "ProblemHttpProtocol",
    "BedrockHttpProtocol",
    "RestJSONParser",
    "EventStreamJSONParser",
}


def test_whole_and_streamed_answers_leave_no_cycles(instant_cloud: LocalCloud) -> None:
    with cyclic_garbage() as left:
        with httpx.Client(base_url=instant_cloud.apigw_url, timeout=30) as http:
            for _ in range(10):
                assert http.post("/query", json=QUERY).status_code == 200
                streamed = http.post("/query/stream", json=QUERY)
                assert streamed.status_code == 200 and streamed.content
        time.sleep(0.2)  # the servers see the connection close

    assert of_types(left, PER_REQUEST) == {}, left.most_common(20)
