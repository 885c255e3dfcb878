"""Every metric a tier exports is in docs/metrics.md's table, and the Grafana dashboard asks only for those."""

import json
import re
from pathlib import Path

from prometheus_client import CollectorRegistry

from lambdallm.local_cloud.metrics import CloudMetrics
from lambdallm.local_cloud.models import ModelHost
from lambdallm.proxy.metrics import ProxyMetrics
from lambdallm.rest.metrics import RestMetrics
from lambdallm.rest.usage import UsageMetrics

ROOT = Path(__file__).resolve().parents[2]


def exported():
    keys = CollectorRegistry()
    UsageMetrics(keys)  # the REST tier registers its keys' metrics in RestMetrics' registry (rest/app.py)
    registries = [RestMetrics(1).registry, keys, ProxyMetrics(1).registry, CloudMetrics(ModelHost("a", "b")).registry]
    names = set()
    for registry in registries:
        for family in registry.collect():
            names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def documented():
    return set(re.findall(r"^\| `(lambdallm_\w+)` \|", (ROOT / "docs" / "metrics.md").read_text(), flags=re.MULTILINE))


def test_the_metrics_page_lists_exactly_the_exported_metrics():
    assert documented() == exported()


def test_the_dashboard_queries_only_exported_metrics():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "lambdallm.json").read_text())
    queried = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"lambdallm_\w+", target["expr"])
    }
    assert queried
    assert queried <= exported()
