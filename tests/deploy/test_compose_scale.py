"""compose.scale.yaml (issue 24): two REST replicas behind HAProxy, two proxies under one alias that the REST tier
balances over, one Redis for the keys' counters; its HAProxy configuration is the one tests/e2e/test_scale_out.py
runs, and HAProxy itself accepts it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.fakes.servers import debian_binary

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.scale.yaml").read_text())
HAPROXY_CFG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"


def test_two_of_each_tier_one_redis_and_haproxy_the_only_published_port() -> None:
    services = COMPOSE["services"]
    assert set(services) == {"local-cloud", "proxy-1", "proxy-2", "redis", "rest-1", "rest-2", "haproxy"}
    assert [name for name, service in services.items() if "ports" in service] == ["haproxy"]
    for proxy in ("proxy-1", "proxy-2"):
        assert services[proxy]["networks"]["default"]["aliases"] == ["proxies"]
    for rest in ("rest-1", "rest-2"):
        environment = services[rest]["environment"]
        assert environment["LAMBDALLM_REST_GRPC_TARGET"] == "dns:///proxies:50051"
        assert environment["LAMBDALLM_REST_REDIS_URL"] == "redis://redis:6379/0"
        assert environment["LAMBDALLM_REST_KEYS_FILE"] == "/run/secrets/lambdallm-keys"
        assert {"lambdallm-keys", "lambdallm-pepper"} <= set(services[rest]["secrets"])


def test_haproxy_balances_both_replicas_with_the_file_the_scale_out_test_runs() -> None:
    text = HAPROXY_CFG.read_text()
    mounted = COMPOSE["services"]["haproxy"]["volumes"]
    assert mounted == ["./deploy/haproxy/haproxy.cfg:/etc/haproxy/lambdallm.cfg:ro"]
    assert "server rest-1 rest-1:8080" in text and "server rest-2 rest-2:8080" in text
    assert "retry-on conn-failure empty-response" in text
    checked = subprocess.run(
        [debian_binary("haproxy", "haproxy"), "-c", "-f", str(HAPROXY_CFG)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
