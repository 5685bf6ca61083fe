"""CRM rules without a database: validation that names the field, and what each state allows."""

from __future__ import annotations

from datetime import date

import pytest

from consultflow.crm import domain
from consultflow.crm.domain import (
    Channel,
    CommunicationMode,
    Decline,
    DeclineReason,
    Dimension,
    InquiryStatus,
    LeadSource,
    LeadStatus,
    NewClient,
    NewContact,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewRequirements,
    NewRevisit,
    NewRevisitPlan,
    NewValueAddedService,
    OpportunityKind,
    RevisitMethod,
    RevisitPlanStatus,
    ValueAddedKind,
    Verdict,
)
from consultflow.platform.errors import FailedPrecondition, InvalidArgument


def _inquiry(**changes: str) -> NewInquiry:
    values = {
        "channel": "email",
        "client_name": "ACME",
        "client_industry": "lighting",
        "contact_name": "Li Lei",
        "contact_email": "li@acme.example",
        "contact_phone": "",
        "question": "Can you help?",
    }
    values.update(changes)
    return NewInquiry.parse(**values)


def _field(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.field


def test_an_inquiry_needs_an_email_or_a_phone() -> None:
    with pytest.raises(InvalidArgument) as error:
        _inquiry(contact_email="", contact_phone="")
    assert _field(error) == "contact_email" and "2.1.2" in error.value.message
    assert _inquiry(contact_email="", contact_phone="+86 755 1234 5678").contact_phone


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"client_name": "  "}, "client_name"),
        ({"contact_name": ""}, "contact_name"),
        ({"question": ""}, "question"),
        ({"contact_email": "not-an-email"}, "contact_email"),
        ({"contact_phone": "call me"}, "contact_phone"),
        ({"client_name": "x" * 301}, "client_name"),
        ({"channel": "fax"}, "channel"),
        ({"channel": ""}, "channel"),
    ],
)
def test_inquiry_errors_name_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        _inquiry(**changes)
    assert _field(error) == field


def test_an_inquiry_is_parsed_into_typed_trimmed_values() -> None:
    inquiry = _inquiry(client_name="  ACME ", channel="hotline", contact_email=" li@acme.example ")
    assert (inquiry.channel, inquiry.client_name, inquiry.contact_email) == (
        Channel.HOTLINE,
        "ACME",
        "li@acme.example",
    )
    assert _inquiry(channel=Channel.ONLINE).channel is Channel.ONLINE


def test_an_inquiry_from_a_lead_comes_through_market_research() -> None:
    with pytest.raises(InvalidArgument, match="market_research"):
        _inquiry(lead_id="L-1")
    assert _inquiry(channel="market_research", lead_id="L-1").lead_id == "L-1"


def test_choices_list_what_is_allowed() -> None:
    lead = NewLead.parse(lead_source="seminar", lead_company="ACME")
    assert lead.source is LeadSource.SEMINAR
    with pytest.raises(InvalidArgument, match="trade_fair, seminar, online_platform") as error:
        NewLead.parse(lead_source="newspaper", lead_company="ACME")
    assert _field(error) == "lead_source"
    with pytest.raises(InvalidArgument, match="is required"):
        NewLead.parse(lead_source=None, lead_company="ACME")


def test_contact_details_are_checked() -> None:
    assert domain.email_address("email", " li@acme.example ") == "li@acme.example"
    assert domain.email_address("email", "") == ""
    assert domain.phone_number("phone", "+86 (755) 1234-5678") == "+86 (755) 1234-5678"
    with pytest.raises(InvalidArgument, match="not an email address") as error:
        domain.email_address("contact_email", "li@acme")
    assert _field(error) == "contact_email"
    with pytest.raises(InvalidArgument, match="not a phone number") as phone:
        domain.phone_number("contact_phone", "1234")
    assert _field(phone) == "contact_phone"


def test_feasibility_verdicts_accept_the_words_and_yes_no_values() -> None:
    for yes in (True, "yes", "true", "1", "feasible", " Feasible "):
        assert domain.feasibility_verdict("x", yes) is True, yes
    for no in (False, "no", "false", "0", "infeasible"):
        assert domain.feasibility_verdict("x", no) is False, no
    with pytest.raises(InvalidArgument) as error:
        domain.feasibility_verdict("technical_feasible", "maybe")
    assert _field(error) == "technical_feasible"
    with pytest.raises(InvalidArgument, match="is required"):
        domain.feasibility_verdict("technical_feasible", None)


def test_a_client_needs_a_name() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewClient.parse(name=" ")
    assert _field(error) == "name"
    assert NewClient.parse(name=" ACME ", industry=" lighting ") == NewClient("ACME", "lighting")


def test_a_contact_needs_details() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewContact.parse(name="Han Meimei")
    assert _field(error) == "email"
    assert NewContact.parse(name=" Han Meimei ", phone="12345").name == "Han Meimei"


def test_requirements_need_needs_goals_and_expected_results() -> None:
    doc = NewRequirements.parse(
        inquiry_id="i-1",
        communication_mode="phone",
        needs=" enter EU ",
        goals="grow",
        expected_results="a market plan",
    )
    assert (doc.needs, doc.communication_mode) == ("enter EU", CommunicationMode.PHONE)
    for missing in ("needs", "goals", "expected_results"):
        values = {"needs": "n", "goals": "g", "expected_results": "e", missing: ""}
        with pytest.raises(InvalidArgument) as error:
            NewRequirements.parse(inquiry_id="i-1", communication_mode="face_to_face", **values)
        assert _field(error) == missing
    with pytest.raises(InvalidArgument) as mode:
        NewRequirements.parse(
            inquiry_id="i-1", communication_mode="letter", needs="n", goals="g", expected_results="e"
        )
    assert _field(mode) == "communication_mode"


def _assessment(technical: bool = True, economic: bool = True, time: bool = True) -> NewFeasibility:
    return NewFeasibility.parse(
        inquiry_id="i-1",
        technical_feasible=technical,
        technical_reason="" if technical else "no specialists",
        economic_feasible=economic,
        economic_reason="" if economic else "budget too small",
        time_feasible=time,
        time_reason="" if time else "deadline too close",
        assessors=["Wang Wu"],
    )


def test_feasible_only_when_every_dimension_is() -> None:
    assert _assessment().feasible
    assert _assessment().summary().startswith("go")
    nogo = _assessment(economic=False, time=False)
    assert not nogo.feasible
    assert nogo.summary() == "no-go: economic: budget too small; time: deadline too close"


def test_the_experts_conclusion_decides_whether_the_project_is_taken_on() -> None:
    """2.2.2: 明確項目是否值得承接 is the experts' conclusion, not a rule over the three dimensions."""

    def concluded(worth: object, reason: str = "fee below cost", **verdicts: bool) -> NewFeasibility:
        base = _assessment(**verdicts)
        return NewFeasibility.parse(
            inquiry_id="i-1",
            technical_feasible=base.technical.feasible,
            technical_reason=base.technical.reason,
            economic_feasible=base.economic.feasible,
            economic_reason=base.economic.reason,
            time_feasible=base.time.feasible,
            time_reason=base.time.reason,
            assessors=["Wang Wu"],
            worth_taking_on=worth,
            worth_reason=reason,
        )

    not_worth = concluded(False)
    assert not not_worth.feasible, "feasible in every dimension and still not worth taking on"
    assert not_worth.summary() == "no-go: fee below cost"
    worth = concluded("yes", "a strategic client", time=False)
    assert worth.feasible
    assert worth.summary() == "go: a strategic client (infeasible — time: deadline too close)"
    with pytest.raises(InvalidArgument) as error:
        concluded(True, " ")
    assert _field(error) == "worth_reason"


def test_an_infeasible_verdict_needs_its_reason() -> None:
    with pytest.raises(InvalidArgument) as error:
        Verdict.parse(Dimension.ECONOMIC, feasible="infeasible", reason="  ")
    assert _field(error) == "economic_reason"
    assert Verdict.parse(Dimension.ECONOMIC, feasible=True).reason == ""


def test_an_assessment_needs_assessors_and_puts_each_verdict_in_its_dimension() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewFeasibility.parse(
            inquiry_id="i-1",
            technical_feasible=True,
            economic_feasible=True,
            time_feasible=True,
            assessors="",
        )
    assert _field(error) == "assessors"
    with pytest.raises(InvalidArgument):
        NewFeasibility.parse(
            inquiry_id="i-1",
            technical_feasible=True,
            economic_feasible=True,
            time_feasible=True,
            assessors=42,
        )
    nogo = _assessment(technical=False)
    assert [v.dimension for v in nogo.verdicts] == list(Dimension)
    assert [v.feasible for v in nogo.verdicts] == [False, True, True]


def test_assessors_come_from_lists_or_comma_separated_text() -> None:
    def assessors(value: object) -> tuple[str, ...]:
        return NewFeasibility.parse(
            inquiry_id="i-1", technical_feasible=1, economic_feasible=1, time_feasible=1, assessors=value
        ).assessors

    assert assessors("Wang Wu, Zhao Liu,\nWang Wu") == ("Wang Wu", "Zhao Liu")
    assert assessors(["A", " ", "B"]) == ("A", "B")


def test_inquiry_states() -> None:
    domain.check_can_record_requirements(InquiryStatus.ACCEPTED)
    with pytest.raises(FailedPrecondition, match=r"2\.2\.1"):
        domain.check_can_record_requirements(InquiryStatus.DECLINED)
    with pytest.raises(FailedPrecondition, match="requirements document"):
        domain.check_can_assess(InquiryStatus.OPEN, has_requirements=False)
    domain.check_can_assess(InquiryStatus.IN_ASSESSMENT, has_requirements=True)
    with pytest.raises(FailedPrecondition, match="declined"):
        domain.check_can_assess(InquiryStatus.DECLINED, has_requirements=True)


def test_inquiry_transitions() -> None:
    assert domain.after_requirements(InquiryStatus.OPEN) is InquiryStatus.IN_ASSESSMENT
    assert domain.after_requirements(InquiryStatus.IN_ASSESSMENT) is InquiryStatus.IN_ASSESSMENT
    assert domain.after_requirements(InquiryStatus.ACCEPTED) is InquiryStatus.ACCEPTED
    with pytest.raises(FailedPrecondition, match=r"2\.2\.1"):
        domain.after_requirements(InquiryStatus.DECLINED)
    assert domain.after_assessment(InquiryStatus.IN_ASSESSMENT, True, feasible=True) is InquiryStatus.ACCEPTED
    assert (
        domain.after_assessment(InquiryStatus.ACCEPTED, True, feasible=False) is InquiryStatus.IN_ASSESSMENT
    )
    with pytest.raises(FailedPrecondition, match="requirements document"):
        domain.after_assessment(InquiryStatus.OPEN, False, feasible=True)
    assert (
        domain.after_decline(InquiryStatus.OPEN, DeclineReason.RISK_AVOIDED, None) is InquiryStatus.DECLINED
    )
    with pytest.raises(FailedPrecondition, match="already declined"):
        domain.after_decline(InquiryStatus.DECLINED, DeclineReason.OFFER_EXPIRED, None)
    assert domain.OPEN_INQUIRY_STATUSES == (InquiryStatus.OPEN, InquiryStatus.IN_ASSESSMENT)


def test_declining() -> None:
    domain.check_can_decline(InquiryStatus.ACCEPTED, DeclineReason.OFFER_REJECTED, True)
    domain.check_can_decline(InquiryStatus.IN_ASSESSMENT, DeclineReason.INFEASIBLE, False)
    with pytest.raises(FailedPrecondition, match="no-go"):
        domain.check_can_decline(InquiryStatus.ACCEPTED, DeclineReason.INFEASIBLE, True)
    with pytest.raises(FailedPrecondition, match="no-go"):
        domain.check_can_decline(InquiryStatus.OPEN, DeclineReason.INFEASIBLE, None)
    with pytest.raises(FailedPrecondition, match="already declined"):
        domain.check_can_decline(InquiryStatus.DECLINED, DeclineReason.RISK_AVOIDED, None)
    assert (
        Decline.parse(inquiry_id="i-1", decline_reason="offer_expired").reason is DeclineReason.OFFER_EXPIRED
    )
    with pytest.raises(InvalidArgument) as error:
        Decline.parse(inquiry_id="i-1", decline_reason="bored")
    assert _field(error) == "decline_reason"


def test_market_research_records() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewMarketInsight.parse()
    assert _field(error) == "industry_trends"
    assert NewMarketInsight.parse(competitors="two new firms").competitors == "two new firms"
    with pytest.raises(InvalidArgument) as lead_error:
        NewLead.parse(lead_source="trade_fair", lead_company=" ")
    assert _field(lead_error) == "lead_company"
    with pytest.raises(FailedPrecondition):
        domain.check_can_convert(LeadStatus.CONVERTED)
    assert domain.after_conversion(LeadStatus.NEW) is LeadStatus.CONVERTED
    with pytest.raises(FailedPrecondition, match=r"2\.1\.1"):
        domain.after_conversion(LeadStatus.CONVERTED)


def test_relationship_records() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewRevisit.parse(client_id="c-1", revisit_method="phone", revisit_findings="")
    assert _field(error) == "revisit_findings"
    with pytest.raises(InvalidArgument) as referral:
        NewOpportunity.parse(
            client_id="c-1", opportunity="their sister company needs an audit", opportunity_kind="referral"
        )
    assert _field(referral) == "referred_company"
    assert NewOpportunity.parse(client_id="c-1", opportunity="phase two").kind is OpportunityKind.FOLLOW_ON
    with pytest.raises(InvalidArgument) as kind:
        NewValueAddedService.parse(client_id="c-1", value_added_service="lunch")
    assert _field(kind) == "value_added_service"
    assert (
        NewValueAddedService.parse(client_id="c-1", value_added_service="industry_news").kind
        is ValueAddedKind.INDUSTRY_NEWS
    )
    with pytest.raises(FailedPrecondition, match=r"5\.3\.1"):
        domain.check_plan_open(RevisitPlanStatus.DONE)
    assert domain.after_revisit(RevisitPlanStatus.PLANNED) is RevisitPlanStatus.DONE
    with pytest.raises(FailedPrecondition, match=r"5\.3\.1"):
        domain.after_revisit(RevisitPlanStatus.DONE)


def test_a_revisit_is_due_from_its_date_until_made() -> None:
    today = date(2025, 3, 1)
    assert domain.revisit_is_due(date(2025, 3, 1), RevisitPlanStatus.PLANNED, today)
    assert domain.revisit_is_due(date(2025, 1, 1), RevisitPlanStatus.PLANNED, today)
    assert not domain.revisit_is_due(date(2025, 3, 2), RevisitPlanStatus.PLANNED, today)
    assert not domain.revisit_is_due(date(2025, 1, 1), RevisitPlanStatus.DONE, today)
    plan = NewRevisitPlan.parse(client_id="c-1", revisit_method="visit", due_date="2025-03-01")
    assert (plan.method, plan.due_date) == (RevisitMethod.VISIT, today)
    with pytest.raises(InvalidArgument, match="YYYY-MM-DD") as error:
        NewRevisitPlan.parse(client_id="c-1", revisit_method="visit", due_date="1 March")
    assert _field(error) == "due_date"
