"""Survey operations driven by the real orchestrator: a small diagram's service tasks become JetStream
jobs for the survey service, and the client's answer (SubmitResponse) comes back as the BPMN message
`survey.response_received` through the status event `response.submitted`."""

from __future__ import annotations

import json
from pathlib import Path

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as opb
from consultflow.api.survey.v1 import survey_pb2 as pb
from consultflow.api.survey.v1 import survey_pb2_grpc as pb_grpc
from tests.support.bpmn_builder import Task, Wait, bpmn_folder, line
from tests.support.system import in_process_system

DIAGRAM = line(
    "survey_probe",
    [
        Task(
            "plan",
            "survey.create_plan",
            {
                "engagement_id": "engagement_id",
                "client_id": "client_id",
                "survey_method": "'questionnaire'",
                "respondents": "'Ms Chen, Mr Wang'",
                "survey_date": "'2025-06-01'",
                "survey_content": "'how the results are used'",
            },
        ),
        Task("send", "survey.send_questionnaire", {"survey_id": "survey_id"}),
        Wait("answered", "survey.response_received"),
        Task("analyse", "survey.analyse_responses", {"survey_id": "survey_id"}),
        Task(
            "problem",
            "survey.record_problem",
            {
                "survey_id": "survey_id",
                "problem_description": "dissatisfaction_reasons[0]['comments'][0]",
                "problem_nature": "'communication'",
                "problem_severity": "'moderate'",
            },
        ),
        Task(
            "define",  # not "measure": an element id must not repeat a parameter's id
            "survey.define_measure",
            {
                "problem_id": "problem_id",
                "measure": "'A named contact answers within a day'",
                "responsible_department": "'delivery'",
                "responsible_person": "'Mr Wang'",
                "measure_deadline": "'2030-01-31'",
                "measure_target": "'every reply within one working day'",
            },
        ),
        Task(
            "report",
            "survey.report_progress",
            {
                "problem_id": "problem_id",
                "progress_report": "'replies within a day now'",
                "problem_solved": "True",
            },
        ),
    ],
)


def test_a_diagram_runs_the_survey_operations_and_hears_the_clients_answer(
    tmp_path: Path, nats_url: str
) -> None:
    bpmn = bpmn_folder(tmp_path, {"survey_probe": DIAGRAM})
    with in_process_system(tmp_path, nats_url, ["survey"], bpmn_dir=bpmn) as system:
        created = system.orchestrator.CreateInstance(
            opb.CreateInstanceRequest(
                process_id="survey_probe",
                business_key="E-8",
                variables_json=json.dumps({"engagement_id": "E-8", "client_id": "C-8"}),
            )
        )
        sent = system.wait_for(
            created.instance_id, lambda i: "questionnaire_sent_at" in json.loads(i.variables_json or "{}")
        )
        survey_id = json.loads(sent.variables_json)["survey_id"]
        surveys = pb_grpc.SurveyServiceStub(system.channel("survey"))
        surveys.SubmitResponse(
            pb.SubmitResponseRequest(
                survey_id=survey_id,
                respondent="Ms Chen",
                ratings=pb.Ratings(
                    service_quality=2, result_quality=4, team_performance=4, overall_satisfaction=3
                ),
                comments=pb.Comments(service_quality="Replies took a week"),
                recommendation=7,
            )
        )
        done = system.wait_completed(created.instance_id)
        variables = json.loads(done.variables_json)
        # 25 × (0.25×1 + 0.25×3 + 0.20×3 + 0.30×2) = 55.0; one passive (7): NPS 0
        assert (
            variables["satisfaction_score"],
            variables["lowest_rating"],
            variables["csat"],
            variables["nps"],
        ) == (
            55.0,
            2.0,
            50.0,
            0.0,
        )
        assert variables["respondent"] == "Ms Chen"  # the message carried the response's variables
        assert variables["problem_solved"] is True
        problem = surveys.GetProblem(pb.GetProblemRequest(problem_id=variables["problem_id"]))
        assert (problem.description, problem.status, [m.status for m in problem.measures]) == (
            "Replies took a week",
            "solved",
            ["done"],
        )
        correlated = [(e.element_id, e.element_name) for e in done.history if e.type == "message.correlated"]
        assert correlated == [("answered", "survey.response_received")]
