"""The engine part of instance migration and modification (migration.py), on real SpiffWorkflow and real
diagrams: waits carry over as the same tasks, predictions follow the new version, removed elements
are refused while waited at and retired once finished, subprocesses move with their caller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, migration
from consultflow.orchestrator.migration import MappingRule
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.orchestrator.usecases.migrations import ElementMapping, MigrationPlan
from consultflow.platform.clock import ManualClock
from consultflow.platform.errors import InvalidArgument
from tests.support.bpmn_builder import bpmn, definitions, message, process_xml, service_task

START = datetime(2026, 3, 1, tzinfo=UTC)


def timer(element_id: str, duration: str) -> str:
    return (
        f'<intermediateCatchEvent id="{element_id}">'
        f'<timerEventDefinition><timeDuration>"{duration}"</timeDuration></timerEventDefinition>'
        "</intermediateCatchEvent>"
    )


def waits(
    approve: str = "approve", duration: str = "PT5M", after_approve: str = "", op: str = "crm.work"
) -> bytes:
    """Four waits in parallel: a job, a user task, a timer and a message; `after_approve` adds a user task
    after the user task."""
    extra_node = f'<userTask id="{after_approve}"/>' if after_approve else ""
    approve_flow = (
        f"{approve} -> {after_approve}\n{after_approve} -> e2" if after_approve else f"{approve} -> e2"
    )
    return bpmn(
        "p",
        f"""<startEvent id="s"/><parallelGateway id="split"/>
        {service_task("work", op)}
        <userTask id="{approve}" name="Approve"/>{extra_node}
        {timer("wait", duration)}
        <receiveTask id="reply" messageRef="m_reply"/>
        <endEvent id="e1"/><endEvent id="e2"/><endEvent id="e3"/><endEvent id="e4"/>""",
        "s -> split\nsplit -> work\nsplit -> " + approve + "\nsplit -> wait\nsplit -> reply\n"
        f"work -> e1\n{approve_flow}\nwait -> e3\nreply -> e4",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


def specs_of(xml: bytes, process_id: str = "p") -> engine.ProcessSpecs:
    return engine.parse_resources({f"{process_id}.bpmn": xml})[process_id]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


def started(specs: engine.ProcessSpecs, clock: ManualClock) -> BpmnWorkflow:
    workflow = engine.new_workflow(specs, ClockedScriptEngine(clock=clock), {"engagement_id": "E7"})
    workflow.do_engine_steps()
    return workflow


def reloaded(workflow: BpmnWorkflow, specs: engine.ProcessSpecs, clock: ManualClock) -> BpmnWorkflow:
    return engine.load_state(engine.dump_state(workflow), specs, ClockedScriptEngine(clock=clock))


def waiting_ids(workflow: BpmnWorkflow) -> dict[str, str]:
    return {t.task_spec.bpmn_id: str(t.id) for t in migration.waiting_tasks(workflow) if t.task_spec.bpmn_id}


def complete_user_task(workflow: BpmnWorkflow, element_id: str) -> None:
    [task] = [t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == element_id]
    task.run()
    workflow.do_engine_steps()


def test_same_ids_carry_every_wait_over_and_the_new_version_continues(clock: ManualClock) -> None:
    old, new = specs_of(waits()), specs_of(waits(after_approve="review"))
    workflow = started(old, clock)
    before = waiting_ids(workflow)
    due_before = engine.snapshot(workflow).timers

    found = migration.check(workflow, new, [])
    assert found.problems == []
    assert {(m.source_element_id, m.action) for m in found.moves} == {
        ("work", "carried_over"),
        ("approve", "carried_over"),
        ("wait", "carried_over"),
        ("reply", "carried_over"),
    }
    migration.apply(workflow, new, [])

    assert waiting_ids(workflow) == before  # the same tasks: jobs, user tasks, timers keep their rows
    assert engine.snapshot(workflow).timers == due_before  # the due time is not counted again
    for current in (workflow, reloaded(workflow, new, clock)):
        complete_user_task(current, "approve")
        assert "review" in waiting_ids(current)  # the new version's element follows


def test_a_renamed_element_moves_with_an_explicit_mapping(clock: ManualClock) -> None:
    old, new = specs_of(waits()), specs_of(waits(approve="approve_v2"))
    workflow = started(old, clock)
    approve_task = waiting_ids(workflow)["approve"]

    [problem] = migration.check(workflow, new, []).problems
    assert problem.element_id == "approve" and "target version does not have" in problem.message

    rules = [MappingRule("", "approve", "approve_v2")]
    assert migration.check(workflow, new, rules).problems == []
    migration.apply(workflow, new, rules)
    assert waiting_ids(workflow)["approve_v2"] == approve_task
    current = reloaded(workflow, new, clock)
    complete_user_task(current, "approve_v2")
    assert "approve_v2" not in waiting_ids(current)


def test_a_changed_timer_needs_restart_and_restart_counts_it_again(clock: ManualClock) -> None:
    old, new = specs_of(waits()), specs_of(waits(duration="PT10M"))
    workflow = started(old, clock)
    timer_task = waiting_ids(workflow)["wait"]
    [problem] = migration.check(workflow, new, []).problems
    assert problem.element_id == "wait" and "restart" in problem.message

    clock.advance(timedelta(minutes=3))
    moves = migration.apply(workflow, new, [MappingRule("", "wait", "wait", restart=True)])
    workflow.do_engine_steps()
    assert [m.action for m in moves if m.source_element_id == "wait"] == ["restarted"]
    assert waiting_ids(workflow)["wait"] != timer_task  # a new task: a new timer row
    [due] = engine.snapshot(workflow).timers
    assert due.due_at == START + timedelta(minutes=13)


def test_a_changed_operation_needs_restart(clock: ManualClock) -> None:
    workflow = started(specs_of(waits()), clock)
    [problem] = migration.check(workflow, specs_of(waits(op="crm.other")), []).problems
    assert problem.element_id == "work" and "crm.other" in problem.message


def test_a_waiting_element_the_target_lacks_is_refused_and_nothing_changes(clock: ManualClock) -> None:
    old = specs_of(waits())
    new = specs_of(
        bpmn("p", '<startEvent id="s"/><userTask id="other"/><endEvent id="e"/>', "s -> other\nother -> e")
    )
    workflow = started(old, clock)
    state = engine.dump_state(workflow)
    problems = migration.check(workflow, new, []).problems
    assert {p.element_id for p in problems} == {"work", "approve", "wait", "reply"}
    with pytest.raises(ValueError, match="work"):
        migration.apply(workflow, new, [])
    assert workflow.spec is old.spec and engine.dump_state(workflow) == state


def test_a_finished_task_of_a_removed_element_still_loads(clock: ManualClock) -> None:
    two_steps = bpmn(
        "p",
        '<startEvent id="s"/><userTask id="first"/><userTask id="second"/><endEvent id="e"/>',
        "s -> first\nfirst -> second\nsecond -> e",
    )
    one_step = bpmn(
        "p", '<startEvent id="s"/><userTask id="second"/><endEvent id="e"/>', "s -> second\nsecond -> e"
    )
    old, new = specs_of(two_steps), specs_of(one_step)
    workflow = started(old, clock)
    complete_user_task(workflow, "first")
    migration.apply(workflow, new, [])
    state = engine.dump_state(workflow)
    fresh_specs = specs_of(one_step)  # a process that never saw the migration: nothing retired yet
    current = engine.load_state(state, fresh_specs, ClockedScriptEngine(clock=clock))
    [first] = current.get_tasks(spec_name="first")
    assert engine.describe(first)[:2] == ("first", "first (retired)")
    assert (
        "first" not in fresh_specs.spec.task_specs and "first" not in new.spec.task_specs
    )  # shared: unchanged
    complete_user_task(current, "second")
    assert current.is_completed()
    assert engine.load_state(engine.dump_state(current), fresh_specs, ClockedScriptEngine(clock=clock))


def called(task_id: str) -> bytes:
    return definitions(
        process_xml(
            "parent",
            '<startEvent id="s"/><callActivity id="call" calledElement="child"/><userTask id="after"/>'
            '<endEvent id="e"/>',
            "s -> call\ncall -> after\nafter -> e",
        )
        + process_xml(
            "child",
            f'<startEvent id="cs"/><userTask id="{task_id}"/><endEvent id="ce"/>',
            f"cs -> {task_id}\n{task_id} -> ce",
        )
    )


def test_a_subprocess_moves_with_its_caller(clock: ManualClock) -> None:
    old, new = specs_of(called("check"), "parent"), specs_of(called("verify"), "parent")
    workflow = started(old, clock)
    check_task = waiting_ids(workflow)["check"]

    problems = migration.check(workflow, new, []).problems
    assert [(p.process_id, p.element_id) for p in problems] == [("child", "check")]
    rules = [MappingRule("child", "check", "verify")]
    found = migration.check(workflow, new, rules)
    assert found.problems == []
    assert ("child", "check", "verify") in {
        (m.process_id, m.source_element_id, m.target_element_id) for m in found.moves
    }

    migration.apply(workflow, new, rules)
    current = reloaded(workflow, new, clock)
    assert waiting_ids(current)["verify"] == check_task
    complete_user_task(current, "verify")
    complete_user_task(current, "after")
    assert current.is_completed()


def test_a_subprocess_of_a_process_the_target_no_longer_calls_is_orphaned(clock: ManualClock) -> None:
    old = specs_of(called("check"), "parent")
    new = specs_of(
        bpmn("parent", '<startEvent id="s"/><userTask id="call"/><endEvent id="e"/>', "s -> call\ncall -> e"),
        "parent",
    )
    workflow = started(old, clock)
    problems = migration.check(workflow, new, []).problems
    assert any(p.element_id == "call" and "orphaned" in p.message for p in problems)


def line_of_three() -> bytes:
    return bpmn(
        "p",
        '<startEvent id="s"/><userTask id="a"/><userTask id="b"/><userTask id="c"/><endEvent id="e"/>',
        "s -> a\na -> b\nb -> c\nc -> e",
    )


def test_modify_goes_back_to_an_earlier_task_and_forward_past_one(clock: ManualClock) -> None:
    specs = specs_of(line_of_three())
    workflow = started(specs, clock)
    complete_user_task(workflow, "a")
    assert set(waiting_ids(workflow)) == {"b"}

    moves = migration.modify(workflow, "", ["b"], "a", {"note": "redo"})
    assert [(m.action, m.source_element_id, m.target_element_id) for m in moves] == [
        ("canceled", "b", ""),
        ("activated", "", "a"),
    ]
    workflow.do_engine_steps()
    assert set(waiting_ids(workflow)) == {"a"}
    [a] = [t for t in workflow.get_tasks(state=TaskState.READY)]
    assert a.data["note"] == "redo"

    current = reloaded(workflow, specs, clock)
    complete_user_task(current, "a")
    migration.modify(current, "", ["b"], "c", {})
    current.do_engine_steps()
    assert set(waiting_ids(current)) == {"c"}
    complete_user_task(current, "c")
    assert current.is_completed()


def test_modify_refuses_what_cannot_be_activated(clock: ManualClock) -> None:
    workflow = started(specs_of(waits()), clock)
    with pytest.raises(migration.ModifyError, match=r"^s: a start event"):
        migration.modify(workflow, "", [], "s", {})
    with pytest.raises(migration.ModifyError, match=r"^nope: process p has no element"):
        migration.modify(workflow, "", [], "nope", {})
    with pytest.raises(migration.ModifyError, match=r"^e1: nothing waits"):
        migration.modify(workflow, "", ["e1"], "approve", {})


def with_boundary(extra: str = "") -> bytes:
    after = "approve -> x\nx -> e" if extra else "approve -> e"
    return bpmn(
        "p",
        f"""<startEvent id="s"/><userTask id="approve"/>
        <boundaryEvent id="remind" attachedToRef="approve">
          <timerEventDefinition><timeDuration>"PT1H"</timeDuration></timerEventDefinition></boundaryEvent>
        <endEvent id="late"/>{extra}<endEvent id="e"/>""",
        f"s -> approve\n{after}\nremind -> late",
    )


def multi_instance(extra: str = "") -> bytes:
    after = "each -> x\nx -> e" if extra else "each -> e"
    return bpmn(
        "p",
        f"""<startEvent id="s"/><userTask id="each">
        <multiInstanceLoopCharacteristics isSequential="false"><loopCardinality>3</loopCardinality>
        </multiInstanceLoopCharacteristics></userTask>{extra}<endEvent id="e"/>""",
        f"s -> each\n{after}",
    )


def event_gateway(extra: str = "") -> bytes:
    after = "m -> x\nx -> e2" if extra else "m -> e2"
    return bpmn(
        "p",
        f"""<startEvent id="s"/><eventBasedGateway id="g"/>{timer("t", "PT1H")}
        <intermediateCatchEvent id="m"><messageEventDefinition messageRef="m1"/></intermediateCatchEvent>
        {extra}<endEvent id="e1"/><endEvent id="e2"/>""",
        f"s -> g\ng -> t\ng -> m\nt -> e1\n{after}",
        extra=message("m1", "hello", "engagement_id"),
    )


def event_subprocess(extra: str = "") -> bytes:
    after = "work -> x\nx -> e" if extra else "work -> e"
    return bpmn(
        "p",
        f"""<startEvent id="s"/><userTask id="work"/>{extra}<endEvent id="e"/>
        <subProcess id="esp" triggeredByEvent="true">
          <startEvent id="es" isInterrupting="false"><messageEventDefinition messageRef="m1"/></startEvent>
          <userTask id="handle"/><endEvent id="ee"/>
          <sequenceFlow id="q1" sourceRef="es" targetRef="handle"/>
          <sequenceFlow id="q2" sourceRef="handle" targetRef="ee"/>
        </subProcess>""",
        f"s -> work\n{after}",
        extra=message("m1", "hello", "engagement_id"),
    )


@pytest.mark.parametrize("diagram", [with_boundary, multi_instance, event_gateway, event_subprocess])
def test_boundary_events_multi_instances_event_gateways_and_event_subprocesses_carry_over(
    diagram: Any, clock: ManualClock
) -> None:
    old, new = specs_of(diagram()), specs_of(diagram('<userTask id="x"/>'))
    workflow = started(old, clock)
    if diagram is event_subprocess:
        assert engine.deliver_trigger(workflow, "trigger:esp", "E7", {})
        workflow.do_engine_steps()
    before = waiting_ids(workflow)
    found = migration.check(workflow, new, [])
    assert found.problems == [] and {m.source_element_id for m in found.moves} == set(before)
    if diagram is multi_instance:
        assert sorted(m.detail for m in found.moves if m.detail) == [f"instance {n} of 3" for n in (1, 2, 3)]
    migration.apply(workflow, new, [])
    workflow.do_engine_steps()
    assert waiting_ids(workflow) == before
    current = reloaded(workflow, new, clock)
    if diagram is event_gateway:
        engine.deliver_message(current.get_next_task(spec_name="g"), "hello", "E7", {})
        current.do_engine_steps()
    for _ in range(10):  # a person does every user task, the new one included
        ready = current.get_tasks(state=TaskState.READY)
        if not ready:
            break
        ready[0].run()
        current.do_engine_steps()
    assert current.is_completed()
    assert [t.state for t in current.get_tasks(spec_name="x")] == [TaskState.COMPLETED]


def test_a_variable_the_target_needs_and_the_instance_lacks_is_a_problem(clock: ManualClock) -> None:
    old = specs_of(waits())
    new = specs_of(
        bpmn(
            "p",
            f"""<startEvent id="s"/><parallelGateway id="split"/>
            {service_task("work", "crm.work", client="client_id")}
            <userTask id="approve"/>{timer("wait", "PT5M")}
            <receiveTask id="reply" messageRef="m_reply"/>
            <endEvent id="e1"/><endEvent id="e2"/><endEvent id="e3"/><endEvent id="e4"/>""",
            "s -> split\nsplit -> work\nsplit -> approve\nsplit -> wait\nsplit -> reply\n"
            "work -> e1\napprove -> e2\nwait -> e3\nreply -> e4",
            extra=message("m_reply", "client.reply", "client_ref"),
        )
    )
    workflow = started(old, clock)
    problems = migration.check(workflow, new, [MappingRule("", "work", "work", restart=True)]).problems
    assert sorted((p.element_id, p.message) for p in problems) == [
        ("reply", "the target reply needs variable 'client_ref', which is not set"),
        ("work", "the target work needs variable 'client_id', which is not set"),
    ]
    # a carried-over job keeps the parameters it was sent with: only a restart evaluates them again
    assert [p.element_id for p in migration.check(workflow, new, []).problems] == ["reply"]


def test_a_waiting_task_of_a_missing_element_still_fails_to_load(clock: ManualClock) -> None:
    """Placeholders stand only for finished tasks: a wait nothing could continue must not load silently."""
    workflow = started(specs_of(waits()), clock)
    other = specs_of(
        bpmn("p", '<startEvent id="s"/><userTask id="other"/><endEvent id="e"/>', "s -> other\nother -> e")
    )
    with pytest.raises(Exception):  # noqa: B017 - whatever Spiff raises on a task without its spec
        engine.load_state(engine.dump_state(workflow), other, ClockedScriptEngine(clock=clock))
    assert "approve" not in other.spec.task_specs


def test_modify_inside_a_running_subprocess(clock: ManualClock) -> None:
    specs = specs_of(called("check"), "parent")
    workflow = started(specs, clock)
    with pytest.raises(migration.ModifyError, match=r"^nowhere: no subprocess"):
        migration.modify(workflow, "nowhere", ["check"], "", {})
    moves = migration.modify(workflow, "child", ["check"], "ce", {})
    assert [(m.process_id, m.action) for m in moves] == [("child", "canceled"), ("child", "activated")]
    workflow.do_engine_steps()
    assert set(waiting_ids(workflow)) == {"after"}  # the subprocess ended: its caller went on


def test_modify_cancels_an_activitys_boundary_events_with_it(clock: ManualClock) -> None:
    workflow = started(specs_of(with_boundary('<userTask id="x"/>')), clock)
    assert set(waiting_ids(workflow)) == {"approve", "remind"}
    moves = migration.modify(workflow, "", ["approve"], "x", {})
    assert [(m.action, m.source_element_id or m.target_element_id) for m in moves] == [
        ("canceled", "approve"),
        ("canceled", "remind"),
        ("activated", "x"),
    ]
    workflow.do_engine_steps()
    assert set(waiting_ids(workflow)) == {"x"} and engine.snapshot(workflow).timers == []
    complete_user_task(workflow, "x")
    assert workflow.is_completed()


def test_an_instance_migrates_twice_and_back_with_its_retired_elements(clock: ManualClock) -> None:
    def version(*tasks: str) -> bytes:
        nodes = "".join(f'<userTask id="{t}"/>' for t in tasks)
        chain = ["s", *tasks, "e"]
        flows = "\n".join(f"{a} -> {b}" for a, b in pairwise(chain))
        return bpmn("p", f'<startEvent id="s"/>{nodes}<endEvent id="e"/>', flows)

    v1, v2, v3 = (
        specs_of(version("a", "b", "c")),
        specs_of(version("b", "c")),
        specs_of(version("x", "b", "c")),
    )
    workflow = started(v1, clock)
    complete_user_task(workflow, "a")
    migration.apply(workflow, v2, [])
    current = reloaded(workflow, v2, clock)
    migration.apply(current, v3, [])
    current = reloaded(current, v3, clock)
    migration.apply(current, v1, [])  # back to the first version: `a` is an element again
    current = reloaded(current, v1, clock)
    [a] = current.get_tasks(spec_name="a")
    assert a.task_spec is v1.spec.task_specs["a"] and a.state == TaskState.COMPLETED
    complete_user_task(current, "b")
    complete_user_task(current, "c")
    assert current.is_completed()


def test_a_plan_names_the_field_it_refuses_and_survives_its_json() -> None:
    mapping = ElementMapping("", "a", "b", restart=True)
    plan = MigrationPlan.parse("p:1", "p:2", [mapping])
    assert MigrationPlan.from_json(plan.to_json()) == plan
    with pytest.raises(InvalidArgument, match=r"^plan\.source_definition_id: is required"):
        MigrationPlan.parse("", "p:2", [])
    with pytest.raises(InvalidArgument, match=r"^plan\.target_definition_id: is the source version"):
        MigrationPlan.parse("p:1", "p:1", [])
    with pytest.raises(InvalidArgument, match=r"^plan\.mappings\[1\]\.source_element_id: a is mapped twice"):
        MigrationPlan.parse("p:1", "p:2", [mapping, ElementMapping("", "a", "c")])
    with pytest.raises(InvalidArgument, match=r"^plan\.mappings\[0\]\.target_element_id: is required"):
        MigrationPlan.parse("p:1", "p:2", [ElementMapping("", "a", "")])


def test_a_job_whose_element_became_a_user_task_moves_only_with_restart(clock: ManualClock) -> None:
    by_hand = waits().replace(
        service_task("work", "crm.work").encode(), b'<userTask id="work" name="Work by hand"/>'
    )
    old, new = specs_of(waits()), specs_of(by_hand)
    workflow = started(old, clock)
    [problem] = migration.check(workflow, new, []).problems
    assert problem.element_id == "work" and "JobServiceTask but its target is a HumanTask" in problem.message
    migration.apply(workflow, new, [MappingRule("", "work", "work", restart=True)])
    workflow.do_engine_steps()
    waiting = engine.snapshot(workflow)
    assert sorted(t.task_spec.bpmn_id for t in waiting.user_tasks.values()) == ["approve", "work"]
    assert waiting.service_tasks == {}
