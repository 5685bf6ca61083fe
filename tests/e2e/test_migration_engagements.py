"""Engagements outlive diagrams (issue 17): engagements waiting at different points of today's diagrams are
moved to the analysts' next versions through the orchestrator's migration RPCs, as ops would, and then
played to their end on the running system.

The engagements wait where the demo's people are told not to answer yet (`Story.held`): in the intake
(the proposal review), in the implementation (data collection), in the acceptance's rectification loop
(after a failed first acceptance) and at a follow-up revisit. The next versions
(tests/support/migration_diagrams.py) add a task after three of those points, rename the fourth and change
the revisit timer; one deploy of the four files gives the engagement one new version, and a migration moves
an engagement with the processes it called (mappings of their elements name their process).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import LocalSystem
from consultflow.demo.driver import TIMEOUT, Clients, Driver, Story
from consultflow.demo.stories import common, inquiry
from consultflow.platform.security import secure_channel
from tests.support import migration_diagrams as next_version
from tests.support.groups import DEMO_SYSTEM
from tests.support.migration_diagrams import RENAMED
from tests.support.polling import eventually

pytestmark = DEMO_SYSTEM

REACH_SECONDS = 240.0  # the follow-up's first revisit comes after a whole engagement's work (demo timers)
END_SECONDS = 300.0


@dataclass(frozen=True)
class Point:
    """Where an engagement waits when it is migrated: the element (of the process that holds it)."""

    kind: str
    process_id: str
    element_id: str
    target_element_id: str
    acceptance: tuple[str, ...] = ("passed",)


INTAKE = Point("INTAKE", "intake", "review_proposal", "review_proposal")
IMPLEMENTATION = Point("IMPL", "implementation", RENAMED[0], RENAMED[1])
RECTIFICATION = Point(
    "RECTIFY",
    "delivery_acceptance",
    "complete_rectification_form",
    "complete_rectification_form",
    ("failed", "passed"),
)
REVISIT = Point("REVISIT", "follow_up", "revisit_client_form", "revisit_client_form")
# Waits in the implementation like IMPLEMENTATION, but the plan that omits the rename cannot move it.
STAYS = Point("STAY", "implementation", RENAMED[0], RENAMED[0])
POINTS = (INTAKE, IMPLEMENTATION, RECTIFICATION, REVISIT, STAYS)
POINT_OF = {point.kind: point for point in POINTS}
# The new task each migrated engagement meets after its point (and the one a new engagement meets them all).
NEW_TASK_AFTER = {
    "INTAKE": "approve_proposal_form",
    "IMPL": RENAMED[1],
    "RECTIFY": "verify_rectification_form",
    "REVISIT": "share_revisit_notes_form",
}

# The timer whose expression changed starts afresh (counted from the migration) wherever it waits.
RESTART_REVISIT_TIMER = pb.ElementMapping(
    process_id="follow_up", source_element_id="revisit_cycle", target_element_id="revisit_cycle", restart=True
)
RENAME = pb.ElementMapping(
    process_id="implementation", source_element_id=RENAMED[0], target_element_id=RENAMED[1]
)


@dataclass
class World:
    """The engagements at their points, and the engagement's version they run and the new one."""

    clients: Clients
    driver: Driver
    stories: dict[str, Story]
    source: str
    target: str

    def plan(self, *mappings: pb.ElementMapping) -> pb.MigrationPlan:
        return pb.MigrationPlan(
            source_definition_id=self.source, target_definition_id=self.target, mappings=list(mappings)
        )

    def ids(self, *kinds: str) -> list[str]:
        return [self.stories[kind].instance_id for kind in kinds]

    def instance(self, kind: str) -> pb.Instance:
        return self.clients.orchestrator.GetInstance(
            pb.GetInstanceRequest(instance_id=self.stories[kind].instance_id), timeout=TIMEOUT
        )


def story_for(point: Point, run: str) -> Story:
    # the renamed data collection takes the same decision as today's (3.2.1)
    decisions = common(**{RENAMED[1]: [{"site_visit_needed": False}]})
    return Story(
        key=f"MIG-{point.kind}-{run}",
        title=f"migrated while waiting at {point.element_id}",
        inquiry=inquiry(
            "Ningbo Valves", "Ms Xu", f"xu-{point.kind.lower()}@valves.example", "Lean production"
        ),
        decisions=decisions,
        acceptance=list(point.acceptance),
        held={point.element_id},
        kind=point.kind,
    )


def waits_at(clients: Clients, story: Story, point: Point) -> bool:
    instance = clients.orchestrator.GetInstance(
        pb.GetInstanceRequest(instance_id=story.instance_id, history_limit=1), timeout=TIMEOUT
    )
    assert not instance.incidents, f"{story.key}: {instance.incidents}"
    return any(
        a.element_id == point.element_id and a.process_id == point.process_id
        for a in instance.active_elements
    )


def analyst(system: LocalSystem, clients: Clients) -> tuple[pb_grpc.OrchestratorServiceStub, grpc.Channel]:
    """The orchestrator as ana, an analyst: only analysts deploy."""
    channel = secure_channel(
        system.endpoints()["orchestrator"], clients.identity.ca, clients.identity.token_of("ana")
    )
    return pb_grpc.OrchestratorServiceStub(channel), channel


def deploy(stub: pb_grpc.OrchestratorServiceStub, files: dict[str, bytes], note: str) -> str:
    """Deploys the files; the engagement's latest version (new when a file it calls changed)."""
    stub.DeployResources(
        pb.DeployResourcesRequest(
            resources=[pb.Resource(name=name, content=content) for name, content in files.items()], note=note
        ),
        timeout=60,
    )
    latest = stub.ListDefinitions(
        pb.ListDefinitionsRequest(process_id="engagement", latest_only=True), timeout=TIMEOUT
    ).definitions
    return str(latest[0].definition_id)


@pytest.fixture(scope="module")
def world(demo_system: LocalSystem) -> Iterator[World]:
    """Five engagements on today's diagrams, each waiting at its point; the next versions deployed; a sixth
    engagement started on them. Afterwards today's files are deployed again, so the demo system's other
    tests start engagements on today's diagrams."""
    clients = Clients(demo_system.endpoints())
    ana, channel = analyst(demo_system, clients)
    run = uuid.uuid4().hex[:6]
    stories = {point.kind: story_for(point, run) for point in POINTS}
    driver = Driver(clients, list(stories.values()))
    try:
        driver.start()
        deadline = time.monotonic() + REACH_SECONDS
        reached: set[str] = set()
        while len(reached) < len(POINTS):
            assert time.monotonic() < deadline, {
                s.key: s.waiting for kind, s in stories.items() if kind not in reached
            }
            driver.tick()
            reached |= {p.kind for p in POINTS if waits_at(clients, stories[p.kind], p)}
            time.sleep(0.25)
        source = clients.orchestrator.GetInstance(
            pb.GetInstanceRequest(instance_id=stories["INTAKE"].instance_id, history_limit=1), timeout=TIMEOUT
        ).definition_id
        target = deploy(ana, next_version.next_versions(), "issue 17: the next versions of four diagrams")
        assert target != source, "the deploy re-versions the engagement that calls the changed processes"
        fresh = story_for(Point("NEW", "", "", "", ("failed", "passed")), run)
        fresh.held.clear()
        Driver(clients, [fresh]).start()
        stories["NEW"] = driver.stories[fresh.key] = fresh
        yield World(clients, driver, stories, source, target)
    finally:
        deploy(ana, next_version.todays_versions(), "today's diagrams again")
        channel.close()
        clients.close()


def moves_of(check: pb.InstanceMigrationCheck) -> set[tuple[str, str, str, int]]:
    return {(m.process_id, m.source_element_id, m.target_element_id, m.action) for m in check.moves}


def carried(point: Point) -> tuple[str, str, str, int]:
    return (point.process_id, point.element_id, point.target_element_id, pb.MOVE_ACTION_CARRIED_OVER)


def wait_for_batch(world: World, batch: pb.MigrationBatch) -> pb.MigrationBatch:
    def ended() -> pb.MigrationBatch | None:
        now = world.clients.orchestrator.GetMigration(
            pb.GetMigrationRequest(batch_id=batch.batch_id), timeout=TIMEOUT
        )
        return now if now.state == pb.MIGRATION_STATE_COMPLETED else None

    return eventually(ended, f"migration {batch.batch_id} to complete", 60)


def list_batches(world: World) -> list[str]:
    """The engagement's migration batches (ListMigrations)."""
    found = world.clients.orchestrator.ListMigrations(
        pb.ListMigrationsRequest(process_id="engagement", page_size=500), timeout=TIMEOUT
    )
    return sorted(b.batch_id for b in found.batches)


def held_task(world: World, point: Point) -> pb.UserTask:
    """The open user task the engagement waits at (one; a revisit's cycle may have opened more)."""
    tasks = [
        t
        for t in world.instance(point.kind).user_tasks
        if t.element_id in (point.element_id, point.target_element_id)
    ]
    assert tasks, f"{point.kind} does not wait at {point.element_id}"
    return tasks[0]


def test_the_dry_run_reports_each_engagements_moves_and_changes_nothing(world: World) -> None:
    everyone = world.ids(*(p.kind for p in POINTS))
    checked = world.clients.orchestrator.PlanMigration(
        pb.PlanMigrationRequest(
            plan=world.plan(RENAME, RESTART_REVISIT_TIMER),
            selection=pb.MigrationSelection(instance_ids=everyone),
        ),
        timeout=TIMEOUT,
    )
    assert not checked.plan_problems, checked.plan_problems
    assert checked.selected == len(POINTS)
    by_id = {c.instance_id: c for c in checked.instances}
    assert set(by_id) == set(everyone)
    for point in POINTS:
        check = by_id[world.stories[point.kind].instance_id]
        wanted = carried(IMPLEMENTATION) if point is STAYS else carried(point)
        assert check.applicable and not check.problems, (point.kind, check)
        assert wanted in moves_of(check), (point.kind, check.moves)
        # every other wait (e.g. the monitoring beside the implementation) stays as it is, but the revisit
        # cycle whose period changed, when it still waits, starts afresh
        for move in check.moves:
            restarted = move.source_element_id == RESTART_REVISIT_TIMER.source_element_id
            wanted_action = pb.MOVE_ACTION_RESTARTED if restarted else pb.MOVE_ACTION_CARRIED_OVER
            assert move.action == wanted_action, (point.kind, move)

    without_rename = world.clients.orchestrator.PlanMigration(
        pb.PlanMigrationRequest(
            plan=world.plan(RESTART_REVISIT_TIMER), selection=pb.MigrationSelection(instance_ids=everyone)
        ),
        timeout=TIMEOUT,
    )
    refused = {c.instance_id: c for c in without_rename.instances if not c.applicable}
    assert set(refused) == set(world.ids("IMPL", "STAY")), without_rename.instances
    for check in refused.values():
        assert [(p.process_id, p.element_id) for p in check.problems] == [("implementation", RENAMED[0])], (
            check
        )
    for point in POINTS:
        assert world.instance(point.kind).definition_id == world.source, "a dry run changes nothing"


def test_a_plan_that_cannot_apply_is_refused_then_applied_to_the_rest_when_asked(world: World) -> None:
    kinds = ("INTAKE", "RECTIFY", "REVISIT", "STAY")
    tasks = {p.kind: held_task(world, p).user_task_id for p in POINTS if p.kind in kinds}
    request = pb.StartMigrationRequest(
        plan=world.plan(RESTART_REVISIT_TIMER),  # the rename is not mapped
        selection=pb.MigrationSelection(instance_ids=world.ids(*kinds)),
        reason="issue 17: engagements move to the next diagrams",
    )
    batches = list_batches(world)
    with pytest.raises(grpc.RpcError) as refused:
        world.clients.orchestrator.StartMigration(request, timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
    message = refused.value.details() or ""
    assert world.stories["STAY"].instance_id in message and RENAMED[0] in message, message
    for kind in kinds:
        assert world.instance(kind).definition_id == world.source, (
            f"{kind} moved though the start was refused"
        )
    assert list_batches(world) == batches, "a refused start writes no batch"

    request.skip_refused = True
    batch = wait_for_batch(world, world.clients.orchestrator.StartMigration(request, timeout=TIMEOUT))
    assert (batch.total, batch.migrated, batch.skipped, batch.failed) == (4, 3, 1, 0), batch
    assert list_batches(world) == sorted([*batches, batch.batch_id])
    items = {item.instance_id: item.state for item in batch.items}
    assert items == {
        **{i: pb.MIGRATION_ITEM_STATE_MIGRATED for i in world.ids("INTAKE", "RECTIFY", "REVISIT")},
        world.stories["STAY"].instance_id: pb.MIGRATION_ITEM_STATE_SKIPPED,
    }, batch.items
    assert world.instance("STAY").definition_id == world.source
    for point in (INTAKE, RECTIFICATION, REVISIT):
        instance = world.instance(point.kind)
        assert instance.definition_id == world.target, point.kind
        assert tasks[point.kind] in [t.user_task_id for t in instance.user_tasks], (
            f"{point.kind}: the user task it waited at carries over",
            [(t.user_task_id, t.element_id) for t in instance.user_tasks],
            [(a.process_id, a.element_id, a.state) for a in instance.active_elements],
            [(e.type, e.element_id, e.detail) for e in instance.history[-25:]],
        )


def test_a_renamed_element_moves_with_its_mapping(world: World) -> None:
    before = held_task(world, IMPLEMENTATION)
    batch = world.clients.orchestrator.StartMigration(
        pb.StartMigrationRequest(
            plan=world.plan(RENAME, RESTART_REVISIT_TIMER),
            selection=pb.MigrationSelection(instance_ids=world.ids("IMPL")),
            reason="issue 17: data collection renamed",
        ),
        timeout=TIMEOUT,
    )
    assert wait_for_batch(world, batch).migrated == 1
    instance = world.instance("IMPL")
    assert instance.definition_id == world.target
    after = held_task(world, IMPLEMENTATION)
    assert (after.user_task_id, after.element_id) == (before.user_task_id, RENAMED[1])
    assert RENAMED[1] in {a.element_id for a in instance.active_elements}
    world.stories["IMPL"].held = {RENAMED[1]}


def test_every_engagement_ends_on_the_version_it_runs(world: World) -> None:
    """Migrated engagements end on the new version, passing the new tasks after their point; the one left
    behind ends on today's; a new engagement runs the new versions from the start."""
    for story in world.stories.values():
        story.held.clear()
    world.driver.run(timeout=END_SECONDS)
    outcomes = {kind: story.outcome for kind, story in world.stories.items()}
    assert outcomes == {kind: "closed" for kind in world.stories}, outcomes
    for kind, story in world.stories.items():
        instance = world.instance(kind)
        assert instance.state == pb.INSTANCE_STATE_COMPLETED, kind
        new_tasks_done = {t for t in (*NEW_TASK_AFTER.values(),) if story.answered[t]}
        if kind == "STAY":
            assert instance.definition_id == world.source
            assert not new_tasks_done and story.answered[RENAMED[0]], story.answered
            continue
        assert instance.definition_id == world.target, kind
        if kind == "NEW":
            assert new_tasks_done == set(NEW_TASK_AFTER.values()), story.answered
            continue
        assert NEW_TASK_AFTER[kind] in new_tasks_done, (kind, story.answered)
        migrated = [i for i, e in enumerate(instance.history) if e.type == "instance.migrated"]
        assert len(migrated) == 1, (kind, [(e.type, e.detail) for e in instance.history[-50:]])
        moved = instance.history[migrated[0]]
        assert world.source in moved.detail and world.target in moved.detail, moved
        # the history shows the wait begun on today's version and the new version's task done after it
        before, after = instance.history[: migrated[0]], instance.history[migrated[0] + 1 :]
        point = POINT_OF[kind]
        assert ("usertask.created", point.element_id) in {(e.type, e.element_id) for e in before}, kind
        assert ("element.completed", NEW_TASK_AFTER[kind]) in {(e.type, e.element_id) for e in after}, kind
