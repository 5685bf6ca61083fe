"""An orchestrator and chosen services running in-process against real NATS and real databases."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from tests.support.components import ComponentThread, addresses, component_settings
from tests.support.identity import signed_channel
from tests.support.polling import eventually

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


class InProcessSystem:
    def __init__(self, components: dict[str, ComponentThread]) -> None:
        self.components = components
        self.channels: dict[str, grpc.Channel] = {}

    def channel(self, name: str) -> grpc.Channel:
        if name not in self.channels:
            self.channels[name] = signed_channel(self.components[name].address)
        return self.channels[name]

    @property
    def orchestrator(self) -> pb_grpc.OrchestratorServiceStub:
        return pb_grpc.OrchestratorServiceStub(self.channel("orchestrator"))

    def wait_for(
        self, instance_id: str, done: Callable[[pb.Instance], bool], timeout: float = 15.0
    ) -> pb.Instance:
        def reached() -> pb.Instance | None:
            instance = self.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
            return instance if done(instance) else None

        return eventually(reached, f"instance {instance_id} to reach the expected state", timeout, 0.02)

    def wait_completed(self, instance_id: str, timeout: float = 15.0) -> pb.Instance:
        return self.wait_for(instance_id, lambda i: i.state == pb.INSTANCE_STATE_COMPLETED, timeout)


@contextmanager
def in_process_system(
    tmp_path: Path,
    nats_url: str,
    services: Sequence[str] = ("crm",),
    bpmn_dir: Path | None = None,
    database_urls: dict[str, str] | None = None,
    **orchestrator_overrides: Any,
) -> Iterator[InProcessSystem]:
    """Starts the orchestrator (deploying `bpmn_dir`, default the repository's bpmn/) and `services`."""
    names = ["orchestrator", *services]
    settings = {
        name: component_settings(
            name,
            tmp_path,
            nats_url,
            (database_urls or {}).get(name, ""),
            **(
                {"bpmn_dir": bpmn_dir or ROOT / "bpmn", **orchestrator_overrides}
                if name == "orchestrator"
                else {}
            ),
        )
        for name in names
    }
    with ExitStack() as stack:
        stack.enter_context(addresses({n: s.grpc_address for n, s in settings.items()}))
        components: dict[str, ComponentThread] = {}
        for name in names:
            build = importlib.import_module(f"consultflow.{name}.app").build
            component = ComponentThread(settings[name], build).start()
            stack.callback(component.stop)
            components[name] = component
        system = InProcessSystem(components)
        yield system
        for channel in system.channels.values():
            channel.close()
