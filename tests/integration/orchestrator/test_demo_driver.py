"""The demo driver (and the system benchmark, which runs it) sees every open user task, not the first page:
with many engagements at once, the first page can hold only tasks the stories hold back."""

from __future__ import annotations

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.demo.driver import open_user_tasks
from tests.support.bpmn_builder import bpmn
from tests.support.console import deploy

WAITS = bpmn(
    "waits", '<startEvent id="s"/><userTask id="review"/><endEvent id="e"/>', "s -> review\nreview -> e"
)


def test_every_open_user_task_is_read_page_by_page(stub: pb_grpc.OrchestratorServiceStub) -> None:
    deploy(stub, "waits.bpmn", WAITS)
    started = {
        stub.CreateInstance(pb.CreateInstanceRequest(process_id="waits", business_key=f"W-{n}")).instance_id
        for n in range(5)
    }
    tasks = open_user_tasks(stub, page_size=2)
    assert sorted(t.instance_id for t in tasks) == sorted(started), "each instance's task, once"
