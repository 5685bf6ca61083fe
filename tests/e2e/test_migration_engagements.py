"""Engagements outlive diagrams (issue 17): engagements waiting at different points of today's diagrams are
moved to the analysts' next versions through the orchestrator's migration RPCs, as ops would, and then
played to their end on the running system.

The engagements wait where the demo's people are told not to answer yet (`Story.held`): in the intake
(the proposal review), in the implementation (data collection), in the acceptance's rectification loop
(after a failed first acceptance) and at a follow-up revisit. The next versions
(tests/support/migration_next_versions.py) add a task after three of those points, rename the fourth and
change the revisit timer; one deploy of the four files gives the engagement one new version, and a migration
moves an engagement with the processes it called (mappings of their elements name their process).

The demo's people play every engagement all along, in a thread (`Players`): each test waits until its
engagement waits at its point, migrates it and lets it go on, so the engagements' runs overlap and the
module takes about one engagement's time, not one per point.
"""

from __future__ import annotations

import threading
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
from consultflow.orchestrator import engine
from consultflow.platform.security import secure_channel
from tests.support import migration_next_versions as next_version
from tests.support.groups import DEMO_SYSTEM
from tests.support.migration_next_versions import RENAMED
from tests.support.polling import eventually

pytestmark = DEMO_SYSTEM

REACH_SECONDS = 180.0  # the follow-up's first revisit comes after a whole engagement's work (demo timers)
END_SECONDS = 240.0
REASON = "issue 17: engagements move to the next diagrams"


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
# The new task each migrated engagement meets after its point (a new engagement meets them all).
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


class Players:
    """The demo's people and clients, playing every engagement in a thread until stopped; a failure stops
    them and is raised again by `check`."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._play, name="players", daemon=True)

    def _play(self) -> None:
        while not self._stop.is_set():
            try:
                self.driver.tick()
            except Exception as error:  # handed to the test thread by check()
                self.error = error
                return
            self._stop.wait(0.25)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the players stopped: {self.error!r}") from self.error


@dataclass
class World:
    """The engagements, the people playing them, and the engagement's version they run and the new one."""

    clients: Clients
    players: Players
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

    def at_point(self, point: Point) -> pb.UserTask:
        """Waits until the engagement waits at its point; the open user task there."""

        def task() -> pb.UserTask | None:
            self.players.check()
            instance = self.instance(point.kind)
            assert not instance.incidents, f"{point.kind}: {instance.incidents}"
            found = [t for t in instance.user_tasks if t.element_id == point.element_id]
            return found[0] if found else None  # a revisit cycle may have opened more than one

        return eventually(task, f"{point.kind} to wait at {point.element_id}", REACH_SECONDS, interval=0.25)

    def release(self, kind: str) -> None:
        """The people answer the task the engagement waited at (and what follows) from now on."""
        self.stories[kind].held = set()


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
        # held at its point, and at the point's element in the new version until the test looked at it
        held={point.element_id, point.target_element_id} - {""},
        kind=point.kind,
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
    """Five engagements started on today's diagrams, then the next versions deployed and a sixth engagement
    started on them; all played from then on. Afterwards today's files are deployed again, so the demo
    system's other tests start engagements on today's diagrams."""
    clients = Clients(demo_system.endpoints())
    ana, channel = analyst(demo_system, clients)
    run = uuid.uuid4().hex[:6]
    stories = {point.kind: story_for(point, run) for point in POINTS}
    driver = Driver(clients, list(stories.values()))
    players = Players(driver)
    try:
        driver.start()
        source = clients.orchestrator.GetInstance(
            pb.GetInstanceRequest(instance_id=stories["INTAKE"].instance_id, history_limit=1), timeout=TIMEOUT
        ).definition_id
        target = deploy(ana, next_version.next_versions(), "issue 17: the next versions of four diagrams")
        assert target != source, "the deploy re-versions the engagement that calls the changed processes"
        fresh = story_for(Point("NEW", "", "", "", ("failed", "passed")), run)
        Driver(clients, [fresh]).start()
        stories["NEW"] = driver.stories[fresh.key] = fresh
        players.start()
        yield World(clients, players, stories, source, target)
    finally:
        players.stop()
        deploy(ana, next_version.todays_versions(), "today's diagrams again")
        channel.close()
        clients.close()


def moves_of(check: pb.InstanceMigrationCheck) -> set[tuple[str, str, str, int]]:
    return {(m.process_id, m.source_element_id, m.target_element_id, m.action) for m in check.moves}


def assert_moves(point: Point, check: pb.InstanceMigrationCheck) -> None:
    """The wait at the point carries over to its element in the new version; every other wait (e.g. the
    monitoring beside the implementation) carries over too, but the revisit cycle whose period changed,
    when it still waits, starts afresh."""
    assert check.applicable and not check.problems, (point.kind, check)
    wanted = (point.process_id, point.element_id, point.target_element_id, pb.MOVE_ACTION_CARRIED_OVER)
    assert wanted in moves_of(check), (point.kind, check.moves)
    for move in check.moves:
        restarted = move.source_element_id == RESTART_REVISIT_TIMER.source_element_id
        wanted_action = pb.MOVE_ACTION_RESTARTED if restarted else pb.MOVE_ACTION_CARRIED_OVER
        assert move.action == wanted_action, (point.kind, move)


def wait_for_batch(world: World, batch: pb.MigrationBatch) -> pb.MigrationBatch:
    def ended() -> pb.MigrationBatch | None:
        now = world.clients.orchestrator.GetMigration(
            pb.GetMigrationRequest(batch_id=batch.batch_id), timeout=TIMEOUT
        )
        return now if now.state == pb.MIGRATION_STATE_COMPLETED else None

    return eventually(ended, f"migration {batch.batch_id} to complete", 60, interval=0.1)


def list_batches(world: World) -> list[str]:
    """The engagement's migration batches (ListMigrations)."""
    found = world.clients.orchestrator.ListMigrations(
        pb.ListMigrationsRequest(process_id="engagement", page_size=500), timeout=TIMEOUT
    )
    return sorted(b.batch_id for b in found.batches)


def assert_moved(world: World, point: Point, task: pb.UserTask) -> None:
    """The engagement runs the new version and waits at the same user task, now of the point's target."""
    instance = world.instance(point.kind)
    assert instance.definition_id == world.target, point.kind
    now = {t.user_task_id: t.element_id for t in instance.user_tasks}
    assert now.get(task.user_task_id) == point.target_element_id, (
        f"{point.kind}: the user task it waited at carries over",
        now,
        [(a.process_id, a.element_id, a.state) for a in instance.active_elements],
        [(e.type, e.element_id, e.detail) for e in instance.history[-12:]],
    )


def test_the_next_versions_pass_the_deploy_checks_and_change_what_they_say() -> None:
    """Without the system: the edits still apply to today's files and a deploy would take them (a change
    to bpmn/ that breaks them fails here first, naming the file)."""
    specs = engine.checked_resources(next_version.next_versions())
    assert not specs[1], specs[1]
    processes = specs[0]
    for task in next_version.NEW_TASKS:
        process_id = task.file.removesuffix(".bpmn")
        assert task.task_id in processes[process_id].spec.task_specs, task.task_id
        assert [s.bpmn_id for s in processes[process_id].spec.task_specs[task.after].outputs] == [
            task.task_id
        ]
    implementation = processes["implementation"].spec.task_specs
    assert RENAMED[1] in implementation and RENAMED[0] not in implementation
    for point in (INTAKE, RECTIFICATION, REVISIT):
        assert point.element_id in processes[point.process_id].spec.task_specs, point


def test_a_plan_that_cannot_apply_is_refused_then_applied_to_the_rest_when_asked(world: World) -> None:
    """The plan omits the mapping of the renamed data collection: an engagement waiting there cannot move.
    Started for it and one waiting in the intake, the migration is refused and nothing changes; asked to
    skip what it cannot move, it moves the intake's and leaves the other on today's version."""
    tasks = {point.kind: world.at_point(point) for point in (INTAKE, STAYS)}
    selection = pb.MigrationSelection(instance_ids=world.ids("INTAKE", "STAY"))
    plan = world.plan(RESTART_REVISIT_TIMER)  # the rename is not mapped

    checked = world.clients.orchestrator.PlanMigration(
        pb.PlanMigrationRequest(plan=plan, selection=selection), timeout=TIMEOUT
    )
    assert not checked.plan_problems and checked.selected == 2, checked
    kind_of = {world.stories[kind].instance_id: kind for kind in ("INTAKE", "STAY")}
    by_kind = {kind_of[c.instance_id]: c for c in checked.instances}
    assert_moves(INTAKE, by_kind["INTAKE"])
    refused_check = by_kind["STAY"]
    assert not refused_check.applicable, refused_check
    assert [(p.process_id, p.element_id) for p in refused_check.problems] == [("implementation", RENAMED[0])]

    batches = list_batches(world)
    request = pb.StartMigrationRequest(plan=plan, selection=selection, reason=REASON)
    with pytest.raises(grpc.RpcError) as refused:
        world.clients.orchestrator.StartMigration(request, timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
    message = refused.value.details() or ""
    assert world.stories["STAY"].instance_id in message and RENAMED[0] in message, message
    for kind in ("INTAKE", "STAY"):
        assert world.instance(kind).definition_id == world.source, (
            f"{kind} moved though the start was refused"
        )
    assert list_batches(world) == batches, "a refused start writes no batch"

    request.skip_refused = True
    batch = wait_for_batch(world, world.clients.orchestrator.StartMigration(request, timeout=TIMEOUT))
    assert (batch.total, batch.migrated, batch.skipped, batch.failed) == (2, 1, 1, 0), batch
    assert {item.instance_id: item.state for item in batch.items} == {
        world.stories["INTAKE"].instance_id: pb.MIGRATION_ITEM_STATE_MIGRATED,
        world.stories["STAY"].instance_id: pb.MIGRATION_ITEM_STATE_SKIPPED,
    }, batch.items
    assert list_batches(world) == sorted([*batches, batch.batch_id])
    assert world.instance("STAY").definition_id == world.source
    assert_moved(world, INTAKE, tasks["INTAKE"])
    world.release("INTAKE")
    world.release("STAY")


@pytest.mark.parametrize("point", [IMPLEMENTATION, RECTIFICATION, REVISIT], ids=lambda p: p.kind)
def test_an_engagement_moves_from_where_it_waits(world: World, point: Point) -> None:
    """The dry run reports the moves and changes nothing; the migration carries the wait over (a renamed
    element through its mapping)."""
    task = world.at_point(point)
    plan = world.plan(RENAME, RESTART_REVISIT_TIMER)
    selection = pb.MigrationSelection(instance_ids=world.ids(point.kind))
    checked = world.clients.orchestrator.PlanMigration(
        pb.PlanMigrationRequest(plan=plan, selection=selection), timeout=TIMEOUT
    )
    assert not checked.plan_problems and [c.instance_id for c in checked.instances] == world.ids(point.kind)
    assert_moves(point, checked.instances[0])
    assert world.instance(point.kind).definition_id == world.source, "a dry run changes nothing"

    batch = world.clients.orchestrator.StartMigration(
        pb.StartMigrationRequest(plan=plan, selection=selection, reason=REASON), timeout=TIMEOUT
    )
    assert wait_for_batch(world, batch).migrated == 1, batch
    assert_moved(world, point, task)
    world.release(point.kind)


def test_every_engagement_ends_on_the_version_it_runs(world: World) -> None:
    """Migrated engagements end on the new version, passing the new task after their point; the one left
    behind ends on today's; a new engagement runs the new versions from the start."""
    for kind in world.stories:
        world.release(kind)  # were a test before to fail, its engagement still ends

    def ended() -> bool:
        world.players.check()
        return all(story.finished for story in world.stories.values())

    eventually(ended, "every engagement to end", END_SECONDS, interval=0.5)
    outcomes = {kind: story.outcome for kind, story in world.stories.items()}
    assert outcomes == {kind: "closed" for kind in world.stories}, outcomes
    for kind, story in world.stories.items():
        instance = world.instance(kind)
        assert instance.state == pb.INSTANCE_STATE_COMPLETED, kind
        new_tasks_done = {t for t in NEW_TASK_AFTER.values() if story.answered[t]}
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
