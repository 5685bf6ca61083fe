"""Migration batches over a real orchestrator (gRPC, TLS, its background runner): instances selected by
version, business key and waiting element are checked first, moved one per transaction, refused as a
whole or skipped one by one, counted, audited, and never moved twice; only ops may."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import grpc
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.main import main as cli_main
from consultflow.orchestrator.scheduler import Scheduler
from consultflow.orchestrator.servicer import migration_plan_from_pb
from consultflow.orchestrator.usecases.migration_batches import Selection
from consultflow.platform.claims import Owned
from tests.support.bpmn_builder import bpmn, service_task
from tests.support.components import ComponentThread
from tests.support.identity import TESTER, local_identity, signed_channel, token
from tests.support.migration_diagrams import V1, V2
from tests.support.orchestrator_harness import Harness
from tests.support.rpc import refused

Stub = pb_grpc.OrchestratorServiceStub
CODE = grpc.StatusCode


def deploy(stub: Stub, content: bytes) -> str:
    answer = stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="onboarding.bpmn", content=content)])
    )
    return str(answer.definitions[0].definition_id)


def start(stub: Stub, key: str, path: str = "review") -> str:
    request = pb.CreateInstanceRequest(
        process_id="onboarding", business_key=key, variables_json=json.dumps({"path": path})
    )
    return str(stub.CreateInstance(request).instance_id)


def plan(**selection: object) -> tuple[pb.MigrationPlan, pb.MigrationSelection]:
    return (
        pb.MigrationPlan(source_definition_id="onboarding:1", target_definition_id="onboarding:2"),
        pb.MigrationSelection(**selection),  # type: ignore[arg-type]
    )


def plan_request(page_size: int = 0, page_token: str = "", **selection: object) -> pb.PlanMigrationRequest:
    plan_, chosen = plan(**selection)
    return pb.PlanMigrationRequest(plan=plan_, selection=chosen, page_size=page_size, page_token=page_token)


def finished(stub: Stub, batch_id: str, timeout: float = 30.0) -> pb.MigrationBatch:
    """The batch once the background runner settled every item."""
    deadline = time.monotonic() + timeout
    while True:
        batch = stub.GetMigration(pb.GetMigrationRequest(batch_id=batch_id))
        if batch.state == pb.MIGRATION_STATE_COMPLETED:
            return batch
        assert time.monotonic() < deadline, f"batch {batch_id} still running: {batch}"
        time.sleep(0.1)


def migrated_events(stub: Stub, instance_id: str) -> int:
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id, history_limit=1000))
    return sum(1 for e in instance.history if e.type == "instance.migrated")


@pytest.fixture
def versions(stub: Stub) -> Stub:
    """onboarding:1 deployed; onboarding:2 is deployed by each test once its instances run."""
    assert deploy(stub, V1) == "onboarding:1"
    return stub


def test_a_batch_moves_every_selected_instance_once_and_counts_them(versions: Stub) -> None:
    stub = versions
    ids = [start(stub, f"K{n}") for n in range(3)]
    other = start(stub, "AT-INTAKE", path="intake")
    assert deploy(stub, V2) == "onboarding:2"
    later = start(stub, "ON-V2")  # already on the target: not selected

    checked = stub.PlanMigration(plan_request(waiting_at_element_id="review"))
    assert checked.selected == 3 and not checked.plan_problems
    assert sorted(c.instance_id for c in checked.instances) == sorted(ids)
    assert all(c.applicable for c in checked.instances)

    plan_, selection = plan(waiting_at_element_id="review")
    batch = stub.StartMigration(pb.StartMigrationRequest(plan=plan_, selection=selection, reason="v2 review"))
    assert batch.total == 3 and batch.state == pb.MIGRATION_STATE_RUNNING and batch.created_by == "root"
    done = finished(stub, batch.batch_id)
    assert (done.total, done.migrated, done.skipped, done.failed) == (3, 3, 0, 0)
    assert done.ended_at.seconds > 0
    assert sorted(i.instance_id for i in done.items) == sorted(ids)
    assert {i.state for i in done.items} == {pb.MIGRATION_ITEM_STATE_MIGRATED}
    for instance_id in ids:
        instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
        assert instance.definition_id == "onboarding:2"
        assert migrated_events(stub, instance_id) == 1
    untouched = stub.GetInstance(pb.GetInstanceRequest(instance_id=other))
    assert untouched.definition_id == "onboarding:1" and migrated_events(stub, other) == 0
    assert migrated_events(stub, later) == 0

    listed = stub.ListMigrations(pb.ListMigrationsRequest(process_id="onboarding")).batches
    assert [b.batch_id for b in listed] == [batch.batch_id] and listed[0].items == []
    assert stub.ListMigrations(pb.ListMigrationsRequest(process_id="other")).batches == []
    entries = stub.ListAuditEntries(pb.ListAuditEntriesRequest(actor="root")).entries
    started = [e for e in entries if e.action == "migration.started"]
    assert [e.target for e in started] == [batch.batch_id] and "v2 review" in started[0].detail
    audit_all = stub.ListAuditEntries(pb.ListAuditEntriesRequest(actor="system")).entries
    assert [e.target for e in audit_all if e.action == "migration.completed"] == [batch.batch_id]


def test_the_selection_takes_a_business_key_an_element_and_names_instances_it_cannot_take(
    versions: Stub,
) -> None:
    stub = versions
    review = [start(stub, f"R{n}") for n in range(2)]
    intake = [start(stub, f"I{n}", path="intake") for n in range(2)]
    deploy(stub, V2)
    on_v2 = start(stub, "NEW")

    by_key = stub.PlanMigration(plan_request(business_key="I1"))
    assert by_key.selected == 1 and [c.instance_id for c in by_key.instances] == [intake[1]]
    assert not by_key.instances[0].applicable
    assert "intake" in " ".join(p.element_id + p.message for p in by_key.instances[0].problems)

    at_intake = stub.PlanMigration(plan_request(waiting_at_element_id="intake"))
    assert sorted(c.instance_id for c in at_intake.instances) == sorted(intake)

    everything = stub.PlanMigration(plan_request(page_size=3))
    assert everything.selected == 4 and len(everything.instances) == 3 and everything.next_page_token
    rest = stub.PlanMigration(plan_request(page_token=everything.next_page_token))
    assert len(rest.instances) == 1 and not rest.next_page_token
    shown = {c.instance_id: c.applicable for c in [*everything.instances, *rest.instances]}
    assert shown == {**dict.fromkeys(review, True), **dict.fromkeys(intake, False)}

    named = stub.PlanMigration(plan_request(instance_ids=[review[0], on_v2, "nope"]))
    assert [c.instance_id for c in named.instances] == [review[0]]
    problems = {p.instance_id: p.message for p in named.plan_problems}
    assert "onboarding:2" in problems[on_v2] and "no such instance" in problems["nope"]


def test_a_plan_refused_for_some_instance_changes_nothing_without_skip_refused(versions: Stub) -> None:
    stub = versions
    review = start(stub, "R")
    intake = start(stub, "I", path="intake")
    deploy(stub, V2)
    before = {i: stub.GetInstance(pb.GetInstanceRequest(instance_id=i)).revision for i in (review, intake)}
    plan_, selection = plan()
    details = refused(
        lambda: stub.StartMigration(pb.StartMigrationRequest(plan=plan_, selection=selection, reason="go")),
        CODE.FAILED_PRECONDITION,
        intake,
        "intake",
    )
    assert "skip_refused" in details
    assert stub.ListMigrations(pb.ListMigrationsRequest()).batches == []
    time.sleep(1.0)  # a runner that wrongly started would have moved something by now (not a pass condition)
    for instance_id, revision in before.items():
        instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
        assert (instance.definition_id, instance.revision) == ("onboarding:1", revision)


def test_skip_refused_moves_the_others_and_records_why_each_refused_one_stayed(versions: Stub) -> None:
    stub = versions
    review = [start(stub, f"R{n}") for n in range(2)]
    intake = [start(stub, f"I{n}", path="intake") for n in range(2)]
    deploy(stub, V2)
    plan_, selection = plan()
    batch = stub.StartMigration(
        pb.StartMigrationRequest(plan=plan_, selection=selection, reason="skip", skip_refused=True)
    )
    assert (batch.total, batch.skipped) == (4, 2)
    done = finished(stub, batch.batch_id)
    assert (done.migrated, done.skipped, done.failed) == (2, 2, 0)
    states = {i.instance_id: (i.state, i.message) for i in done.items}
    for instance_id in review:
        assert states[instance_id] == (pb.MIGRATION_ITEM_STATE_MIGRATED, "")
        assert migrated_events(stub, instance_id) == 1
    for instance_id in intake:
        state, message = states[instance_id]
        assert state == pb.MIGRATION_ITEM_STATE_SKIPPED and "intake" in message
        instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
        assert instance.definition_id == "onboarding:1" and migrated_events(stub, instance_id) == 0


def test_only_ops_may_plan_start_or_read_migrations(component: ComponentThread, versions: Stub) -> None:
    deploy(versions, V2)
    plan_, selection = plan()
    for who, roles in (("ann", ["analyst"]), ("chen", ["staff"]), ("cli", ["client"])):
        channel = signed_channel(component.address, who, roles=roles)
        other = pb_grpc.OrchestratorServiceStub(channel)
        calls = [
            ("PlanMigration", pb.PlanMigrationRequest(plan=plan_, selection=selection)),
            ("StartMigration", pb.StartMigrationRequest(plan=plan_, selection=selection, reason="x")),
            ("GetMigration", pb.GetMigrationRequest(batch_id="b")),
            ("ListMigrations", pb.ListMigrationsRequest()),
        ]
        for method, request in calls:
            refused(partial(getattr(other, method), request), CODE.PERMISSION_DENIED)
        channel.close()


def test_bad_requests_name_their_field_and_unknown_ones_are_not_found(versions: Stub) -> None:
    stub = versions
    start(stub, "R")
    deploy(stub, V2)
    plan_, selection = plan()
    refused(
        lambda: stub.StartMigration(pb.StartMigrationRequest(plan=plan_, selection=selection, reason=" ")),
        CODE.INVALID_ARGUMENT,
        "reason",
    )
    refused(
        lambda: stub.StartMigration(
            pb.StartMigrationRequest(plan=plan_, selection=selection, reason="x" * 2001)
        ),
        CODE.INVALID_ARGUMENT,
        "reason",
    )
    refused(
        lambda: stub.PlanMigration(pb.PlanMigrationRequest(plan=plan_, selection=selection, page_size=-1)),
        CODE.INVALID_ARGUMENT,
        "page_size",
    )
    refused(
        lambda: stub.PlanMigration(pb.PlanMigrationRequest(plan=plan_, page_token="x")),
        CODE.INVALID_ARGUMENT,
        "page_token",
    )
    refused(
        lambda: stub.PlanMigration(
            pb.PlanMigrationRequest(plan=plan_, selection=pb.MigrationSelection(instance_ids=[""]))
        ),
        CODE.INVALID_ARGUMENT,
        "selection.instance_ids",
    )
    nobody = pb.MigrationSelection(business_key="nobody")
    refused(
        lambda: stub.StartMigration(pb.StartMigrationRequest(plan=plan_, selection=nobody, reason="x")),
        CODE.FAILED_PRECONDITION,
        "no running instance of onboarding:1",
    )
    refused(
        lambda: stub.StartMigration(pb.StartMigrationRequest(reason="x")),
        CODE.INVALID_ARGUMENT,
        "plan.source_definition_id",
    )
    too_long = pb.MigrationSelection(instance_ids=["x" * 37])
    refused(
        lambda: stub.StartMigration(
            pb.StartMigrationRequest(plan=plan_, selection=too_long, reason="x", skip_refused=True)
        ),
        CODE.INVALID_ARGUMENT,
        "selection.instance_ids",
    )
    refused(lambda: stub.GetMigration(pb.GetMigrationRequest()), CODE.INVALID_ARGUMENT, "batch_id")
    refused(lambda: stub.GetMigration(pb.GetMigrationRequest(batch_id="nope")), CODE.NOT_FOUND, "nope")
    unknown = pb.MigrationPlan(source_definition_id="onboarding:1", target_definition_id="onboarding:9")
    refused(lambda: stub.PlanMigration(pb.PlanMigrationRequest(plan=unknown)), CODE.NOT_FOUND, "onboarding:9")
    refused(
        lambda: stub.StartMigration(pb.StartMigrationRequest(plan=unknown, reason="x")),
        CODE.NOT_FOUND,
        "onboarding:9",
    )


@pytest.fixture
def harness(database_url: str) -> Iterator[Harness]:
    """The use cases without a server or background loop, on SQLite and (when configured) PostgreSQL."""
    found = Harness(database_url)
    yield found
    found.close()


def test_two_runners_at_once_move_each_instance_once(harness: Harness) -> None:
    """No background loop here: two threads run the same batch at the same time, then a third run finds
    nothing left; every instance moved exactly once."""
    harness.deploy(onboarding=V1)
    ids = [harness.start("onboarding", f"K{n}", path="review") for n in range(6)]
    harness.deploy(onboarding=V2)
    plan_ = migration_plan_from_pb(plan()[0])
    orchestrator = harness.orchestrator
    batch = orchestrator.start_migration(plan_, Selection(), "twice", False, TESTER)
    barrier = threading.Barrier(2)
    settled: list[int] = []

    def runner() -> None:
        barrier.wait()
        settled.append(orchestrator.run_migrations())

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(settled) == len(ids)
    assert orchestrator.run_migrations() == 0
    view = orchestrator.get_migration(batch.batch_id)
    assert (view.batch.state, view.batch.migrated, view.batch.skipped) == ("COMPLETED", 6, 0)
    for instance_id in ids:
        assert len(harness.history(instance_id, "instance.migrated")) == 1
        assert harness.view(instance_id).instance.definition_id == "onboarding:2"


def test_the_cli_plans_runs_and_reports_a_migration(
    component: ComponentThread,
    versions: Stub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stub = versions
    review = start(stub, "R1")
    intake = start(stub, "I1", path="intake")
    deploy(stub, V2)
    monkeypatch.setenv("CONSULTFLOW_ORCHESTRATOR_ADDRESS", component.address)
    monkeypatch.setenv("CONSULTFLOW_CA_FILE", str(local_identity().ca))
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("otto", roles=["ops"]))

    def consultflow(*argv: str, code: int = 0) -> str:
        with pytest.raises(SystemExit) as exited:
            cli_main(list(argv))
        printed = capsys.readouterr()
        assert (exited.value.code or 0) == code, printed
        return printed.out + printed.err

    shown = consultflow("migration", "plan", "--from", "onboarding:1", "--to", "onboarding:2", code=4)
    assert "2 instances selected" in shown and "1 applicable, 1 refused" in shown
    assert review in shown and intake in shown and "REFUSED" in shown and "APPLICABLE" in shown
    refusal = consultflow(
        "migration", "run", "--from", "onboarding:1", "--to", "onboarding:2", "--reason", "r", code=4
    )
    assert "failed precondition" in refusal and intake in refusal
    mapped = consultflow(
        "migration", "plan", "--from", "onboarding:1", "--to", "onboarding:2", "--at", "review"
    )
    assert "1 instance selected" in mapped and "1 applicable, 0 refused" in mapped
    ran = consultflow(
        "migration",
        "run",
        "--from",
        "onboarding:1",
        "--to",
        "onboarding:2",
        "--reason",
        "review moved",
        "--skip-refused",
        "--wait",
    )
    assert "completed: 1 migrated, 1 skipped, 0 failed, 0 pending of 2" in ran
    batch_id = ran.split("migration ", 1)[1].split(" ", 1)[0]
    listed = consultflow("migration", "status")
    assert batch_id in listed and "COMPLETED" in listed
    one = consultflow("migration", "status", batch_id)
    assert "review moved" in one and "MIGRATED" in one and "SKIPPED" in one
    consultflow("migration", "status", "nope", code=3)
    usage = consultflow("migration", "plan", "--from", "onboarding", "--to", "onboarding:2", code=2)
    assert "PROCESS:VERSION" in usage
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("ann", roles=["analyst"]))
    assert "permission denied" in consultflow("migration", "status", code=4)


def test_the_cli_moves_one_instance_to_another_element(
    component: ComponentThread,
    versions: Stub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stub = versions
    instance_id = start(stub, "I1", path="intake")
    monkeypatch.setenv("CONSULTFLOW_ORCHESTRATOR_ADDRESS", component.address)
    monkeypatch.setenv("CONSULTFLOW_CA_FILE", str(local_identity().ca))
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("otto", roles=["ops"]))

    def consultflow(*argv: str, code: int = 0) -> str:
        with pytest.raises(SystemExit) as exited:
            cli_main(list(argv))
        printed = capsys.readouterr()
        assert (exited.value.code or 0) == code, printed
        return printed.out + printed.err

    moved = consultflow(
        "instance",
        "move",
        instance_id,
        "--cancel",
        "intake",
        "--to",
        "review",
        "--reason",
        "intake done by phone",
    )
    assert "intake" in moved and "canceled" in moved and "activated" in moved
    assert f"instance {instance_id} now waits at: review" in moved
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
    assert [a.element_id for a in instance.active_elements] == ["review"]
    refusal = consultflow("instance", "move", instance_id, "--cancel", "intake", "--reason", "again", code=4)
    assert "intake" in refusal
    assert "required" in consultflow("instance", "move", instance_id, "--to", "review", code=2)


def test_an_instance_that_changed_after_the_start_fails_ends_or_moved_is_settled_without_a_move(
    harness: Harness,
) -> None:
    """Between the batch's check and an instance's turn: one is moved to an element the target lacks
    (FAILED, untouched), one is cancelled (SKIPPED), one is migrated on its own first (SKIPPED); the others
    migrate, and the counters say so."""
    harness.deploy(onboarding=V1)
    ids = [harness.start("onboarding", f"K{n}", path="review") for n in range(5)]
    harness.deploy(onboarding=V2)
    orchestrator = harness.orchestrator
    plan_ = migration_plan_from_pb(plan()[0])
    batch = orchestrator.start_migration(plan_, Selection(), "later", False, TESTER)
    orchestrator.modify_instance(ids[0], ["review"], "intake", "", "back to intake", {}, TESTER)
    orchestrator.cancel_instance(ids[1], "client left", TESTER)
    orchestrator.migrate_instance(plan_, ids[2], TESTER, "one first, by hand")
    revision = harness.view(ids[0]).instance.revision
    while orchestrator.run_migrations():
        pass
    view = orchestrator.get_migration(batch.batch_id)
    items = {i.instance_id: (i.state, i.message) for i in view.items}
    assert items[ids[0]][0] == "FAILED" and "intake" in items[ids[0]][1]
    assert items[ids[1]] == ("SKIPPED", "the instance is canceled")
    assert items[ids[2]][0] == "SKIPPED" and "onboarding:2" in items[ids[2]][1]
    assert {items[i] for i in ids[3:]} == {("MIGRATED", "")}
    state = view.batch
    assert (state.state, state.migrated, state.skipped, state.failed) == ("COMPLETED", 2, 2, 1)
    failed = harness.view(ids[0]).instance
    assert (failed.definition_id, failed.revision) == ("onboarding:1", revision)
    for instance_id in ids[2:]:
        assert len(harness.history(instance_id, "instance.migrated")) == 1


def test_with_incidents_selects_only_the_instances_that_have_open_ones(harness: Harness) -> None:
    def work(version_note: str) -> bytes:
        return bpmn(
            "svc",
            f'<startEvent id="s"/>{service_task("work", "crm.work", note=version_note)}<endEvent id="e"/>',
            "s -> work\nwork -> e",
        )

    harness.deploy(svc=work('"one"'))
    ids = [harness.start("svc", f"S{n}") for n in range(3)]
    job = harness.job("crm.work", ids[1])
    harness.orchestrator.fail_job(job.job_key, retries=0, backoff_ms=0, message="down")
    harness.deploy(svc=work('"two"'))
    plan_ = migration_plan_from_pb(
        pb.MigrationPlan(source_definition_id="svc:1", target_definition_id="svc:2")
    )
    found = harness.orchestrator.plan_migration(plan_, Selection(with_incidents=True))
    assert (found.selected, [c.instance_id for c in found.checks]) == (1, [ids[1]])
    at_work = harness.orchestrator.plan_migration(plan_, Selection(waiting_at_element_id="work"))
    assert sorted(c.instance_id for c in at_work.checks) == sorted(ids)


def test_only_the_owner_of_partition_0_runs_batches(harness: Harness) -> None:
    harness.deploy(onboarding=V1)
    ids = [harness.start("onboarding", f"K{n}", path="review") for n in range(2)]
    harness.deploy(onboarding=V2)
    orchestrator = harness.orchestrator
    batch = orchestrator.start_migration(
        migration_plan_from_pb(plan()[0]), Selection(), "owner", False, TESTER
    )
    owned = [Owned(frozenset({1}), 2)]

    async def rounds() -> tuple[int, int]:
        with ThreadPoolExecutor(2) as executor:
            scheduler = Scheduler(orchestrator, executor, lambda: owned[0])
            elsewhere = await scheduler.migration_round()
            owned[0] = Owned(frozenset({0}), 2)
            return elsewhere, await scheduler.migration_round()

    assert asyncio.run(rounds()) == (0, 2)
    assert orchestrator.get_migration(batch.batch_id).batch.state == "COMPLETED"
    assert {harness.view(i).instance.definition_id for i in ids} == {"onboarding:2"}


def test_batches_are_listed_newest_first_a_page_at_a_time(harness: Harness) -> None:
    harness.deploy(onboarding=V1)
    ids = [harness.start("onboarding", f"K{n}", path="review") for n in range(3)]
    harness.deploy(onboarding=V2)
    orchestrator = harness.orchestrator
    plan_ = migration_plan_from_pb(plan()[0])
    batches = [
        orchestrator.start_migration(plan_, Selection(instance_ids=(i,)), f"one by one {n}", False, TESTER)
        for n, i in enumerate(ids)
    ]
    first, token = orchestrator.list_migrations("onboarding", page_size=2)
    rest, last = orchestrator.list_migrations("onboarding", page_size=2, page_token=token)
    assert [b.batch_id for b in [*first, *rest]] == [b.batch_id for b in reversed(batches)]
    assert token and not last
    assert orchestrator.list_migrations("other") == ([], "")
