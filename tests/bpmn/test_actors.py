"""bpmn/actors.toml is the one catalogue of the actors the diagrams name: every candidate group and every
lane of every diagram is in it, and every entry is used by some diagram."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.support.catalogue import BPMN_DIR, CAMUNDA, NS, diagram_files, lane_groups, parse

SCOPES = {"firm", "engagement", "external"}


def _actors() -> list[dict[str, Any]]:
    data = tomllib.loads((BPMN_DIR / "actors.toml").read_text(encoding="utf-8"))
    actors: list[dict[str, Any]] = data["actor"]
    return actors


def _by_id() -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in _actors()}


def _used() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(candidate group → files naming it, lane label → files drawing it)."""
    groups: dict[str, set[str]] = {}
    lanes: dict[str, set[str]] = {}
    for path in diagram_files():
        root = parse(path)
        for task in root.iterfind(".//bpmn:userTask", NS):
            for group in (task.get(f"{CAMUNDA}candidateGroups") or "").split(","):
                if group.strip():
                    groups.setdefault(group.strip(), set()).add(path.name)
        for lane in root.iterfind(".//bpmn:lane", NS):
            lanes.setdefault(lane.get("name") or "", set()).add(path.name)
    return groups, lanes


def test_entries_are_well_formed_and_unique() -> None:
    actors = _actors()
    ids = [a["id"] for a in actors]
    assert len(ids) == len(set(ids)), "duplicate ids"
    for actor in actors:
        assert re.fullmatch(r"[a-z][a-z_]*", actor["id"]), actor["id"]
        assert actor["zh"] and actor["en"] and actor["who"], actor["id"]
        assert actor["scope"] in SCOPES, actor["id"]
        assert actor["clauses"], f"{actor['id']} names no clause"
        for clause in actor["clauses"]:
            assert re.fullmatch(r"\d+\.\d+\.\d+", clause), (actor["id"], clause)
        assert bool(actor.get("people")) == (actor["scope"] == "engagement"), (
            f"{actor['id']}: an engagement role, and only one, names the variables recording its people"
        )


def test_every_candidate_group_is_catalogued() -> None:
    groups, _ = _used()
    unknown = {g: sorted(files) for g, files in groups.items() if g not in _by_id()}
    assert not unknown, f"candidate groups missing from bpmn/actors.toml: {unknown}"


def test_every_lane_is_catalogued() -> None:
    _, lanes = _used()
    labels = {f"{a['zh']} {a['en']}" for a in _actors()}
    unknown = {name: sorted(files) for name, files in lanes.items() if name not in labels}
    assert not unknown, f"lanes missing from bpmn/actors.toml: {unknown}"


def _black_box_pools() -> set[str]:
    """The names of the pools drawn without a process (the client's, as the drawing convention asks)."""
    return {
        p.get("name") or ""
        for path in diagram_files()
        for p in parse(path).iterfind(".//bpmn:participant", NS)
        if not p.get("processRef")
    }


@pytest.mark.parametrize("actor_id", [a["id"] for a in _actors()])
def test_every_entry_is_used(actor_id: str) -> None:
    """A group or lane of some diagram; an external actor (the client) is its own black-box pool instead."""
    groups, lanes = _used()
    actor = _by_id()[actor_id]
    label = f"{actor['zh']} {actor['en']}"
    pool = actor["scope"] == "external" and label in _black_box_pools()
    assert actor_id in groups or label in lanes or pool, f"{actor_id} is used by no diagram"


def test_it_agrees_with_the_candidate_group_table_in_operations_md() -> None:
    table = lane_groups()  # lane label → group
    assert table == {f"{a['zh']} {a['en']}": a["id"] for a in _actors()}


def test_engagement_roles_name_variables_some_form_records() -> None:
    fields = {
        node.get("id")
        for path in diagram_files()
        for node in parse(path).iterfind(".//camunda:formField", NS)
    }
    for actor in _actors():
        for variable in actor.get("people", []):
            assert variable in fields, f"{actor['id']}: no form records {variable!r}"


def test_the_process_model_lists_the_catalogue() -> None:
    text = (BPMN_DIR.parent / "docs" / "process-model.md").read_text(encoding="utf-8")
    section = text.split("## Actors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| (\w+) \|", section, re.MULTILINE)
    assert [(g, lane.strip(), scope) for g, lane, scope in rows] == [
        (a["id"], f"{a['zh']} {a['en']}", a["scope"]) for a in _actors()
    ]
