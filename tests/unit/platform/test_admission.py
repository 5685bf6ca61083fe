"""Overload is answered: a bounded number of calls wait for a database thread, and one whose deadline
passed while it waited is refused without doing its work; both are counted and carry a retry hint."""

from __future__ import annotations

import logging
import time

import pytest

from consultflow.platform.errors import ResourceExhausted, Unavailable
from consultflow.platform.grpcserver import Admission
from consultflow.platform.limits import Limits


def test_calls_beyond_capacity_are_refused_with_a_retry_hint_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admission = Admission(threads=1, limits=Limits(max_queued_calls=1))
    admission.enter("/m")
    admission.enter("/m")
    with caplog.at_level(logging.WARNING), pytest.raises(ResourceExhausted) as refused:
        admission.enter("/m")
    assert refused.value.retry_after == 1.0 and admission.refused == 1
    assert "overloaded: 1 call(s) refused" in caplog.text
    admission.leave()
    admission.enter("/m")  # a freed place is taken again
    assert admission.in_flight == 2


def test_a_call_whose_deadline_passed_while_queued_is_not_started() -> None:
    admission = Admission(threads=1, limits=Limits(min_call_budget_ms=50))
    with pytest.raises(Unavailable) as late:
        admission.start("/m", time.monotonic() + 0.01)
    assert late.value.retry_after == 1.0 and admission.refused == 1
    admission.start("/m", time.monotonic() + 5.0)
    admission.start("/m", None)  # no deadline: always started
    assert admission.refused == 1
