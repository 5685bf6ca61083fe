"""CRM rules without a database: validation that names the field, and what each state allows."""

from __future__ import annotations

from datetime import date

import pytest

from consultflow.crm import domain
from consultflow.crm.domain import (
    Channel,
    CommunicationMode,
    DeclineReason,
    Dimension,
    InquiryStatus,
    LeadSource,
    NewContact,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewRequirements,
    NewRevisit,
    OpportunityKind,
    RevisitMethod,
    RevisitPlanStatus,
    Verdict,
)
from consultflow.platform.errors import FailedPrecondition, InvalidArgument


def _inquiry(**changes: str) -> NewInquiry:
    values = {
        "client_name": "ACME",
        "client_industry": "lighting",
        "contact_name": "Li Lei",
        "contact_email": "li@acme.example",
        "contact_phone": "",
        "question": "Can you help?",
    }
    values.update(changes)
    return NewInquiry(channel=Channel.EMAIL, **values)


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
    ],
)
def test_inquiry_errors_name_the_field(changes: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        _inquiry(**changes)
    assert _field(error) == field


def test_an_inquiry_from_a_lead_comes_through_market_research() -> None:
    with pytest.raises(InvalidArgument, match="market_research"):
        _inquiry(lead_id="L-1")
    assert NewInquiry(Channel.MARKET_RESEARCH, "ACME", "", "Li", "li@acme.example", "", "q", lead_id="L-1")


def test_choices_list_what_is_allowed() -> None:
    assert domain.parse_choice(LeadSource, "seminar", "lead_source") is LeadSource.SEMINAR
    with pytest.raises(InvalidArgument, match="trade_fair, seminar, online_platform") as error:
        domain.parse_choice(LeadSource, "newspaper", "lead_source")
    assert _field(error) == "lead_source"
    with pytest.raises(InvalidArgument, match="is required"):
        domain.parse_choice(LeadSource, None, "lead_source")


def test_names_come_from_lists_or_comma_separated_text() -> None:
    assert domain.parse_names("Wang Wu, Zhao Liu,\nWang Wu", "assessors") == ("Wang Wu", "Zhao Liu")
    assert domain.parse_names(["A", " ", "B"], "assessors") == ("A", "B")
    assert domain.parse_names(None, "assessors") == ()
    with pytest.raises(InvalidArgument):
        domain.parse_names(42, "assessors")


def test_flags_accept_form_spellings_only() -> None:
    assert domain.parse_flag(True, "x") is True
    assert domain.parse_flag("yes", "x") is True
    assert domain.parse_flag("false", "x") is False
    with pytest.raises(InvalidArgument) as error:
        domain.parse_flag("maybe", "technical_feasible")
    assert _field(error) == "technical_feasible"


def test_a_contact_needs_details() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewContact("Han Meimei")
    assert _field(error) == "email"
    assert NewContact(" Han Meimei ", phone="12345").name == "Han Meimei"


def test_requirements_need_needs_goals_and_expected_results() -> None:
    doc = NewRequirements("i-1", CommunicationMode.PHONE, " enter EU ", "grow", "a market plan")
    assert doc.needs == "enter EU"
    for missing in ("needs", "goals", "expected_results"):
        values = {"needs": "n", "goals": "g", "expected_results": "e", missing: ""}
        with pytest.raises(InvalidArgument) as error:
            NewRequirements("i-1", CommunicationMode.FACE_TO_FACE, **values)
        assert _field(error) == missing


def _assessment(technical: bool = True, economic: bool = True, time: bool = True) -> NewFeasibility:
    return NewFeasibility(
        "i-1",
        Verdict(Dimension.TECHNICAL, technical, "" if technical else "no specialists"),
        Verdict(Dimension.ECONOMIC, economic, "" if economic else "budget too small"),
        Verdict(Dimension.TIME, time, "" if time else "deadline too close"),
        ("Wang Wu",),
    )


def test_feasible_only_when_every_dimension_is() -> None:
    assert _assessment().feasible
    assert _assessment().summary().startswith("go")
    nogo = _assessment(economic=False, time=False)
    assert not nogo.feasible
    assert nogo.summary() == "no-go: economic: budget too small; time: deadline too close"


def test_an_infeasible_verdict_needs_its_reason() -> None:
    with pytest.raises(InvalidArgument) as error:
        Verdict(Dimension.ECONOMIC, False, "  ")
    assert _field(error) == "economic_reason"
    assert Verdict(Dimension.ECONOMIC, True).reason == ""


def test_an_assessment_needs_assessors_and_the_right_dimensions() -> None:
    ok = Verdict(Dimension.TECHNICAL, True)
    with pytest.raises(InvalidArgument) as error:
        NewFeasibility("i-1", ok, Verdict(Dimension.ECONOMIC, True), Verdict(Dimension.TIME, True), ())
    assert _field(error) == "assessors"
    with pytest.raises(InvalidArgument):
        NewFeasibility("i-1", ok, ok, Verdict(Dimension.TIME, True), ("A",))


def test_inquiry_states() -> None:
    domain.check_can_record_requirements(InquiryStatus.ACCEPTED)
    with pytest.raises(FailedPrecondition, match=r"2\.2\.1"):
        domain.check_can_record_requirements(InquiryStatus.DECLINED)
    with pytest.raises(FailedPrecondition, match="requirements document"):
        domain.check_can_assess(InquiryStatus.OPEN, has_requirements=False)
    domain.check_can_assess(InquiryStatus.IN_ASSESSMENT, has_requirements=True)
    with pytest.raises(FailedPrecondition, match="declined"):
        domain.check_can_assess(InquiryStatus.DECLINED, has_requirements=True)


def test_declining() -> None:
    domain.check_can_decline(InquiryStatus.ACCEPTED, DeclineReason.OFFER_REJECTED, True)
    domain.check_can_decline(InquiryStatus.IN_ASSESSMENT, DeclineReason.INFEASIBLE, False)
    with pytest.raises(FailedPrecondition, match="no-go"):
        domain.check_can_decline(InquiryStatus.ACCEPTED, DeclineReason.INFEASIBLE, True)
    with pytest.raises(FailedPrecondition, match="no-go"):
        domain.check_can_decline(InquiryStatus.OPEN, DeclineReason.INFEASIBLE, None)
    with pytest.raises(FailedPrecondition, match="already declined"):
        domain.check_can_decline(InquiryStatus.DECLINED, DeclineReason.RISK_AVOIDED, None)


def test_market_research_records() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewMarketInsight()
    assert _field(error) == "industry_trends"
    assert NewMarketInsight(competitors="two new firms").competitors == "two new firms"
    with pytest.raises(InvalidArgument) as lead_error:
        NewLead(LeadSource.TRADE_FAIR, " ")
    assert _field(lead_error) == "lead_company"
    with pytest.raises(FailedPrecondition):
        domain.check_can_convert(domain.LeadStatus.CONVERTED)


def test_relationship_records() -> None:
    with pytest.raises(InvalidArgument) as error:
        NewRevisit("c-1", RevisitMethod.PHONE, "")
    assert _field(error) == "revisit_findings"
    with pytest.raises(InvalidArgument) as referral:
        NewOpportunity("c-1", "their sister company needs an audit", OpportunityKind.REFERRAL)
    assert _field(referral) == "referred_company"
    assert NewOpportunity("c-1", "phase two").kind is OpportunityKind.FOLLOW_ON
    with pytest.raises(FailedPrecondition, match=r"5\.3\.1"):
        domain.check_plan_open(RevisitPlanStatus.DONE)


def test_a_revisit_is_due_from_its_date_until_made() -> None:
    today = date(2025, 3, 1)
    assert domain.revisit_is_due(date(2025, 3, 1), RevisitPlanStatus.PLANNED, today)
    assert domain.revisit_is_due(date(2025, 1, 1), RevisitPlanStatus.PLANNED, today)
    assert not domain.revisit_is_due(date(2025, 3, 2), RevisitPlanStatus.PLANNED, today)
    assert not domain.revisit_is_due(date(2025, 1, 1), RevisitPlanStatus.DONE, today)
    with pytest.raises(InvalidArgument, match="YYYY-MM-DD"):
        domain.parse_date("1 March", "due_date")
