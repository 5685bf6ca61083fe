"""Contracts rules without a database: exact money, totals, commands parsed from raw inputs, and the state
machines of 2.3 and 2.4 (quotations, proposals, contracts, legal review, signatures, distribution)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from consultflow.contracts import domain, money
from consultflow.contracts.domain import (
    Category,
    Clause,
    Clauses,
    ContractStatus,
    Instalment,
    LineItem,
    ProposalContent,
    ProposalStatus,
    QuotationStatus,
    QuotationTerms,
    ReviewVerdict,
    Signatory,
)
from consultflow.platform.errors import FailedPrecondition, InvalidArgument

D = Decimal


def _line(category: Category, unit_price: str, quantity: str = "1") -> LineItem:
    return LineItem(category, "", D(quantity), D(unit_price))


# --- money ----------------------------------------------------------------------------------------


def test_money_is_exact_and_refuses_floats() -> None:
    assert money.parse_money("fee", "1200.50", "CNY") == D("1200.50")
    assert money.parse_money("fee", 1200, "CNY") == D(1200)
    with pytest.raises(InvalidArgument, match="not a floating-point number") as error:
        money.parse_money("consulting_fee", 1200.5, "CNY")
    assert error.value.field == "consulting_fee"
    for bad in ("-1", "1e3", "12,00", "abc", "NaN", True, None):
        with pytest.raises(InvalidArgument):
            money.parse_money("fee", bad, "CNY")
    with pytest.raises(InvalidArgument, match="must not be negative"):
        money.parse_money("fee", "-0.01", "CNY")
    with pytest.raises(InvalidArgument, match="less than"):
        money.parse_money("fee", "1" + "0" * 15, "CNY")


def test_amounts_are_no_finer_than_the_currency_allows() -> None:
    with pytest.raises(InvalidArgument, match="more than 2 decimal places for CNY"):
        money.parse_money("fee", "10.005", "CNY")
    with pytest.raises(InvalidArgument, match="more than 0 decimal places for JPY"):
        money.parse_money("fee", "10.5", "JPY")
    assert money.parse_money("fee", "10.125", "KWD") == D("10.125")
    assert money.minor_unit("EUR") == D("0.01")
    assert money.parse_currency("currency", " cny ") == "CNY"
    with pytest.raises(InvalidArgument):
        money.parse_currency("currency", "yuan")


def test_tax_rate_is_a_fraction() -> None:
    assert money.parse_tax_rate("tax_rate", "0.06") == D("0.06")
    assert money.parse_tax_rate("tax_rate", "") == 0 and money.parse_tax_rate("tax_rate", None) == 0
    with pytest.raises(InvalidArgument, match=r"0\.06 for 6%"):
        money.parse_tax_rate("tax_rate", "6")
    with pytest.raises(InvalidArgument, match="floating-point"):
        money.parse_tax_rate("tax_rate", 0.06)


def test_totals_round_each_line_then_tax_once() -> None:
    lines = (
        _line(Category.CONSULTING_FEE, "1333.33", "3"),
        _line(Category.TRAVEL, "0.015", "1"),  # rounds half up to 0.02
        _line(Category.TRAVEL, "100.00", "2.5"),
        _line(Category.ACCOMMODATION, "0.10", "0.333"),  # 0.0333 → 0.03
    )
    totals = domain.compute_totals(lines, "CNY", D("0.06"))
    assert totals.by_category == {
        Category.CONSULTING_FEE: D("3999.99"),
        Category.TRAVEL: D("250.02"),
        Category.ACCOMMODATION: D("0.03"),
    }
    assert totals.subtotal == D("4250.04")
    assert totals.tax == D("255.00")  # 255.0024
    assert totals.total == D("4505.04")
    assert str(totals.total) == "4505.04"
    yen = domain.compute_totals((_line(Category.CONSULTING_FEE, "1001"),), "JPY", D("0.1"))
    assert (yen.tax, yen.total) == (D("100"), D("1101"))


def _terms(*lines: tuple[str, str], validity_days: object = 30) -> QuotationTerms:
    return QuotationTerms.parse(
        currency="CNY",
        tax_rate="",
        validity_days=validity_days,
        lines=[{"category": category, "unit_price": price} for category, price in lines],
    )


def test_a_quotation_itemises_the_consulting_fee_and_is_valid_for_a_while() -> None:
    terms = _terms(("consulting_fee", "100"))
    assert (terms.currency, terms.tax_rate) == ("CNY", D(0))
    assert terms.lines == (_line(Category.CONSULTING_FEE, "100"),)
    assert terms.valid_until(date(2025, 1, 31)) == date(2025, 3, 2)
    with pytest.raises(InvalidArgument) as no_fee:
        _terms(("travel", "100"))
    assert no_fee.value.field == "consulting_fee"
    with pytest.raises(InvalidArgument) as no_lines:
        _terms()
    assert no_lines.value.field == "lines"
    with pytest.raises(InvalidArgument) as validity:
        _terms(("consulting_fee", "100"), validity_days=0)
    assert validity.value.field == "validity_days"
    with pytest.raises(InvalidArgument, match="whole number of days") as fraction:
        _terms(("consulting_fee", "100"), validity_days=30.5)
    assert fraction.value.field == "validity_days"
    with pytest.raises(InvalidArgument, match="more than 0"):
        _terms(("consulting_fee", "0"))


def test_quotation_terms_from_one_amount_per_cost_category() -> None:
    terms = QuotationTerms.parse_costs(
        currency="cny",
        tax_rate="0.06",
        validity_days="30",
        consulting_fee="70000.00",
        travel_cost="12401.00",
        accommodation_cost="",
        other_cost="0",
    )
    assert terms.currency == "CNY" and terms.validity_days == 30
    assert [(line.category, line.description, line.unit_price) for line in terms.lines] == [
        (Category.CONSULTING_FEE, "consulting fee", D("70000.00")),
        (Category.TRAVEL, "travel", D("12401.00")),
    ], "a cost left empty or 0 is no line"
    assert terms.totals().total == D("87345.06")
    with pytest.raises(InvalidArgument, match="not a floating-point number") as as_float:
        QuotationTerms.parse_costs(currency="CNY", tax_rate="", validity_days=30, consulting_fee=70000.5)
    assert as_float.value.field == "consulting_fee"
    with pytest.raises(InvalidArgument) as negative:
        QuotationTerms.parse_costs(
            currency="CNY", tax_rate="", validity_days=30, consulting_fee="1", travel_cost="-5"
        )
    assert negative.value.field == "travel_cost"
    with pytest.raises(InvalidArgument) as no_fee:
        QuotationTerms.parse_costs(currency="CNY", tax_rate="", validity_days=30, consulting_fee="")
    assert no_fee.value.field == "lines"


def test_line_items_name_the_line() -> None:
    def line(index: int, category: str, quantity: str, unit_price: str) -> LineItem:
        return LineItem.parse(
            index=index,
            currency="CNY",
            category=category,
            description="",
            quantity=quantity,
            unit_price=unit_price,
        )

    with pytest.raises(InvalidArgument) as error:
        line(2, "consulting_fee", "1", "12.345")
    assert error.value.field == "lines[2].unit_price"
    with pytest.raises(InvalidArgument) as category:
        line(0, "lunch", "1", "12")
    assert category.value.field == "lines[0].category"
    assert line(0, "travel", "", "12").quantity == 1
    with pytest.raises(InvalidArgument, match="more than 0"):
        line(0, "travel", "0", "12")


def test_quotation_states() -> None:
    today, valid = date(2025, 5, 1), date(2025, 5, 31)
    domain.check_offer_sendable(QuotationStatus.DRAFT, valid, today, proposal_approved=True)
    with pytest.raises(FailedPrecondition, match=r"2\.3\.2"):
        domain.check_offer_sendable(QuotationStatus.DRAFT, valid, today, proposal_approved=False)
    with pytest.raises(FailedPrecondition, match="valid until"):
        domain.check_offer_sendable(QuotationStatus.DRAFT, date(2025, 4, 30), today, True)
    with pytest.raises(FailedPrecondition, match="only a draft"):
        domain.check_offer_sendable(QuotationStatus.SENT, valid, today, True)
    domain.check_answerable(QuotationStatus.SENT, valid, valid)
    with pytest.raises(FailedPrecondition, match="valid until 2025-05-31"):
        domain.check_answerable(QuotationStatus.SENT, valid, date(2025, 6, 1))
    with pytest.raises(FailedPrecondition, match="sent quotation"):
        domain.check_answerable(QuotationStatus.DRAFT, valid, today)
    domain.check_expirable(QuotationStatus.SENT)
    with pytest.raises(FailedPrecondition):
        domain.check_expirable(QuotationStatus.ACCEPTED)
    domain.check_quotation_revisable(QuotationStatus.SENT)
    for final in (QuotationStatus.ACCEPTED, QuotationStatus.REJECTED, QuotationStatus.EXPIRED):
        with pytest.raises(FailedPrecondition, match="final"):
            domain.check_quotation_revisable(final)


# --- proposals ------------------------------------------------------------------------------------


def test_a_schedule_reads_milestones_from_lines_or_lists() -> None:
    text = "2025-06-30 final report\nfield research done: 2025-04-15\n\n- kick-off 2025-03-01"
    schedule = domain.parse_schedule("schedule", text)
    assert [(m.name, m.due_date.isoformat()) for m in schedule] == [
        ("kick-off", "2025-03-01"),
        ("field research done", "2025-04-15"),
        ("final report", "2025-06-30"),
    ]
    assert domain.parse_schedule("schedule", [{"name": "x", "due_date": "2025-01-01"}])[0].name == "x"
    with pytest.raises(InvalidArgument, match="line 2"):
        domain.parse_schedule("schedule", "2025-01-01 a\nsoon b")
    with pytest.raises(InvalidArgument, match="at least one milestone"):
        domain.parse_schedule("schedule", "")
    with pytest.raises(InvalidArgument) as error:
        domain.parse_schedule("schedule", [{"name": "x", "due_date": "June"}])
    assert error.value.field == "schedule[0].due_date"


def _proposal(project_manager: str, expected_results: object, team_members: object = None) -> ProposalContent:
    return ProposalContent.parse(
        goals="g",
        scope="s",
        methods="m",
        schedule="2025-06-30 report",
        expected_results=expected_results,
        project_manager=project_manager,
        team_members=team_members,
    )


def test_a_proposal_is_led_by_a_project_manager() -> None:
    content = _proposal("Li Si", "report\nshortlist", "Li Si, Wang Wu")
    assert content.team_members == ("Wang Wu",)
    assert content.expected_results == ("report", "shortlist")
    assert [m.name for m in content.schedule] == ["report"]
    with pytest.raises(InvalidArgument) as error:
        _proposal(" ", ("report",))
    assert error.value.field == "project_manager"
    with pytest.raises(InvalidArgument) as results:
        _proposal("Li Si", ())
    assert results.value.field == "expected_results"
    with pytest.raises(InvalidArgument) as goals:
        ProposalContent.parse(
            goals="",
            scope="s",
            methods="m",
            schedule="2025-06-30 report",
            expected_results="report",
            project_manager="Li Si",
        )
    assert goals.value.field == "goals"


def test_proposal_review_states() -> None:
    domain.check_proposal_reviewable(ProposalStatus.DRAFT)
    with pytest.raises(FailedPrecondition, match="revision"):
        domain.check_proposal_reviewable(ProposalStatus.REVISING)
    with pytest.raises(FailedPrecondition, match="already approved"):
        domain.check_proposal_reviewable(ProposalStatus.APPROVED)
    domain.check_proposal_revisable(ProposalStatus.REVISING)
    with pytest.raises(FailedPrecondition):
        domain.check_proposal_revisable(ProposalStatus.APPROVED)
    with pytest.raises(InvalidArgument) as error:
        domain.check_review(ReviewVerdict.REVISE, " ")
    assert error.value.field == "review_comments"
    domain.check_review(ReviewVerdict.APPROVED, "")
    assert domain.status_after_proposal_review(ReviewVerdict.APPROVED) is ProposalStatus.APPROVED
    assert domain.status_after_proposal_review(ReviewVerdict.REVISE) is ProposalStatus.REVISING


# --- contracts ------------------------------------------------------------------------------------


def test_payment_terms_are_instalments_adding_up_to_100_percent() -> None:
    terms = domain.parse_instalments(
        "payment_terms", "30% on signing\n40 % - at the interim report\n30%: on acceptance"
    )
    assert terms == (
        Instalment(D(30), "on signing"),
        Instalment(D(40), "at the interim report"),
        Instalment(D(30), "on acceptance"),
    )
    assert domain.render_instalments(terms).splitlines()[0] == "30% on signing"
    assert (
        domain.parse_instalments("payment_terms", [{"percent": "100", "due": "on delivery"}])[0].percent
        == 100
    )
    assert domain.parse_instalments("payment_terms", "") == ()
    with pytest.raises(InvalidArgument, match="add up to 90%"):
        domain.parse_instalments("payment_terms", "50% now\n40% later")
    with pytest.raises(InvalidArgument, match="line 1"):
        domain.parse_instalments("payment_terms", "half now")
    with pytest.raises(InvalidArgument, match="0%"):
        domain.parse_instalments("payment_terms", "0% now\n100% later")


def test_instalment_amounts_sum_to_the_contract_value_exactly() -> None:
    thirds = domain.parse_instalments("payment_terms", "33.33% a\n33.33% b\n33.34% c")
    amounts = domain.instalment_amounts(thirds, D("1000.00"), "CNY")
    assert amounts == [D("333.30"), D("333.30"), D("333.40")]
    uneven = domain.instalment_amounts(
        domain.parse_instalments("payment_terms", "50% a\n50% b"), D("0.03"), "CNY"
    )
    assert uneven == [D("0.02"), D("0.01")] and sum(uneven) == D("0.03")


def _complete() -> Clauses:
    return Clauses.parse(
        service_content="market entry strategy",
        service_start="2025-03-01",
        service_end="2025-08-31",
        payment_terms="100% on acceptance",
        confidentiality="both parties keep …",
        breach_liability="damages capped at …",
    )


def test_a_draft_names_the_clauses_it_lacks() -> None:
    assert _complete().missing() == []
    assert (_complete().service_start, _complete().service_end) == (date(2025, 3, 1), date(2025, 8, 31))
    partial = Clauses.parse(service_content=" x ")
    assert partial.service_content == "x"
    assert partial.missing() == [
        Clause.SERVICE_PERIOD,
        Clause.PAYMENT_TERMS,
        Clause.CONFIDENTIALITY,
        Clause.BREACH_LIABILITY,
    ]
    with pytest.raises(InvalidArgument) as half_period:
        Clauses.parse(service_start="2025-01-01")
    assert half_period.value.field == "service_end"
    with pytest.raises(InvalidArgument) as no_start:
        Clauses.parse(service_end="2025-01-01")
    assert no_start.value.field == "service_start"
    with pytest.raises(InvalidArgument, match="before service_start"):
        Clauses.parse(service_start="2025-02-01", service_end="2025-01-01")
    with pytest.raises(InvalidArgument) as bad_date:
        Clauses.parse(service_start="March", service_end="2025-01-01")
    assert bad_date.value.field == "service_start"
    revised = partial.revised(Clauses.parse(confidentiality="new"))
    assert (revised.service_content, revised.confidentiality) == ("x", "new")


def test_legal_review_refuses_an_incomplete_draft() -> None:
    domain.check_submittable(ContractStatus.DRAFT, _complete())
    with pytest.raises(FailedPrecondition, match="lacks confidentiality, breach_liability"):
        domain.check_submittable(
            ContractStatus.DRAFT,
            Clauses.parse(
                service_content="x",
                payment_terms="100% on acceptance",
                service_start="2025-01-01",
                service_end="2025-02-01",
            ),
        )
    with pytest.raises(FailedPrecondition, match=r"2\.4\.3: revise"):
        domain.check_submittable(ContractStatus.REVISING, _complete())
    with pytest.raises(FailedPrecondition, match="only a draft"):
        domain.check_submittable(ContractStatus.APPROVED, _complete())
    domain.check_reviewable(ContractStatus.IN_LEGAL_REVIEW)
    with pytest.raises(FailedPrecondition, match="not under legal review"):
        domain.check_reviewable(ContractStatus.DRAFT)
    assert domain.missing_for_review(ContractStatus.DRAFT, Clauses.parse(service_content="x")) == [
        Clause.SERVICE_PERIOD,
        Clause.PAYMENT_TERMS,
        Clause.CONFIDENTIALITY,
        Clause.BREACH_LIABILITY,
    ]
    assert domain.missing_for_review(ContractStatus.DRAFT, _complete()) == []
    assert domain.missing_for_review(ContractStatus.REVISING, Clauses.parse()) == [], "revised, not refused"


def test_a_contract_follows_an_accepted_quotation_and_its_approved_proposal() -> None:
    accepted, approved = QuotationStatus.ACCEPTED, ProposalStatus.APPROVED
    domain.check_contract_draftable(accepted, approved, same_quotation=True)
    for quotation in (QuotationStatus.DRAFT, QuotationStatus.SENT, QuotationStatus.REJECTED):
        with pytest.raises(FailedPrecondition, match=r"^2\.4\.1: .*; it is " + quotation.value):
            domain.check_contract_draftable(quotation, approved, same_quotation=True)
    with pytest.raises(InvalidArgument) as other:
        domain.check_contract_draftable(accepted, ProposalStatus.DRAFT, same_quotation=False)
    assert other.value.field == "proposal_id"
    with pytest.raises(FailedPrecondition, match=r"^2\.3\.2"):
        domain.check_contract_draftable(accepted, ProposalStatus.REVISING, same_quotation=True)


def test_a_contract_is_negotiated_while_a_draft_or_revising() -> None:
    domain.check_negotiable(ContractStatus.DRAFT)
    domain.check_negotiable(ContractStatus.REVISING)
    with pytest.raises(FailedPrecondition, match="in legal review is not open to negotiation"):
        domain.check_negotiable(ContractStatus.IN_LEGAL_REVIEW)
    domain.check_revisable(ContractStatus.REVISING)
    with pytest.raises(FailedPrecondition, match=r"2\.4\.3"):
        domain.check_revisable(ContractStatus.DRAFT)


def test_legal_opinions_name_their_clause() -> None:
    opinions = domain.parse_opinions(
        "legal_opinions",
        "payment terms: the second instalment needs a date\n"
        "Confidentiality: add a term\n"
        "looks fine otherwise",
    )
    assert [(o.clause, o.opinion) for o in opinions] == [
        ("payment_terms", "the second instalment needs a date"),
        ("confidentiality", "add a term"),
        ("general", "looks fine otherwise"),
    ]
    with pytest.raises(InvalidArgument) as error:
        domain.parse_opinions("legal_opinions", [{"clause": "price", "opinion": "x"}])
    assert error.value.field == "legal_opinions[0].clause"
    with pytest.raises(InvalidArgument) as revise:
        domain.check_legal_review(ReviewVerdict.REVISE, ())
    assert revise.value.field == "legal_opinions"
    domain.check_legal_review(ReviewVerdict.APPROVED, ())
    assert domain.status_after_legal_review(ReviewVerdict.APPROVED) is ContractStatus.APPROVED
    assert domain.status_after_legal_review(ReviewVerdict.REVISE) is ContractStatus.REVISING


def test_no_signing_without_legal_approval() -> None:
    for status in (ContractStatus.DRAFT, ContractStatus.IN_LEGAL_REVIEW, ContractStatus.REVISING):
        with pytest.raises(
            FailedPrecondition, match=r"only after the legal department approved it \(2\.4\.2\)"
        ):
            domain.check_firm_can_sign(status)
        with pytest.raises(FailedPrecondition, match=r"2\.4\.3"):
            domain.check_client_can_sign(status)
    domain.check_firm_can_sign(ContractStatus.APPROVED)
    domain.check_firm_can_sign(ContractStatus.SIGNED_BY_CLIENT)
    with pytest.raises(FailedPrecondition, match="already signed"):
        domain.check_firm_can_sign(ContractStatus.SIGNED_BY_FIRM)
    with pytest.raises(InvalidArgument) as error:
        Signatory.parse(signatory="Zhang San", signatory_title="")
    assert error.value.field == "signatory_title"
    with pytest.raises(InvalidArgument) as nobody:
        Signatory.parse(signatory=" ", signatory_title="CFO")
    assert nobody.value.field == "signatory"
    assert Signatory.parse(signatory=" Ms Chen ", signatory_title="CFO") == Signatory("Ms Chen", "CFO")


def test_signed_once_both_parties_signed_in_either_order() -> None:
    after = domain.status_after_signature
    assert after(ContractStatus.APPROVED, by_firm=True) is ContractStatus.SIGNED_BY_FIRM
    assert after(ContractStatus.SIGNED_BY_FIRM, by_firm=False) is ContractStatus.SIGNED
    assert after(ContractStatus.APPROVED, by_firm=False) is ContractStatus.SIGNED_BY_CLIENT
    assert after(ContractStatus.SIGNED_BY_CLIENT, by_firm=True) is ContractStatus.SIGNED
    assert domain.client_has_signed(ContractStatus.SIGNED_BY_CLIENT)
    assert not domain.client_has_signed(ContractStatus.SIGNED_BY_FIRM)
    domain.check_client_can_sign(ContractStatus.SIGNED_BY_FIRM)


def test_the_cost_accounting_states_the_firms_cost_per_category() -> None:
    """2.3.1: 公司成本核算, in the quotation's categories; none given is a quotation without it."""
    assert domain.CostAccounting.parse({}, "CNY") is None
    costs = domain.CostAccounting.parse(
        {"consulting_cost_basis": "52000.00", "travel_cost_basis": "1200.50", "other_cost_basis": ""}, "CNY"
    )
    assert costs is not None and costs.total == Decimal("53200.50")
    assert [c for c, _ in costs.costs] == list(domain.Category)
    with pytest.raises(InvalidArgument) as missing:
        domain.CostAccounting.parse({"travel_cost_basis": "100"}, "CNY")
    assert missing.value.field == "consulting_cost_basis"
    with pytest.raises(InvalidArgument) as negative:
        domain.CostAccounting.parse({"consulting_cost_basis": "-1"}, "CNY")
    assert negative.value.field == "consulting_cost_basis"


def test_the_four_foci_of_the_legal_review_are_recorded_each_or_none() -> None:
    """2.4.2: completeness, accuracy, legality and risk safeguards, each with a verdict and an opinion."""
    foci = list(domain.LegalFocus)
    assert [f.value for f in foci] == ["completeness", "accuracy", "legality", "risk_safeguards"]
    assert domain.parse_findings({f: None for f in foci}, {}) == ()
    findings = domain.parse_findings(
        {f: "approved" for f in foci} | {domain.LegalFocus.LEGALITY: "revise"},
        {f: f"{f.value} ok" for f in foci},
    )
    assert [(f.focus, f.verdict) for f in findings][2] == (domain.LegalFocus.LEGALITY, ReviewVerdict.REVISE)
    with pytest.raises(InvalidArgument) as missing:
        domain.parse_findings({domain.LegalFocus.ACCURACY: "approved"}, {})
    assert missing.value.field == "completeness_verdict"
    with pytest.raises(InvalidArgument) as unexplained:
        domain.parse_findings({f: "revise" for f in foci}, {})
    assert unexplained.value.field == "completeness_opinion"
    with pytest.raises(InvalidArgument, match="legality need revision"):
        domain.check_legal_review(ReviewVerdict.APPROVED, (), findings)
    domain.check_legal_review(ReviewVerdict.REVISE, (), findings)


def test_only_a_contract_waiting_for_the_client_is_reopened() -> None:
    """2.4.3: a refusal or the end of the signing period sends it back to negotiation (2.4.1)."""
    domain.check_reopenable(ContractStatus.APPROVED)
    domain.check_reopenable(ContractStatus.SIGNED_BY_FIRM)
    for signed in (ContractStatus.SIGNED_BY_CLIENT, ContractStatus.SIGNED, ContractStatus.DISTRIBUTED):
        with pytest.raises(FailedPrecondition, match="the client has signed"):
            domain.check_reopenable(signed)
    for status in (ContractStatus.DRAFT, ContractStatus.IN_LEGAL_REVIEW, ContractStatus.REVISING):
        with pytest.raises(FailedPrecondition, match="waiting for the client's signature"):
            domain.check_reopenable(status)


def test_distribution_follows_both_signatures() -> None:
    domain.check_distributable(ContractStatus.SIGNED)
    with pytest.raises(FailedPrecondition, match="both parties signed"):
        domain.check_distributable(ContractStatus.SIGNED_BY_FIRM)
    with pytest.raises(FailedPrecondition, match="already distributed"):
        domain.check_distributable(ContractStatus.DISTRIBUTED)
    domain.check_acknowledgeable(ContractStatus.DISTRIBUTED, "finance", ["finance", "legal"])
    with pytest.raises(FailedPrecondition, match="did not receive"):
        domain.check_acknowledgeable(ContractStatus.DISTRIBUTED, "hr", ["finance"])
