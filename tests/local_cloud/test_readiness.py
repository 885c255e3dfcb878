"""While the model loads, the Bedrock endpoint says so and the API Gateway does not answer yet."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from lambdallm.local_cloud import server
from lambdallm.local_cloud.engines import Engine, InstantEngine
from lambdallm.settings import CloudSettings


async def test_the_gateway_opens_only_once_the_model_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    loading = threading.Event()

    def slow_load(_settings: CloudSettings, _model_file: object) -> Engine:
        loading.wait(timeout=30)
        return InstantEngine()

    monkeypatch.setattr(server, "create_engine", slow_load)
    config = CloudSettings(host="127.0.0.1", apigw_port=0, bedrock_port=0)
    bound: asyncio.Queue[server.LocalCloud] = asyncio.Queue()
    opened = asyncio.Event()
    release = asyncio.Event()

    async def run_cloud() -> None:
        async with server.start_local_cloud(config, on_bound=bound.put_nowait):
            opened.set()
            await release.wait()

    cloud = asyncio.create_task(run_cloud())
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            ports = await asyncio.wait_for(bound.get(), 30)
            ping = f"{ports.bedrock_url}/ping"
            query = f"{ports.apigw_url}/query"
            loading_answer = await http.get(ping)
            assert loading_answer.status_code == 503
            with pytest.raises(httpx.ConnectError):
                await http.post(query, json={"prompt": "Hi", "max_tokens": 1})

            loading.set()
            await asyncio.wait_for(opened.wait(), 30)

            assert (await http.get(ping)).status_code == 200
            answer = await http.post(query, json={"prompt": "Hi there", "max_tokens": 1})
            assert answer.status_code == 200
            assert answer.json()["text"] == "Hi"
    finally:
        loading.set()
        release.set()
        await cloud
