"""`python -m lambdallm local-cloud` as a real process: it listens where told, serves, and stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from lambdallm.tier import ANNOUNCE_FILE, wait_for_announcement


def wait_ready(url: str, process: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the local cloud exited"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)  # polling interval, not a wait for a fixed time
    raise AssertionError(f"{url} never became ready")


@pytest.mark.e2e
def test_the_local_cloud_process_serves_and_stops_cleanly(tmp_path: Path) -> None:
    announced = tmp_path / "ports.json"
    env = os.environ | {
        "LAMBDALLM_LOCAL_CLOUD_APIGW_PORT": "0",
        "LAMBDALLM_LOCAL_CLOUD_BEDROCK_PORT": "0",
        "LAMBDALLM_LOCAL_CLOUD_ENGINE": "instant",
        ANNOUNCE_FILE: str(announced),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "lambdallm", "local-cloud"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        ports = wait_for_announcement(announced, process, 60)
        apigw, bedrock = ports["apigw"], ports["bedrock"]
        assert 0 not in (apigw, bedrock)
        wait_ready(f"http://127.0.0.1:{bedrock}/ping", process)
        request = urllib.request.Request(
            f"http://127.0.0.1:{apigw}/query",
            data=json.dumps({"prompt": "hello local cloud", "max_tokens": 8}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
        assert (body["text"], body["output_tokens"], body["finish_reason"]) == ("hello local cloud", 3, "stop")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0
        messages = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
        listening = {m["msg"]: m["port"] for m in messages if m["msg"].endswith("listening")}
        assert listening == {"API Gateway listening": apigw, "Bedrock Runtime listening": bedrock}
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_listening_on_every_interface_the_lambda_dials_bedrock_on_loopback() -> None:
    from lambdallm.local_cloud.server import LocalCloud
    from lambdallm.settings import CloudSettings

    cloud = LocalCloud(CloudSettings(host="0.0.0.0"), apigw_port=3000, bedrock_port=4000)

    assert cloud.bedrock_url == "http://127.0.0.1:4000"
    assert cloud.apigw_url == "http://127.0.0.1:3000"
