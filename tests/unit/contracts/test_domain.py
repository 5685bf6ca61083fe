"""Contracts rules without a database: exact money, totals, and the state machines of 2.3 and 2.4."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from consultflow.contracts import domain
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
    assert domain.parse_money("1200.50", "fee", "CNY") == D("1200.50")
    assert domain.parse_money(1200, "fee", "CNY") == D(1200)
    with pytest.raises(InvalidArgument, match="not a floating-point number") as error:
        domain.parse_money(1200.5, "consulting_fee", "CNY")
    assert error.value.field == "consulting_fee"
    for bad in ("-1", "1e3", "12,00", "abc", "NaN", True, None):
        with pytest.raises(InvalidArgument):
            domain.parse_money(bad, "fee", "CNY")
    with pytest.raises(InvalidArgument, match="must not be negative"):
        domain.parse_money("-0.01", "fee", "CNY")
    with pytest.raises(InvalidArgument, match="less than"):
        domain.parse_money("1" + "0" * 15, "fee", "CNY")


def test_amounts_are_no_finer_than_the_currency_allows() -> None:
    with pytest.raises(InvalidArgument, match="more than 2 decimal places for CNY"):
        domain.parse_money("10.005", "fee", "CNY")
    with pytest.raises(InvalidArgument, match="more than 0 decimal places for JPY"):
        domain.parse_money("10.5", "fee", "JPY")
    assert domain.parse_money("10.125", "fee", "KWD") == D("10.125")
    assert domain.minor_unit("EUR") == D("0.01")
    assert domain.parse_currency(" cny ") == "CNY"
    with pytest.raises(InvalidArgument):
        domain.parse_currency("yuan")


def test_tax_rate_is_a_fraction() -> None:
    assert domain.parse_tax_rate("0.06") == D("0.06")
    assert domain.parse_tax_rate("") == 0 and domain.parse_tax_rate(None) == 0
    with pytest.raises(InvalidArgument, match=r"0\.06 for 6%"):
        domain.parse_tax_rate("6")
    with pytest.raises(InvalidArgument, match="floating-point"):
        domain.parse_tax_rate(0.06)


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


def test_a_quotation_itemises_the_consulting_fee_and_is_valid_for_a_while() -> None:
    terms = QuotationTerms("CNY", D(0), 30, (_line(Category.CONSULTING_FEE, "100"),))
    assert terms.valid_until(date(2025, 1, 31)) == date(2025, 3, 2)
    with pytest.raises(InvalidArgument) as no_fee:
        QuotationTerms("CNY", D(0), 30, (_line(Category.TRAVEL, "100"),))
    assert no_fee.value.field == "consulting_fee"
    with pytest.raises(InvalidArgument) as no_lines:
        QuotationTerms("CNY", D(0), 30, ())
    assert no_lines.value.field == "lines"
    with pytest.raises(InvalidArgument) as validity:
        QuotationTerms("CNY", D(0), 0, (_line(Category.CONSULTING_FEE, "100"),))
    assert validity.value.field == "validity_days"
    with pytest.raises(InvalidArgument, match="more than 0"):
        QuotationTerms("CNY", D(0), 30, (_line(Category.CONSULTING_FEE, "0"),))


def test_line_items_name_the_line() -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.line_item("consulting_fee", "", "1", "12.345", "CNY", 2)
    assert error.value.field == "lines[2].unit_price"
    with pytest.raises(InvalidArgument) as category:
        domain.line_item("lunch", "", "1", "12", "CNY", 0)
    assert category.value.field == "lines[0].category"
    assert domain.line_item("travel", "trains", "", "12", "CNY", 0).quantity == 1
    with pytest.raises(InvalidArgument, match="more than 0"):
        domain.line_item("travel", "", "0", "12", "CNY", 0)


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
    schedule = domain.parse_schedule(text)
    assert [(m.name, m.due_date.isoformat()) for m in schedule] == [
        ("kick-off", "2025-03-01"),
        ("field research done", "2025-04-15"),
        ("final report", "2025-06-30"),
    ]
    assert domain.parse_schedule([{"name": "x", "due_date": "2025-01-01"}])[0].name == "x"
    with pytest.raises(InvalidArgument, match="line 2"):
        domain.parse_schedule("2025-01-01 a\nsoon b")
    with pytest.raises(InvalidArgument, match="at least one milestone"):
        domain.parse_schedule("")
    with pytest.raises(InvalidArgument) as error:
        domain.parse_schedule([{"name": "x", "due_date": "June"}])
    assert error.value.field == "schedule[0].due_date"


def test_a_proposal_is_led_by_a_project_manager() -> None:
    schedule = domain.parse_schedule("2025-06-30 report")
    content = ProposalContent("g", "s", "m", schedule, ("report",), "Li Si", ("Li Si", "Wang Wu"))
    assert content.team_members == ("Wang Wu",)
    with pytest.raises(InvalidArgument) as error:
        ProposalContent("g", "s", "m", schedule, ("report",), " ")
    assert error.value.field == "project_manager"
    with pytest.raises(InvalidArgument) as results:
        ProposalContent("g", "s", "m", schedule, (), "Li Si")
    assert results.value.field == "expected_results"


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


# --- contracts ------------------------------------------------------------------------------------


def test_payment_terms_are_instalments_adding_up_to_100_percent() -> None:
    terms = domain.parse_instalments("30% on signing\n40 % - at the interim report\n30%: on acceptance")
    assert terms == (
        Instalment(D(30), "on signing"),
        Instalment(D(40), "at the interim report"),
        Instalment(D(30), "on acceptance"),
    )
    assert domain.render_instalments(terms).splitlines()[0] == "30% on signing"
    assert domain.parse_instalments([{"percent": "100", "due": "on delivery"}])[0].percent == 100
    assert domain.parse_instalments("") == ()
    with pytest.raises(InvalidArgument, match="add up to 90%"):
        domain.parse_instalments("50% now\n40% later")
    with pytest.raises(InvalidArgument, match="line 1"):
        domain.parse_instalments("half now")
    with pytest.raises(InvalidArgument, match="0%"):
        domain.parse_instalments("0% now\n100% later")


def test_instalment_amounts_sum_to_the_contract_value_exactly() -> None:
    thirds = domain.parse_instalments("33.33% a\n33.33% b\n33.34% c")
    amounts = domain.instalment_amounts(thirds, D("1000.00"), "CNY")
    assert amounts == [D("333.30"), D("333.30"), D("333.40")]
    uneven = domain.instalment_amounts(domain.parse_instalments("50% a\n50% b"), D("0.03"), "CNY")
    assert uneven == [D("0.02"), D("0.01")] and sum(uneven) == D("0.03")


def _complete() -> Clauses:
    return Clauses(
        service_content="market entry strategy",
        service_start=date(2025, 3, 1),
        service_end=date(2025, 8, 31),
        payment_terms=domain.parse_instalments("100% on acceptance"),
        confidentiality="both parties keep …",
        breach_liability="damages capped at …",
    )


def test_a_draft_names_the_clauses_it_lacks() -> None:
    assert _complete().missing() == []
    partial = Clauses(service_content="x")
    assert partial.missing() == [
        Clause.SERVICE_PERIOD,
        Clause.PAYMENT_TERMS,
        Clause.CONFIDENTIALITY,
        Clause.BREACH_LIABILITY,
    ]
    with pytest.raises(InvalidArgument) as half_period:
        Clauses(service_start=date(2025, 1, 1))
    assert half_period.value.field == "service_end"
    with pytest.raises(InvalidArgument, match="before service_start"):
        Clauses(service_start=date(2025, 2, 1), service_end=date(2025, 1, 1))
    revised = partial.revised(Clauses(confidentiality="new"))
    assert (revised.service_content, revised.confidentiality) == ("x", "new")


def test_legal_review_refuses_an_incomplete_draft() -> None:
    domain.check_submittable(ContractStatus.DRAFT, _complete())
    with pytest.raises(FailedPrecondition, match="lacks confidentiality, breach_liability"):
        domain.check_submittable(
            ContractStatus.DRAFT,
            Clauses(
                service_content="x",
                payment_terms=_complete().payment_terms,
                service_start=date(2025, 1, 1),
                service_end=date(2025, 2, 1),
            ),
        )
    with pytest.raises(FailedPrecondition, match=r"2\.4\.3: revise"):
        domain.check_submittable(ContractStatus.REVISING, _complete())
    with pytest.raises(FailedPrecondition, match="only a draft"):
        domain.check_submittable(ContractStatus.APPROVED, _complete())
    domain.check_reviewable(ContractStatus.IN_LEGAL_REVIEW)
    with pytest.raises(FailedPrecondition, match="not under legal review"):
        domain.check_reviewable(ContractStatus.DRAFT)


def test_legal_opinions_name_their_clause() -> None:
    opinions = domain.parse_opinions(
        "payment terms: the second instalment needs a date\nConfidentiality: add a term\nlooks fine otherwise"
    )
    assert [(o.clause, o.opinion) for o in opinions] == [
        ("payment_terms", "the second instalment needs a date"),
        ("confidentiality", "add a term"),
        ("general", "looks fine otherwise"),
    ]
    with pytest.raises(InvalidArgument) as error:
        domain.parse_opinions([{"clause": "price", "opinion": "x"}])
    assert error.value.field == "legal_opinions[0].clause"
    with pytest.raises(InvalidArgument) as revise:
        domain.check_legal_review(ReviewVerdict.REVISE, ())
    assert revise.value.field == "legal_opinions"


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
        Signatory("Zhang San", "")
    assert error.value.field == "signatory_title"


def test_signed_once_both_parties_signed_in_either_order() -> None:
    after = domain.status_after_signature
    assert after(ContractStatus.APPROVED, by_firm=True) is ContractStatus.SIGNED_BY_FIRM
    assert after(ContractStatus.SIGNED_BY_FIRM, by_firm=False) is ContractStatus.SIGNED
    assert after(ContractStatus.APPROVED, by_firm=False) is ContractStatus.SIGNED_BY_CLIENT
    assert after(ContractStatus.SIGNED_BY_CLIENT, by_firm=True) is ContractStatus.SIGNED


def test_distribution_follows_both_signatures() -> None:
    domain.check_distributable(ContractStatus.SIGNED)
    with pytest.raises(FailedPrecondition, match="both parties signed"):
        domain.check_distributable(ContractStatus.SIGNED_BY_FIRM)
    with pytest.raises(FailedPrecondition, match="already distributed"):
        domain.check_distributable(ContractStatus.DISTRIBUTED)
    domain.check_acknowledgeable(ContractStatus.DISTRIBUTED, "finance", ["finance", "legal"])
    with pytest.raises(FailedPrecondition, match="did not receive"):
        domain.check_acknowledgeable(ContractStatus.DISTRIBUTED, "hr", ["finance"])
