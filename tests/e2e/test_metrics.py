"""Every component of `consultflow up` serves Prometheus metrics at the address endpoints.json names."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from consultflow import COMPONENTS, CONSOLE
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import ENDPOINTS_FILE, LocalSystem
from consultflow.demo.driver import Clients

LIST_DEFINITIONS = "/consultflow.api.orchestrator.v1.OrchestratorService/ListDefinitions"


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_component_is_scraped_and_a_call_is_counted(demo_system: LocalSystem) -> None:
    written = json.loads((demo_system.data_dir / ENDPOINTS_FILE).read_text())
    addresses = written["metrics"]
    assert set(addresses) == {*COMPONENTS, CONSOLE}
    for component in COMPONENTS:
        scraped = samples(addresses[component])
        assert ("consultflow_outbox_backlog", (("component", component),)) in scraped, component
        assert ("process_cpu_seconds_total", ()) in scraped
    assert ("process_cpu_seconds_total", ()) in samples(addresses[CONSOLE])
    assert ("consultflow_incidents_open", ()) in samples(addresses["orchestrator"])

    key = ("consultflow_grpc_server_handled_total", (("code", "OK"), ("method", LIST_DEFINITIONS)))
    before = samples(addresses["orchestrator"]).get(key, 0.0)
    clients = Clients(demo_system.endpoints())
    try:
        clients.orchestrator.ListDefinitions(pb.ListDefinitionsRequest(), timeout=10)
    finally:
        clients.close()
    assert samples(addresses["orchestrator"])[key] == before + 1
