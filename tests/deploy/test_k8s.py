"""deploy/k8s/: valid against the Kubernetes API schemas, and wired together (names, labels, ports, config)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lambdallm import settings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
# The oldest Kubernetes the manifests claim (gRPC probes are GA since 1.27), and the newest the validator knows.
VERSIONS = ("1.27", kubernetes_validate.latest_version())


def _documents(name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]


def _applied() -> list[dict[str, Any]]:
    """Every resource that `kubectl apply -k deploy/k8s/` creates."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in _documents(name)]


def _one(kind: str, name: str) -> dict[str, Any]:
    (found,) = [doc for doc in _applied() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_every_manifest_is_valid_against_the_api_schema(name: str, version: str) -> None:
    for document in _documents(name):
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_refuses_a_misspelt_field() -> None:
    deployment = _one("Deployment", "lambdallm-rest")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


def test_kustomization_applies_a_deployment_service_hpa_and_pdb_per_tier_and_the_config() -> None:
    kinds = sorted((doc["kind"], doc["metadata"]["name"]) for doc in _applied())
    expected = [
        (kind, f"lambdallm-{tier}")
        for tier in ("proxy", "rest")
        for kind in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service")
    ]
    policies = [("NetworkPolicy", f"lambdallm-{name}") for name in ("proxy", "rest", "redis")]
    redis = [("Deployment", "lambdallm-redis"), ("Service", "lambdallm-redis"), ("Service", "lambdallm-proxy-pods")]
    assert kinds == sorted(
        [*expected, *policies, *redis, ("ConfigMap", "lambdallm-config"), ("ServiceAccount", "lambdallm-proxy")]
    )


@pytest.mark.parametrize("tier", ["rest", "proxy"])
def test_services_hpas_and_pdbs_reach_their_deployments_pods(tier: str) -> None:
    name = f"lambdallm-{tier}"
    pod = _one("Deployment", name)["spec"]["template"]
    labels, container = pod["metadata"]["labels"], pod["spec"]["containers"][0]
    assert _one("Deployment", name)["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one("Service", name)["spec"]["selector"].items() <= labels.items()
    assert _one("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert _one("HorizontalPodAutoscaler", name)["spec"]["scaleTargetRef"]["name"] == name
    port_names = {port["name"] for port in container["ports"]}
    assert {port["targetPort"] for port in _one("Service", name)["spec"]["ports"]} <= port_names
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_probes_are_health_and_ready_over_http_and_grpc_health_for_the_proxy() -> None:
    rest = _one("Deployment", "lambdallm-rest")["spec"]["template"]["spec"]["containers"][0]
    proxy = _one("Deployment", "lambdallm-proxy")["spec"]["template"]["spec"]["containers"][0]
    assert rest["livenessProbe"]["httpGet"]["path"] == "/health"
    assert rest["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert proxy["readinessProbe"]["grpc"]["port"] == proxy["ports"][0]["containerPort"]


@pytest.mark.parametrize(("tier", "cls"), [("rest", settings.RestSettings), ("proxy", settings.ProxySettings)])
def test_each_tier_reads_its_config_from_the_configmap(tier: str, cls: type, tmp_path: Path) -> None:
    deployment = _one("Deployment", f"lambdallm-{tier}")["spec"]["template"]["spec"]
    env = {var["name"]: var for var in deployment["containers"][0]["env"]}
    path = Path(env[f"LAMBDALLM_{tier.upper()}_CONFIG"]["value"])
    (mount,) = [m for m in deployment["containers"][0]["volumeMounts"] if path.is_relative_to(m["mountPath"])]
    (volume,) = [v for v in deployment["volumes"] if v["name"] == mount["name"]]
    config = _one("ConfigMap", volume["configMap"]["name"])["data"][path.name]
    (tmp_path / path.name).write_text(config)

    loaded = settings.load(cls, tier, tmp_path / path.name, environ={})

    assert loaded.host == "0.0.0.0"  # reachable through the Service, not only from inside the pod


def test_the_rest_tier_reads_its_keys_from_the_secret_the_example_creates() -> None:
    env = _one("Deployment", "lambdallm-rest")["spec"]["template"]["spec"]["containers"][0]["env"]
    (keys,) = [var["valueFrom"]["secretKeyRef"] for var in env if var["name"] == "LAMBDALLM_REST_API_KEYS"]
    (secret,) = [doc for doc in _documents("secret.example.yaml") if doc["metadata"]["name"] == keys["name"]]
    assert keys["key"] in secret["stringData"]
    assert not keys.get("optional")  # without a key the REST tier refuses to start: no pod runs open or crashing


def test_the_proxy_signs_its_backend_requests_as_its_service_account() -> None:
    # specs/backend.yaml requires IAM on every method: an unsigned proxy would get API Gateway's 403.
    proxy_toml = tomllib.loads(_one("ConfigMap", "lambdallm-config")["data"]["proxy.toml"])
    pod = _one("Deployment", "lambdallm-proxy")["spec"]["template"]["spec"]
    assert proxy_toml["backend_auth"] == "iam"
    assert _one("ServiceAccount", pod["serviceAccountName"])["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]


def test_the_rest_tier_balances_over_every_proxy_pod_through_the_headless_service() -> None:
    rest_toml = _one("ConfigMap", "lambdallm-config")["data"]["rest.toml"]
    pods = _one("Service", "lambdallm-proxy-pods")["spec"]
    proxy = _one("Deployment", "lambdallm-proxy")["spec"]["template"]["metadata"]["labels"]
    assert pods["clusterIP"] == "None" and pods["selector"].items() <= proxy.items()
    assert f'grpc_target = "dns:///lambdallm-proxy-pods:{pods["ports"][0]["port"]}"' in rest_toml


@pytest.mark.parametrize(
    ("key", "secret_name"), [("keys_file", "lambdallm-keys"), ("keys_pepper_file", "lambdallm-keys-pepper")]
)
def test_the_named_keys_and_their_pepper_are_secrets_mounted_as_files(key: str, secret_name: str) -> None:
    config = tomllib.loads(_one("ConfigMap", "lambdallm-config")["data"]["rest.toml"])
    pod = _one("Deployment", "lambdallm-rest")["spec"]["template"]["spec"]
    path = Path(config[key])
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if path.is_relative_to(m["mountPath"])]
    assert "subPath" not in mount  # a Secret mounted whole is updated in place; keys revoked reach the pods
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (secret,) = [doc for doc in _documents("secret.example.yaml") if doc["metadata"]["name"] == secret_name]
    assert volume["secret"]["secretName"] == secret_name
    assert str(path.relative_to(mount["mountPath"])) in secret["stringData"]
    assert volume["secret"]["defaultMode"] & 0o040


def test_the_rest_tier_shares_its_keys_counters_in_the_redis_only_it_reaches() -> None:
    config = tomllib.loads(_one("ConfigMap", "lambdallm-config")["data"]["rest.toml"])
    service = _one("Service", "lambdallm-redis")["spec"]
    pod = _one("Deployment", "lambdallm-redis")["spec"]["template"]
    assert config["redis_url"] == f"redis://lambdallm-redis:{service['ports'][0]['port']}/0"
    assert service["selector"].items() <= pod["metadata"]["labels"].items()
    policy = _one("NetworkPolicy", "lambdallm-redis")["spec"]
    assert _selects(policy, "redis") and policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["ingress"]
    assert len(rule["from"]) == 1 and _selects(rule["from"][0], "rest")
    assert not policy.get("egress")  # it reaches nothing


@pytest.mark.parametrize("tier", ["rest", "proxy"])
def test_prometheus_scrapes_a_port_the_pod_serves_its_metrics_on(tier: str) -> None:
    pod = _one("Deployment", f"lambdallm-{tier}")["spec"]["template"]
    port = int(pod["metadata"]["annotations"]["prometheus.io/port"])
    config = tomllib.loads(_one("ConfigMap", "lambdallm-config")["data"][f"{tier}.toml"])
    assert port in {p["containerPort"] for p in pod["spec"]["containers"][0]["ports"]}
    assert port == config.get("metrics_port", config["port"])  # the REST tier serves /metrics on its own port


@pytest.mark.parametrize(("tier", "key"), [("rest", "grpc_token_file"), ("proxy", "tokens_file")])
def test_both_tiers_read_the_proxy_token_from_the_mounted_secret(tier: str, key: str) -> None:
    config = tomllib.loads(_one("ConfigMap", "lambdallm-config")["data"][f"{tier}.toml"])
    pod = _one("Deployment", f"lambdallm-{tier}")["spec"]["template"]["spec"]
    path = Path(config[key])
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if path.is_relative_to(m["mountPath"])]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (secret,) = [doc for doc in _documents("secret.example.yaml") if doc["metadata"]["name"] == "lambdallm-proxy-token"]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert str(path.relative_to(mount["mountPath"])) in secret["stringData"]
    assert not volume["secret"].get("optional")  # no pod runs without the token
    # The file is root's; the non-root user reads it through the pod's fsGroup.
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
    assert volume["secret"]["defaultMode"] & 0o040


def _selects(peer: dict[str, Any], tier: str) -> bool:
    return peer.get("podSelector", {}).get("matchLabels") == {"app.kubernetes.io/name": f"lambdallm-{tier}"}


def _is_dns(rule: dict[str, Any]) -> bool:
    return {port["port"] for port in rule["ports"]} == {53}


def test_only_the_rest_tier_reaches_the_proxys_grpc_port() -> None:
    policy = _one("NetworkPolicy", "lambdallm-proxy")["spec"]
    assert _selects(policy, "proxy")
    assert "Ingress" in policy["policyTypes"]
    grpc_rules = [r for r in policy["ingress"] if {p["port"] for p in r["ports"]} & {"grpc", 50051}]
    (rule,) = grpc_rules
    assert len(rule["from"]) == 1 and _selects(rule["from"][0], "rest")
    assert all("grpc" not in {p["port"] for p in r["ports"]} for r in policy["ingress"] if r is not rule)


def test_only_the_proxy_leaves_for_the_backend_and_the_rest_tier_only_for_the_proxy() -> None:
    proxy = _one("NetworkPolicy", "lambdallm-proxy")["spec"]
    rest = _one("NetworkPolicy", "lambdallm-rest")["spec"]
    assert "Egress" in proxy["policyTypes"] and "Egress" in rest["policyTypes"]
    (backend,) = [r for r in proxy["egress"] if not _is_dns(r)]
    assert [p["port"] for p in backend["ports"]] == [443]  # HTTPS to API Gateway (and STS), nothing else
    to_proxy, to_redis = [r for r in rest["egress"] if not _is_dns(r)]
    assert len(to_proxy["to"]) == 1 and _selects(to_proxy["to"][0], "proxy")
    assert len(to_redis["to"]) == 1 and _selects(to_redis["to"][0], "redis")
    assert [p["port"] for p in to_redis["ports"]] == [_one("Service", "lambdallm-redis")["spec"]["ports"][0]["port"]]
    proxy_port = _one("Service", "lambdallm-proxy")["spec"]["ports"][0]["port"]
    assert [p["port"] for p in to_proxy["ports"]] == [proxy_port]
    for policy in (proxy, rest):
        (dns,) = [r for r in policy["egress"] if _is_dns(r)]
        assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
