"""Risk operations driven by the real orchestrator: a small diagram's service tasks become JetStream jobs
for the risk service, and its status events come back as the BPMN messages the catalogue names
(`risk.registered` → `risk.identified`, `warning.acknowledged` → `risk.warning_acknowledged`)."""

from __future__ import annotations

import json
from pathlib import Path

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as opb
from consultflow.api.risk.v1 import risk_pb2 as pb
from consultflow.api.risk.v1 import risk_pb2_grpc as pb_grpc
from tests.support.bpmn_builder import Task, Wait, bpmn_folder, line
from tests.support.system import in_process_system

DIAGRAM = line(
    "risk_probe",
    [
        Task("open", "risk.open_register", {"engagement_id": "engagement_id", "client_name": "'ACME'"}),
        Task(
            "register",
            "risk.register_risk",
            {
                "engagement_id": "engagement_id",
                "risk_description": "'The client may cut the budget'",
                "risk_stage": "'intake'",
                "risk_source": "'feasibility assessment'",
            },
        ),
        Wait("identified", "risk.identified"),
        Task(
            "assess",
            "risk.assess_risk",
            {
                "risk_id": "risk_id",
                "risk_category": "'financial'",
                "identification_method": "'checklist'",
                "likelihood": "'high'",
                "impact": "'severe'",
            },
        ),
        Task(
            "respond",
            "risk.plan_response",
            {
                "risk_id": "risk_id",
                "strategy": "suggested_strategy",
                "measures": "'Decline the project'",
                "measure_owner": "'Ms Li'",
                "measure_due": "'2030-01-31'",
            },
        ),
        Task(
            "warn",
            "risk.raise_warning",
            {
                "engagement_id": "engagement_id",
                "indicator": "'cost_overrun_rate'",
                "value": "0.12",
                "status": "'red'",
            },
        ),
        Wait("acknowledged", "risk.warning_acknowledged", "warning_id"),
        Task("close", "risk.close_register", {"engagement_id": "engagement_id"}),
    ],
)


def test_a_diagram_runs_the_risk_operations_and_hears_the_risk_service(tmp_path: Path, nats_url: str) -> None:
    bpmn = bpmn_folder(tmp_path, {"risk_probe": DIAGRAM})
    with in_process_system(tmp_path, nats_url, ["risk"], bpmn_dir=bpmn) as system:
        created = system.orchestrator.CreateInstance(
            opb.CreateInstanceRequest(
                process_id="risk_probe",
                business_key="E-9",
                variables_json=json.dumps({"engagement_id": "E-9"}),
            )
        )
        waiting = system.wait_for(
            created.instance_id, lambda i: "warning_id" in json.loads(i.variables_json or "{}")
        )
        variables = json.loads(waiting.variables_json)
        # risk.identified delivered the registered risk's variables; the matrix suggested avoid (6.3.1)
        assert (variables["risk_stage"], variables["risk_level"], variables["suggested_strategy"]) == (
            "intake",
            "critical",
            "avoid",
        )
        assert variables["warning_level"] == "red"
        risk = pb_grpc.RiskServiceStub(system.channel("risk"))
        risk.AcknowledgeWarning(
            pb.AcknowledgeWarningRequest(
                warning_id=variables["warning_id"], action="CFO informed", acknowledged_by="PM"
            )
        )
        done = system.wait_completed(created.instance_id)
        final = json.loads(done.variables_json)
        assert final["register_closed_at"]
        stored = risk.GetRisk(pb.GetRiskRequest(risk_id=variables["risk_id"]))
        assert (stored.status, stored.strategy, stored.priority) == ("responded", "avoid", 1)
        register = risk.GetRegister(pb.GetRegisterRequest(engagement_id="E-9"))
        assert (register.client_name, register.status) == ("ACME", "closed")
        warnings = risk.ListWarnings(pb.ListWarningsRequest(engagement_id="E-9")).warnings
        # one from the assessment (priority 1 is red), one from the reading
        assert sorted((w.trigger, w.status) for w in warnings) == [
            ("indicator", "acknowledged"),
            ("risk_level", "raised"),
        ]
        correlated = [(e.element_id, e.element_name) for e in done.history if e.type == "message.correlated"]
        assert correlated == [
            ("identified", "risk.identified"),
            ("acknowledged", "risk.warning_acknowledged"),
        ]
