"""Timers coming due: waking the instances that wait on them, and starting instances by timer start events.

The same rows carry engine work a step left for later (step.py, `CONTINUATION`): one loop runs everything
that is due, so an instance with a long run of engine work takes turns with every other due instance.
With several replicas each scans only the partitions it owns (`owned`, platform/claims.py).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import delete, func, select, update

from consultflow.orchestrator import engine, observability
from consultflow.orchestrator.host import DefinitionRef, InstanceHost
from consultflow.orchestrator.orm import StartTimer, Timer
from consultflow.orchestrator.parking import START_RETRY_DELAY, not_parked, start_failed_for_good
from consultflow.orchestrator.step import CONTINUATION, Step, rowcount
from consultflow.orchestrator.timer_events import skip_missed
from consultflow.platform.claims import EVERYTHING, Owned
from consultflow.platform.faults import crash_point
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)

MAX_CATCH_UP_ROUNDS = 100
"""Cycles a timer that fell behind may catch up in one wake (one per engine round)."""
MAX_START_TIMERS_PER_ROUND = 100


class AlreadyFired(Exception):
    """Another orchestrator fired this start timer first."""


def next_timer_due(host: InstanceHost, owned: Owned = EVERYTHING) -> datetime | None:
    """The earliest due time of any timer or timer start event in the owned partitions (the scheduler
    sleeps until then)."""
    with host.db.read() as session:
        candidates = [
            # the earliest in due order that no parked instance holds (a parked one's overdue timer would
            # otherwise wake the scheduler without pause)
            aware(
                session.scalar(
                    select(Timer.due_at)
                    .where(owned.where(Timer.claim_slot), not_parked(Timer.instance_id))
                    .order_by(Timer.due_at)
                    .limit(1)
                )
            ),
            aware(
                session.scalar(select(func.min(StartTimer.due_at)).where(owned.where(StartTimer.claim_slot)))
            ),
        ]
    due = [c for c in candidates if c is not None]
    return min(due) if due else None


def fire_due_timers(host: InstanceHost, limit: int = 500, owned: Owned = EVERYTHING) -> int:
    """Wakes instances whose timers are due; cycle timers that fell behind catch up one cycle each."""
    now = host.clock.now()
    with host.db.read() as session:
        instance_ids = list(
            session.scalars(
                select(Timer.instance_id)
                .where(Timer.due_at <= now, owned.where(Timer.claim_slot), not_parked(Timer.instance_id))
                .group_by(Timer.instance_id)
                # The longest overdue first: more than `limit` instances with continuation rows (each due
                # again soon after its step) would otherwise take every round from the ones behind them.
                .order_by(func.min(Timer.due_at))
                .limit(limit)
            )
        )
    fired = 0
    for instance_id in instance_ids:
        try:
            host.step(instance_id, wake)
            crash_point("orchestrator.timer.fired")
            fired += 1
        except Exception:
            log.exception("firing timers of %s failed", instance_id)
    return fired


def wake(step: Step) -> None:
    """Continues engine work a previous step yielded (its continuation row), then lets the engine fire
    what is due, round by round, until nothing due is left or this step's share of engine work is spent.

    A wake that finds nothing to do (another replica fired the timer first) skips: it writes no revision.
    """
    advanced = CONTINUATION in step.waits.timers
    if advanced:
        step.advance()
    previous: set[tuple[str, datetime]] = set()
    for _ in range(MAX_CATCH_UP_ROUNDS):
        if step.continues:
            return  # the rest, due timers included, in the next step (its continuation row is due soon)
        now = step.env.clock.now()
        timers = engine.snapshot(step.workflow).timers
        due = [t for t in timers if t.due_at <= now]
        this_round = {(t.task_id, t.due_at) for t in due}
        if not due or this_round == previous:
            if not advanced and {t.task_id: t.due_at.isoformat() for t in timers} == step.waits.timers:
                step.skip()  # its timer rows already say what the engine waits for: nothing to write
            return  # nothing due, or the engine did not fire it (due this very instant: Spiff waits for
            # the clock to pass it), so it stays for the next wake instead of spinning here
        previous = this_round
        for timer in due:
            step.history("timer.fired", timer.element_id, detail=timer.due_at.isoformat())
            observability.timer_fired(timer.due_at, now)
        step.advance()
        advanced = True


def fire_start_timers(host: InstanceHost, owned: Owned = EVERYTHING) -> int:
    """Starts an instance for every due timer start event and schedules its next firing."""
    now = host.clock.now()
    with host.db.read() as session:
        due = list(
            session.scalars(
                select(StartTimer)
                .where(StartTimer.due_at <= now, owned.where(StartTimer.claim_slot))
                .limit(MAX_START_TIMERS_PER_ROUND)
            )
        )
    started = 0
    for timer in due:
        definition = DefinitionRef(timer.definition_id, timer.process_id)
        try:
            host.start(
                definition,
                {},
                "",
                partial(start_by_timer, timer=timer),
                start=engine.timer_start(timer.element_id),
            )
            started += 1
        except AlreadyFired:
            continue
        except Exception as error:
            log.exception("starting %s by its timer failed", timer.definition_id)
            if start_failed_for_good("timer", error):
                _postpone(host, timer, now)
    return started


def _postpone(host: InstanceHost, timer: StartTimer, now: datetime) -> None:
    """Moves a failed firing back by START_RETRY_DELAY, unless another orchestrator already moved it."""
    with host.uow_factory() as uow:
        uow.session.execute(
            update(StartTimer)
            .where(
                StartTimer.definition_id == timer.definition_id,
                StartTimer.element_id == timer.element_id,
                StartTimer.due_at == timer.due_at,
            )
            .values(due_at=now + START_RETRY_DELAY)
            .execution_options(synchronize_session=False)
        )
        uow.commit()


def start_by_timer(step: Step, timer: StartTimer) -> None:
    """The first action of an instance a start timer creates: claim this firing, schedule the next one,
    and let the start event pass."""
    this_firing = (
        StartTimer.definition_id == timer.definition_id,
        StartTimer.element_id == timer.element_id,
        StartTimer.due_at == timer.due_at,
    )
    due_at = aware(timer.due_at)
    assert due_at is not None
    # A cycle that fell behind (the orchestrator was down) catches up at most `max_timer_catch_up` of the
    # firings it missed, one a round; the older ones are skipped (timer_events.skip_missed).
    interval = timer.interval_seconds
    keep = step.env.limits.max_timer_catch_up
    caught_up, skipped = skip_missed(due_at, interval, step.env.clock.now(), keep)
    remaining = timer.remaining if timer.remaining < 0 else timer.remaining - skipped
    if interval <= 0 or (remaining <= 0 and timer.remaining >= 0):
        claimed = step.session.execute(delete(StartTimer).where(*this_firing))
    else:
        claimed = step.session.execute(
            update(StartTimer)
            .where(*this_firing)
            .values(
                due_at=caught_up + timedelta(seconds=interval),
                remaining=remaining - 1 if remaining > 0 else -1,
            )
            .execution_options(synchronize_session=False)
        )
    if rowcount(claimed) != 1:
        raise AlreadyFired()
    engine.fire_start_timers(step.workflow)
    step.history("timer.fired", timer.element_id, detail=f"start event due {due_at}")
    step.advance()
