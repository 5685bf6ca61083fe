"""deploy/kubernetes/observability: every component's metrics port is scraped, and the Grafana dashboard
queries only metrics the code exports."""

from __future__ import annotations

import json
import re

import pytest

from consultflow import COMPONENTS, CONSOLE
from consultflow.platform.metrics import REGISTRY
from tests.deploy.test_manifests import KUBERNETES, _allowed, consultflow_config, container_of, rendered
from tests.support.manifests import find, load_file, pod_templates, render

OBSERVABILITY = KUBERNETES / "observability"
MONITORING = OBSERVABILITY / "monitoring"


@pytest.mark.parametrize("kustomization", ("overlays/dev", "overlays/production"))
def test_every_component_serves_metrics_on_the_annotated_port(kustomization: str) -> None:
    objects = rendered(kustomization)
    config = consultflow_config(objects)
    port = int(config["CONSULTFLOW_METRICS_PORT"])
    assert config["CONSULTFLOW_METRICS_ADDRESS"] == "0.0.0.0", "Prometheus scrapes the pod's address"
    for component in (*COMPONENTS, CONSOLE):
        container = container_of(objects, "Deployment", component)
        assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in container["ports"]
        annotations = find(objects, "Deployment", component)["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }


def test_only_the_monitoring_namespace_reaches_the_metrics_port() -> None:
    objects = rendered("overlays/production")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods = {w["metadata"]["name"]: t["metadata"]["labels"] for w, t in pod_templates(objects)}
    port = int(consultflow_config(objects)["CONSULTFLOW_METRICS_PORT"])
    scrape = find(objects, "NetworkPolicy", "allow-metrics-scrape")["spec"]
    assert scrape["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
            "ports": [{"protocol": "TCP", "port": port}],
        }
    ]
    for source in COMPONENTS:  # no pod of the namespace itself
        for target in (*COMPONENTS, CONSOLE):
            if source != target:
                assert not _allowed(policies, pods[source], pods[target], port), (source, target)


def test_the_pod_monitor_selects_every_component_by_its_metrics_port() -> None:
    objects = render(MONITORING)
    monitor = find(objects, "PodMonitor", "consultflow")["spec"]
    assert monitor["podMetricsEndpoints"][0]["port"] == "metrics"
    production = rendered("overlays/production")
    wanted = monitor["selector"]["matchExpressions"]
    selected = [
        t["metadata"]["labels"]
        for _, t in pod_templates(production)
        if all(t["metadata"]["labels"].get(e["key"]) in e["values"] for e in wanted)
    ]
    assert len(selected) == len(COMPONENTS) + 1


def test_the_dashboard_configmap_is_the_dashboard_file_and_queries_real_metrics() -> None:
    text = (MONITORING / "consultflow-pipeline.json").read_text(encoding="utf-8")
    documents = load_file(MONITORING / "grafana-dashboard.yaml")
    config_map = find(documents, "ConfigMap", "consultflow-grafana-dashboard")
    assert config_map["data"]["consultflow-pipeline.json"] == text
    dashboard = json.loads(text)
    exported = {
        sample_name
        for family in REGISTRY.collect()
        for sample_name in (
            family.name,
            f"{family.name}_total",
            f"{family.name}_bucket",
            f"{family.name}_count",
            f"{family.name}_sum",
        )
    }
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b((?:consultflow|process)_[a-z_]+)", target["expr"])
    }
    assert queried and queried <= exported, queried - exported
    names = {re.sub(r"_(total|bucket)$", "", n) for n in queried}
    for metric in ("consultflow_job_dispatch_seconds", "consultflow_outbox_backlog", "consultflow_steps"):
        assert metric in names
