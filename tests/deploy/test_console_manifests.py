"""deploy/: the console's manifests agree with how it starts (an HTTP server, its own NATS user, no token
of its own) and whom it may reach."""

from __future__ import annotations

import pytest

from consultflow import COMPONENTS, CONSOLE
from tests.deploy.test_manifests import (
    GRPC_PORT,
    KUBERNETES,
    NATS_CLIENT_PORT,
    _allowed,
    container_of,
    rendered,
    setting_names,
)
from tests.support.manifests import find, load_file, pod_templates

HTTP_PORT = 8080


@pytest.mark.parametrize("kustomization", ("base", "overlays/dev", "overlays/production"))
def test_the_console_runs_its_module_with_http_probes_and_one_replica(kustomization: str) -> None:
    objects = rendered(kustomization)
    for kind in ("ServiceAccount", "Service", "PodDisruptionBudget"):
        find(objects, kind, CONSOLE)
    deployment = find(objects, "Deployment", CONSOLE)
    assert deployment["spec"]["replicas"] == 1, "sessions live in one pod's memory (docs/console.md)"
    container = container_of(objects, "Deployment", CONSOLE)
    assert container["command"] == ["python", "-m", "consultflow.console"]
    # the metrics port, where the overlays add it, is checked with every component's (test_observability)
    assert {p["containerPort"] for p in container["ports"] if p["name"] != "metrics"} == {HTTP_PORT}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": HTTP_PORT}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONSULTFLOW_NATS_USER"] == CONSOLE
    assert env["CONSULTFLOW_CONSOLE_LISTEN"].endswith(f":{HTTP_PORT}")
    assert env["CONSULTFLOW_CONSOLE_PUBLIC_URL"].startswith("https://")
    assert set(env) <= setting_names()
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["nats-credentials"]["secret"]["items"] == [{"key": CONSOLE, "path": "password"}]
    assert pod["automountServiceAccountToken"] is False
    assert not any("projected" in v for v in volumes.values()), "the console holds no token of its own"


def test_the_console_reaches_nats_and_the_components_and_they_do_not_reach_it() -> None:
    objects = rendered("overlays/production") + load_file(KUBERNETES / "examples" / "console-ingress.yaml")
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    pods = {w["metadata"]["name"]: t["metadata"]["labels"] for w, t in pod_templates(objects)}
    assert _allowed(policies, pods[CONSOLE], pods["nats"], NATS_CLIENT_PORT)
    for component in COMPONENTS:
        assert _allowed(policies, pods[CONSOLE], pods[component], GRPC_PORT), component
        assert not _allowed(policies, pods[component], pods[CONSOLE], HTTP_PORT), component
    assert not _allowed(policies, pods[CONSOLE], pods["nats"], 6222)


def test_the_ingress_example_routes_to_the_console_with_sticky_sessions_and_tls() -> None:
    documents = load_file(KUBERNETES / "examples" / "console-ingress.yaml")
    ingress = find(documents, "Ingress", CONSOLE)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = find(rendered("base"), "Service", CONSOLE)
    assert backend["name"] == CONSOLE
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert ingress["spec"]["tls"][0]["hosts"] == [ingress["spec"]["rules"][0]["host"]]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"  # the event stream
