"""Delivery rules as plain code: parsing, teams, plans, reviews, deliveries and acceptance rounds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from consultflow.delivery import acceptance_rules as rules
from consultflow.delivery import deliverables_rules, domain
from consultflow.delivery.acceptance_rules import (
    AcceptanceStatus,
    Conclusion,
    CriterionResult,
    ItemStatus,
    RectificationItem,
)
from consultflow.delivery.deliverables_rules import (
    DeliverableItem,
    DeliverableSetStatus,
    DeliveryMode,
    DeliveryStatus,
    MaterialsReview,
)
from consultflow.delivery.domain import (
    ArchiveState,
    Artefact,
    CommunicationKind,
    Direction,
    DocumentCategory,
    NewDocument,
    NewFinding,
    Phase,
    PlannedTask,
    RiskCategory,
    Role,
    SolutionStatus,
    TaskState,
    TaskUpdate,
    Team,
    Verdict,
)
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import choice, iso_date, iso_datetime, lines, names, renamed_fields, yes_no
from consultflow.risk.domain import Category as RiskServiceCategory


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.field


# --- parsing (the platform's parsers as delivery uses them, and delivery's own) ---


def test_names_and_lines_accept_text_and_lists() -> None:
    assert names("x", "Li Lei, Han Mei;  Li Lei\nWang") == ("Li Lei", "Han Mei", "Wang")
    assert names("x", ["A", " B ", ""]) == ("A", "B")
    assert lines("x", "first, with comma\n\nsecond", domain.TEXT_LIMIT) == ("first, with comma", "second")
    assert lines("x", None, domain.TEXT_LIMIT) == ()
    with pytest.raises(InvalidArgument) as error:
        names("attendees", 42)
    assert field_of(error) == "attendees"


def test_dates_and_times() -> None:
    assert iso_date("d", "2025-03-01") == date(2025, 3, 1)
    assert iso_date("d", datetime(2025, 3, 1, 12, tzinfo=UTC)) == date(2025, 3, 1)
    for bad in ("", "01/03/2025", "2025-02-30"):
        with pytest.raises(InvalidArgument) as error:
            iso_date("kickoff_date", bad)
        assert field_of(error) == "kickoff_date"
    assert iso_datetime("t", "2025-03-01T09:30") == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert iso_datetime("t", "2025-03-01T09:30:00Z").tzinfo is not None
    with pytest.raises(InvalidArgument, match="delivery_time"):
        iso_datetime("delivery_time", "tomorrow")


def test_booleans_money_progress_links() -> None:
    assert yes_no("b", "Yes") is True
    assert yes_no("b", "y") is True
    assert yes_no("b", False) is False
    with pytest.raises(InvalidArgument, match="channel_tested"):
        yes_no("channel_tested", "maybe")
    assert domain.money("m", "1250.5") == Decimal("1250.50")
    assert domain.money("m", "") == Decimal("0.00")
    for bad in ("-1", "abc", "1.005", "NaN", "1e13"):
        with pytest.raises(InvalidArgument, match="budget"):
            domain.money("budget", bad)
    assert domain.percent("progress", "55") == 55
    for bad_progress in (-1, 101, "50.5", "x", True):
        with pytest.raises(InvalidArgument) as error:
            domain.percent("progress", bad_progress)
        assert field_of(error) == "progress"
    assert domain.http_link("l", "https://wiki.example/flow") == "https://wiki.example/flow"
    with pytest.raises(InvalidArgument, match="flow_chart_link"):
        domain.http_link("flow_chart_link", "file:///etc/passwd")


def test_choice_lists_the_allowed_values() -> None:
    assert choice("v", " Approved ", Verdict) is Verdict.APPROVED
    with pytest.raises(InvalidArgument, match="approved, revise"):
        choice("solution_verdict", "ok", Verdict)


# --- 3.1 ---


def test_phases_only_move_forward_and_follow_up_closes_the_project() -> None:
    assert domain.advance(Phase.OPENED, Phase.RESEARCH) == "research"
    assert domain.advance(Phase.EXECUTION, Phase.RESEARCH) == "execution"
    domain.ensure_active(Phase.ACCEPTANCE)
    with pytest.raises(FailedPrecondition, match="follow-up"):
        domain.ensure_active(Phase.FOLLOW_UP)


def test_a_team_has_exactly_one_project_manager_and_standard_duties() -> None:
    team = Team.parse(
        members=[
            ("Wang", "project_manager", ""),
            ("Li", "Consultant", "market entry strategy"),
            ("li", Role.CONSULTANT, ""),  # the same person twice in one role counts once
            ("Li", Role.ANALYST, ""),  # one person may hold two roles
        ]
    ).members
    assert [(m.name, m.role) for m in team] == [
        ("Wang", Role.PROJECT_MANAGER),
        ("Li", Role.CONSULTANT),
        ("Li", Role.ANALYST),
    ]
    assert team[0].duties == domain.STANDARD_DUTIES[Role.PROJECT_MANAGER]
    assert team[1].duties == "market entry strategy"
    with pytest.raises(InvalidArgument) as error:
        Team.parse(members=[("Li", Role.CONSULTANT, "")])
    assert field_of(error) == "project_manager"
    with pytest.raises(InvalidArgument, match="not 2"):
        Team.parse(members=[("A", Role.PROJECT_MANAGER, ""), ("B", Role.PROJECT_MANAGER, "")])
    with pytest.raises(InvalidArgument) as error:
        Team.parse(members=[])
    assert field_of(error) == "members"
    with pytest.raises(InvalidArgument) as error:
        Team.parse(members=[("A", "sponsor", "")])
    assert field_of(error) == "members.role"


def test_duties_from_a_diagram() -> None:
    assert domain.duties_by_role("duties", "consultant: design\nAnalyst: data") == {
        Role.CONSULTANT: "design",
        Role.ANALYST: "data",
    }
    assert domain.duties_by_role("duties", {"assistant": "archive"}) == {Role.ASSISTANT: "archive"}
    everyone = domain.duties_by_role("duties", "follow the work manual")
    assert set(everyone) == set(Role) and everyone[Role.ANALYST] == "follow the work manual"


def test_the_project_manager_holds_the_kickoff() -> None:
    domain.kickoff_attendance(["wang", "Li"], "Wang")
    with pytest.raises(FailedPrecondition, match="form the team"):
        domain.kickoff_attendance(["Wang"], None)
    with pytest.raises(InvalidArgument, match="must attend"):
        domain.kickoff_attendance(["Li"], "Wang")


# --- 3.2, 3.3 ---


def test_research_documents_from_lines() -> None:
    documents = domain.documents_from_lines(
        "client_data",
        "Sales ledger 2024\nOrg chart | HR department | internal | https://dms.example/org",
        DocumentCategory.CLIENT_INTERNAL,
    )
    assert [(d.title, d.source, d.classification.value, d.link) for d in documents] == [
        ("Sales ledger 2024", "client", "confidential", ""),
        ("Org chart", "HR department", "internal", "https://dms.example/org"),
    ]
    with pytest.raises(InvalidArgument, match="client_data"):
        domain.documents_from_lines("client_data", "X | y | secret", DocumentCategory.CLIENT_INTERNAL)


def test_a_document_from_the_api_is_classified_by_its_category_unless_told() -> None:
    document = NewDocument.parse(
        title="Org chart", category="client_internal", source="HR", classification="", link=""
    )
    assert document.classification is domain.Classification.CONFIDENTIAL
    with pytest.raises(InvalidArgument) as error:
        NewDocument.parse(title="Org chart", category="gossip", source="HR", classification="", link="")
    assert field_of(error) == "category"


def test_findings() -> None:
    risk = NewFinding.parse(kind="risk", description="Key user leaves", risk_category="Personnel")
    assert risk.risk_category == "personnel"
    with pytest.raises(InvalidArgument, match="risk_category"):
        NewFinding.parse(kind="problem", description="Slow approvals", risk_category="personnel")
    with pytest.raises(InvalidArgument, match="risk_category"):
        NewFinding.parse(kind="risk", description="Key user leaves", risk_category="weather")
    for kind in domain.FindingKind:
        with pytest.raises(InvalidArgument) as error:
            NewFinding.parse(kind=kind, description=" ")
        assert field_of(error) == "description"
    with pytest.raises(InvalidArgument) as error, renamed_fields(description="risk_description"):
        NewFinding.parse(kind=domain.FindingKind.RISK, description=" ")
    assert field_of(error) == "risk_description"


def test_an_artefact_needs_a_link_and_is_named_after_its_kind() -> None:
    artefact = Artefact.parse(kind="flow_chart", title="", link="https://wiki.example/flow")
    assert (artefact.kind, artefact.title) == (domain.ArtefactKind.FLOW_CHART, "flow chart")
    with pytest.raises(InvalidArgument) as error:
        Artefact.parse(kind="mind_map", title="Map", link="")
    assert field_of(error) == "link"


def test_reviews_that_ask_for_revision_say_what_to_revise() -> None:
    approved = domain.ExpertReview.parse(verdict="approved", comments="", reviewer=" Dr. Chen ")
    assert approved == domain.ExpertReview(Verdict.APPROVED, "", "Dr. Chen")
    with pytest.raises(InvalidArgument, match="review_comments"):
        domain.ExpertReview.parse(verdict="revise", comments=" ", reviewer="")
    with pytest.raises(InvalidArgument) as error:
        domain.ExpertReview.parse(verdict="ok", comments="", reviewer="")
    assert field_of(error) == "verdict"
    with pytest.raises(FailedPrecondition, match="already reviewed"):
        domain.SOLUTION_REVIEW.check_reviewable("approved", "solution")


ALL_MET = {c: ("met", "") for c in domain.ReviewCriterion}


def test_a_solution_review_records_each_of_the_four_criteria() -> None:
    """3.3.2: soundness, feasibility, innovation and risk responses, each a verdict and comments."""
    review = domain.ExpertReview.parse(
        verdict="revise",
        comments="Phase the entry",
        reviewer="",
        criteria={**ALL_MET, domain.ReviewCriterion.FEASIBILITY: ("not_met", " Too many markets ")},
    )
    assert [(a.criterion.value, a.verdict.value) for a in review.criteria] == [
        ("soundness", "met"),
        ("feasibility", "not_met"),
        ("innovation", "met"),
        ("risk_response", "met"),
    ]
    feasibility = review.criterion(domain.ReviewCriterion.FEASIBILITY)
    assert feasibility is not None and feasibility.comments == "Too many markets"
    # a review without criteria: recorded by a diagram that did not yet ask for them
    assert domain.ExpertReview.parse(verdict="approved", comments="", reviewer="").criteria == ()
    assert (
        domain.ExpertReview.parse(
            verdict="approved", comments="", reviewer="", criteria={c: (None, "") for c in ALL_MET}
        ).criteria
        == ()
    )


def test_a_solution_review_gives_all_criteria_and_says_why_one_is_not_met() -> None:
    some = {domain.ReviewCriterion.SOUNDNESS: ("met", "")}
    with pytest.raises(InvalidArgument, match="every criterion") as error:
        domain.ExpertReview.parse(verdict="approved", comments="", reviewer="", criteria=some)
    assert field_of(error) == "feasibility_verdict"
    not_met = {**ALL_MET, domain.ReviewCriterion.INNOVATION: ("not_met", " ")}
    with pytest.raises(InvalidArgument) as error:
        domain.ExpertReview.parse(verdict="revise", comments="x", reviewer="", criteria=not_met)
    assert field_of(error) == "innovation_comments"
    odd = {**ALL_MET, domain.ReviewCriterion.RISK_RESPONSE: ("fine", "")}
    with pytest.raises(InvalidArgument) as error:
        domain.ExpertReview.parse(verdict="approved", comments="", reviewer="", criteria=odd)
    assert field_of(error) == "risk_response_verdict"


# --- 3.4, 3.5 ---


def test_planned_dates_in_order() -> None:
    task = PlannedTask.parse(
        name="Interviews", planned_start="2025-03-01", planned_end="2025-03-01", budget=""
    )
    assert (task.planned_start, task.budget) == (date(2025, 3, 1), Decimal("0.00"))
    with pytest.raises(InvalidArgument) as error:
        PlannedTask.parse(name="Interviews", planned_start="2025-03-02", planned_end="2025-03-01", budget="0")
    assert field_of(error) == "planned_end"
    with pytest.raises(InvalidArgument) as error:
        PlannedTask.parse(name=" ", planned_start="2025-03-01", planned_end="2025-03-01", budget="0")
    assert field_of(error) == "name"


def test_a_task_update_parses_only_what_was_reported() -> None:
    assert TaskUpdate.parse() == TaskUpdate()
    update = TaskUpdate.parse(actual_start="2025-03-01", progress="40")
    assert update == TaskUpdate(actual_start=date(2025, 3, 1), progress=40)
    with pytest.raises(InvalidArgument) as error:
        TaskUpdate.parse(actual_cost="-5")
    assert field_of(error) == "actual_cost"


def test_baseline_tasks_follow_the_milestones() -> None:
    tasks = domain.baseline_tasks(
        date(2025, 3, 1), [("Final report", date(2025, 5, 31)), ("Diagnosis", date(2025, 3, 31))]
    )
    assert [(t.name, t.planned_start, t.planned_end) for t in tasks] == [
        ("Reach milestone: Diagnosis", date(2025, 3, 1), date(2025, 3, 31)),
        ("Reach milestone: Final report", date(2025, 3, 31), date(2025, 5, 31)),
    ]


@pytest.mark.parametrize(
    ("state", "field"),
    [
        (TaskState(None, date(2025, 3, 2), Decimal(0), 100), "actual_start"),
        (TaskState(date(2025, 3, 2), date(2025, 3, 1), Decimal(0), 100), "actual_end"),
        (TaskState(date(2025, 3, 1), None, Decimal(0), 100), "actual_end"),
        (TaskState(date(2025, 3, 1), date(2025, 3, 2), Decimal(0), 90), "progress"),
        (TaskState(None, None, Decimal(0), 10), "actual_start"),
    ],
)
def test_task_progress_rules(state: TaskState, field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        state.check()
    assert field_of(error) == field


def test_work_plan_dates_stay_in_the_service_period() -> None:
    domain.check_within_service("planned_end", date(2025, 3, 31), date(2025, 3, 1), date(2025, 3, 31))
    with pytest.raises(InvalidArgument, match="deadline"):
        domain.check_within_service("planned_end", date(2025, 4, 1), date(2025, 3, 1), date(2025, 3, 31))
    with pytest.raises(InvalidArgument, match="service start"):
        domain.check_within_service("planned_start", date(2025, 2, 1), date(2025, 3, 1), None)


def test_communication_direction_matches_its_kind() -> None:
    domain.check_communication(Direction.INTERNAL, CommunicationKind.REPORT)
    domain.check_communication(Direction.EXTERNAL, CommunicationKind.CLIENT_QUESTION)
    with pytest.raises(InvalidArgument, match="not external"):
        domain.check_communication(Direction.EXTERNAL, CommunicationKind.MEETING)


def test_a_change_request_is_answered_once_unless_deferred() -> None:
    domain.check_change_response("requested", domain.ChangeDecision.DEFERRED, "next phase")
    domain.check_change_response("deferred", domain.ChangeDecision.ACCEPTED, "agreed")
    with pytest.raises(FailedPrecondition, match="already accepted"):
        domain.check_change_response("accepted", domain.ChangeDecision.REJECTED, "no")
    with pytest.raises(InvalidArgument, match="change_response"):
        domain.check_change_response("requested", domain.ChangeDecision.REJECTED, "")


# --- 4.1, 4.2 ---


def test_deliverables_and_contract_conformance() -> None:
    items = deliverables_rules.deliverable_items(
        "deliverables", "Diagnosis report | https://dms.example/d1\nImplementation roadmap"
    )
    assert items == [
        DeliverableItem("Diagnosis report", "https://dms.example/d1"),
        DeliverableItem("Implementation roadmap", ""),
    ]
    assert deliverables_rules.missing_contract_deliverables(["diagnosis REPORT", "Training"], items) == [
        "Training"
    ]
    with pytest.raises(InvalidArgument, match="listed twice"):
        deliverables_rules.check_deliverables([DeliverableItem("A"), DeliverableItem("a")])
    with pytest.raises(InvalidArgument, match="deliverables"):
        deliverables_rules.check_deliverables([])


def test_materials_are_approved_only_when_all_four_checks_pass() -> None:
    def review(conformance: object, comments: str) -> MaterialsReview:
        return MaterialsReview.parse(
            logic_ok=True,
            consistency_ok="yes",
            accuracy_ok=True,
            contract_conformance_ok=conformance,
            comments=comments,
        )

    assert review(True, "").approved
    failed = review("no", " rework the roadmap ")
    assert not failed.approved and failed.comments == "rework the roadmap"
    with pytest.raises(InvalidArgument, match="review_comments"):
        review(False, "")


def test_an_onsite_plan_names_place_and_attendees() -> None:
    when = datetime(2025, 6, 1, 9, tzinfo=UTC)
    plan = deliverables_rules.OnsitePlan.parse(
        delivery_time="2025-06-01T09:00Z", place=" Client HQ ", attendees="Wang, Li", preparations="Slides"
    )
    assert plan == deliverables_rules.OnsitePlan(when, "Client HQ", ("Wang", "Li"), ("Slides",))
    with pytest.raises(InvalidArgument, match="delivery_place"):
        deliverables_rules.OnsitePlan.parse(
            delivery_time=when, place=" ", attendees=["Wang"], preparations=[]
        )
    with pytest.raises(InvalidArgument, match="attendees"):
        deliverables_rules.OnsitePlan.parse(
            delivery_time=when, place="Client HQ", attendees=[], preparations=[]
        )


# --- 4.4 ---


CRITERIA = ["Report complete", "Roadmap feasible"]


def test_a_report_covers_every_criterion_once() -> None:
    passed = [CriterionResult("report complete", True), CriterionResult("Roadmap feasible", True)]
    rules.check_report(CRITERIA, passed, Conclusion.PASSED, "")
    with pytest.raises(InvalidArgument, match="no result for 'Roadmap feasible'"):
        rules.check_report(CRITERIA, passed[:1], Conclusion.PASSED, "")
    with pytest.raises(InvalidArgument, match="not a criterion"):
        rules.check_report(CRITERIA, [*passed, CriterionResult("Nice fonts", True)], Conclusion.PASSED, "")
    with pytest.raises(InvalidArgument, match="two results"):
        rules.check_report(
            CRITERIA, [*passed, CriterionResult("Report complete", False)], Conclusion.PASSED, ""
        )


def test_the_conclusion_agrees_with_the_results() -> None:
    mixed = [CriterionResult("Report complete", True), CriterionResult("Roadmap feasible", False)]
    rules.check_report(CRITERIA, mixed, Conclusion.FAILED, "")
    with pytest.raises(InvalidArgument) as error:
        rules.check_report(CRITERIA, mixed, Conclusion.PASSED, "")
    assert field_of(error) == "conclusion"
    all_passed = [CriterionResult(c, True) for c in CRITERIA]
    with pytest.raises(InvalidArgument) as error:
        rules.check_report(CRITERIA, all_passed, Conclusion.FAILED, "")
    assert field_of(error) == "comments"
    rules.check_report(CRITERIA, all_passed, Conclusion.FAILED, "the board wants a second pilot")


def test_rectification_items_say_what_who_and_until_when() -> None:
    items = rules.rectification_items(
        "Fix the roadmap costs\nAdd the pilot plan | Li | 2025-06-20", "Wang", date(2025, 6, 15)
    )
    assert items == [
        RectificationItem("Fix the roadmap costs", "Wang", date(2025, 6, 15)),
        RectificationItem("Add the pilot plan", "Li", date(2025, 6, 20)),
    ]
    assert rules.check_rectification(items, date(2025, 6, 1)) == items
    with pytest.raises(InvalidArgument, match="rectification_owner"):
        rules.rectification_items("Fix it", "", date(2025, 6, 15))
    with pytest.raises(InvalidArgument, match="rectification_due"):
        rules.rectification_items("Fix it", "Wang", None)
    with pytest.raises(InvalidArgument, match="before the acceptance report"):
        rules.check_rectification(
            rules.rectification_items("Fix it", "Wang", date(2025, 5, 31)), date(2025, 6, 1)
        )
    with pytest.raises(InvalidArgument, match="rectification_items"):
        rules.check_rectification(rules.rectification_items("", "Wang", date(2025, 6, 15)), date(2025, 6, 1))
    with pytest.raises(InvalidArgument) as error:
        rules.RectificationItem.parse(description="Fix it", owner=" ", due_date="2025-06-15")
    assert field_of(error) == "owner"


@pytest.mark.parametrize(
    ("last", "open_items", "problem"),
    [
        ("rectifying", 2, "2 rectification item(s) are still open"),
        ("requested", 0, "still awaits the client's report"),
        ("failed", 0, "record its rectification items first"),
        ("passed", 0, "no new round is needed"),
        ("closed", 0, "no new round is needed"),
    ],
)
def test_no_new_acceptance_round_while_rectification_is_open(
    last: str, open_items: int, problem: str
) -> None:
    with pytest.raises(FailedPrecondition) as error:
        rules.next_round(last, 1, open_items)
    assert problem in error.value.message


def test_a_first_round_and_a_round_after_rectification_are_allowed() -> None:
    assert rules.next_round(None, 0, 0) == 1
    assert rules.next_round(AcceptanceStatus.RECTIFIED, 2, 0) == 3


# --- statuses and their transitions ---


@pytest.mark.parametrize("cycle", [domain.SOLUTION_REVIEW, deliverables_rules.DELIVERABLES_REVIEW])
def test_a_version_is_reviewed_once_and_only_one_awaiting_review_is_superseded(
    cycle: domain.ReviewCycle,
) -> None:
    assert cycle.superseded_by_new_version(cycle.awaiting)
    for reviewed in (cycle.approved, cycle.revise, cycle.superseded):
        assert not cycle.superseded_by_new_version(reviewed)
        with pytest.raises(FailedPrecondition, match=f"already reviewed \\({reviewed}\\)"):
            cycle.check_reviewable(reviewed, "version 1")
    cycle.check_reviewable(cycle.awaiting, "version 1")
    assert cycle.after_review(approved=True) == cycle.approved
    assert cycle.after_review(approved=False) == cycle.revise


def test_the_review_cycles_use_each_artefacts_own_statuses() -> None:
    assert domain.SOLUTION_REVIEW.awaiting == SolutionStatus.SUBMITTED
    assert deliverables_rules.DELIVERABLES_REVIEW.awaiting == DeliverableSetStatus.COMPILED
    assert domain.SOLUTION_REVIEW.after_review(approved=True) == Verdict.APPROVED.value
    assert domain.SOLUTION_REVIEW.after_review(approved=False) == Verdict.REVISE.value


def test_a_document_is_archived_once() -> None:
    domain.check_archivable(ArchiveState.COLLECTED, "D-1")
    with pytest.raises(FailedPrecondition, match="'D-1' is already archived"):
        domain.check_archivable(ArchiveState.ARCHIVED, "D-1")


def test_only_a_planned_online_delivery_is_sent() -> None:
    deliverables_rules.check_sendable(DeliveryMode.ONLINE, DeliveryStatus.PLANNED)
    with pytest.raises(FailedPrecondition, match="on-site delivery is not sent online"):
        deliverables_rules.check_sendable(DeliveryMode.ONSITE, DeliveryStatus.PLANNED)
    with pytest.raises(FailedPrecondition, match="already sent"):
        deliverables_rules.check_sendable(DeliveryMode.ONLINE, DeliveryStatus.SENT)


def test_a_delivery_is_recorded_when_planned_on_site_or_sent_online() -> None:
    deliverables_rules.check_deliverable(DeliveryMode.ONSITE, DeliveryStatus.PLANNED)
    deliverables_rules.check_deliverable(DeliveryMode.ONLINE, DeliveryStatus.SENT)
    with pytest.raises(FailedPrecondition, match="once it is sent; this one is planned"):
        deliverables_rules.check_deliverable(DeliveryMode.ONLINE, DeliveryStatus.PLANNED)
    with pytest.raises(FailedPrecondition, match="once it is planned; this one is delivered"):
        deliverables_rules.check_deliverable(DeliveryMode.ONSITE, DeliveryStatus.DELIVERED)


def test_an_acceptance_round_moves_from_report_to_rectification_to_close() -> None:
    rules.check_reportable(AcceptanceStatus.REQUESTED, 1, None)
    with pytest.raises(FailedPrecondition, match="round 1 was already reported \\(failed\\)"):
        rules.check_reportable(AcceptanceStatus.FAILED, 1, "failed")
    for status in (AcceptanceStatus.FAILED, AcceptanceStatus.RECTIFYING):
        rules.check_rectifiable(status, 1)
    with pytest.raises(FailedPrecondition, match="rectification follows a failed report"):
        rules.check_rectifiable(AcceptanceStatus.PASSED, 1)
    for status in (AcceptanceStatus.RECTIFYING, AcceptanceStatus.RECTIFIED):
        rules.check_items_closable(status, 1)
    with pytest.raises(FailedPrecondition, match="record its rectification items first"):
        rules.check_items_closable(AcceptanceStatus.FAILED, 1)
    assert rules.rectified(AcceptanceStatus.RECTIFYING, 0)
    assert not rules.rectified(AcceptanceStatus.RECTIFYING, 1)
    assert not rules.rectified(AcceptanceStatus.RECTIFIED, 0)
    rules.check_closable(AcceptanceStatus.PASSED, 2)
    with pytest.raises(FailedPrecondition, match="only a passed report closes acceptance"):
        rules.check_closable(AcceptanceStatus.RECTIFIED, 2)
    rules.check_item_open(ItemStatus.OPEN)
    with pytest.raises(FailedPrecondition, match="already closed"):
        rules.check_item_open(ItemStatus.CLOSED)


def test_amber_and_red_bands_are_breaches() -> None:
    assert [band for band in domain.Band if domain.breached(band)] == [domain.Band.AMBER, domain.Band.RED]


# --- commands the API and the jobs share ---


def test_a_kickoff_names_its_attendees_and_what_was_agreed() -> None:
    kickoff = domain.NewKickoff.parse(
        kickoff_date="2025-03-03",
        attendees="Wang, Li",
        briefing=" Scope and plan ",
        rules_agreed="Weekly meeting",
        materials_handed_out=["Work manual"],
    )
    assert kickoff == domain.NewKickoff(
        date(2025, 3, 3), ("Wang", "Li"), "Scope and plan", "Weekly meeting", ("Work manual",)
    )
    with pytest.raises(InvalidArgument) as error:
        domain.NewKickoff.parse(
            kickoff_date="2025-03-03",
            attendees="Wang",
            briefing="",
            rules_agreed="r",
            materials_handed_out="",
        )
    assert field_of(error) == "briefing"


def test_a_site_visit_is_recorded_afterwards_with_interviews_or_processes() -> None:
    def visit(interviewees: object, processes: object) -> domain.NewSiteVisit:
        return domain.NewSiteVisit.parse(
            visit_date="2025-03-05",
            visitors="Li",
            interviewees=interviewees,
            processes_observed=processes,
            observations="Manual order entry",
        )

    visit("Plant manager", "").check(date(2025, 3, 5))
    visit([], "Order intake").check(date(2025, 3, 6))
    with pytest.raises(InvalidArgument) as error:
        visit("Plant manager", "").check(date(2025, 3, 4))
    assert field_of(error) == "visit_date"
    with pytest.raises(InvalidArgument) as error:
        visit([], " ").check(date(2025, 3, 5))
    assert field_of(error) == "interviewees"


def test_a_meeting_without_a_date_is_held_today_and_lists_its_decisions() -> None:
    meeting = domain.NewMeeting.parse(
        held_on="", progress_report="On track", problems="", decisions="Hire\n\nHire", internal_updates=""
    )
    assert (meeting.held_on, meeting.decisions) == (None, ("Hire",))
    with pytest.raises(InvalidArgument) as error:
        domain.NewMeeting.parse(
            held_on="", progress_report=" ", problems="", decisions="", internal_updates=""
        )
    assert field_of(error) == "progress_report"


def test_change_responses_and_online_plans() -> None:
    answer = domain.ChangeResponse.parse(decision="Deferred", response=" next phase ")
    assert answer == domain.ChangeResponse(domain.ChangeDecision.DEFERRED, "next phase")
    with pytest.raises(InvalidArgument) as error:
        domain.ChangeResponse.parse(decision="maybe", response="")
    assert field_of(error) == "decision"
    plan = deliverables_rules.OnlinePlan.parse(platform="email", channel_tested="y")
    assert plan == deliverables_rules.OnlinePlan(deliverables_rules.Platform.EMAIL, True)
    with pytest.raises(InvalidArgument) as error:
        deliverables_rules.OnlinePlan.parse(platform="fax", channel_tested=True)
    assert field_of(error) == "platform"


def test_an_acceptance_request_names_its_criteria() -> None:
    request = rules.AcceptanceRequest.parse(
        acceptance_date="2025-06-01", content="Final report", criteria="Complete\nFeasible"
    )
    assert request == rules.AcceptanceRequest(date(2025, 6, 1), "Final report", ("Complete", "Feasible"))
    with pytest.raises(InvalidArgument) as error:
        rules.AcceptanceRequest.parse(acceptance_date="2025-06-01", content="Final report", criteria="")
    assert field_of(error) == "acceptance_criteria"


def test_a_communication_entry_matches_its_direction_and_is_no_change_request() -> None:
    entry = domain.NewCommunication.parse(
        direction="external", kind="client_question", counterpart="CFO", summary="Timeline?"
    )
    assert (entry.direction, entry.kind) == (Direction.EXTERNAL, CommunicationKind.CLIENT_QUESTION)
    with pytest.raises(InvalidArgument, match="RequestChange"):
        domain.NewCommunication.parse(
            direction="external", kind="change_request", counterpart="", summary="More markets"
        )
    with pytest.raises(InvalidArgument, match="not internal"):
        domain.NewCommunication.parse(direction="internal", kind="answer", counterpart="", summary="s")


def test_a_change_request_is_the_clients_unless_named_and_a_corrective_action_has_an_owner() -> None:
    assert domain.NewChangeRequest.parse(description="Add Spain", requested_by=" ").requested_by == "client"
    with pytest.raises(InvalidArgument) as error:
        domain.NewChangeRequest.parse(description="", requested_by="CFO")
    assert field_of(error) == "description"
    with pytest.raises(InvalidArgument) as error:
        domain.NewCorrectiveAction.parse(action="Add an analyst", owner="")
    assert field_of(error) == "action_owner"


def test_an_acceptance_report_parses_each_result_and_the_conclusion() -> None:
    report = rules.AcceptanceReport.parse(
        results=[("Complete", True, ""), ("Feasible", "no", " costs ")],
        conclusion="Failed",
        comments="",
        reported_by="",
    )
    assert report == rules.AcceptanceReport(
        (CriterionResult("Complete", True), CriterionResult("Feasible", False, "costs")),
        Conclusion.FAILED,
        "",
        "client",
    )
    with pytest.raises(InvalidArgument) as error:
        rules.AcceptanceReport.parse(results=[], conclusion="maybe", comments="", reported_by="")
    assert field_of(error) == "conclusion"


def test_the_risk_categories_delivery_accepts_are_the_risk_services() -> None:
    """Delivery keeps its own copy (risk.proto carries a string); this keeps the two in step."""
    assert {c.value for c in RiskCategory} == {c.value for c in RiskServiceCategory}
