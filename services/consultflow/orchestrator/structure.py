"""What a deploy refuses about a process's shape, and why (docs/limits.md).

A diagram is code an analyst wrote; some shapes can only hurt the engine: a path too long for the
engine to walk, sub-processes nested too deep, a loop that can neither wait nor leave (it would spin for
ever inside one instance), a timer that repeats faster than the engine should wake (a cycle, or a short
timer in a loop), a split into more branches than the engine will start at once, a process that calls
itself (the engine starts a called process as soon as the call activity is reached, so the copies never
end), and names carrying control characters. Each is refused at deploy, naming the element at fault.
What is computed at run time (a variable's cycle or cardinality) is not known here; run time holds it.

The checks read the XML trees before SpiffWorkflow's parser runs (that parser recurses and dies on long
chains). Every one is iterative and linear in the size of the diagram, so a hostile 2 MiB diagram is
refused in well under a second and never exhausts the stack.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from consultflow.orchestrator.timer_events import recurring_interval
from consultflow.platform.limits import Limits

ACTIVITIES_WITH_SCOPE = frozenset({"subProcess", "transaction", "adHocSubProcess"})
FLOW_NODES = ACTIVITIES_WITH_SCOPE | {
    "task",
    "userTask",
    "serviceTask",
    "sendTask",
    "receiveTask",
    "scriptTask",
    "businessRuleTask",
    "manualTask",
    "callActivity",
    "startEvent",
    "endEvent",
    "intermediateCatchEvent",
    "intermediateThrowEvent",
    "boundaryEvent",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "complexGateway",
}
WAIT_STATES = frozenset(
    {"userTask", "serviceTask", "receiveTask", "intermediateCatchEvent", "eventBasedGateway", "callActivity"}
)
"""Elements at which an instance waits for something outside the engine: a person, a worker (our service
tasks wait for one), a message, a timer, or a called process (which may wait). Script, business rule,
manual and plain tasks, gateways and throw events pass through without waiting in this engine."""

SHOWN_CHARACTERS = 120
"""An element id in an error message is cut to this length (a hostile id may be a megabyte)."""

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_FEED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile("&#(?:9|10|13);|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
"""A control character anywhere in a serialized document (libxml2 writes tab, line feed and carriage
return inside attributes as character references)."""
_MATCHED_BY_NAME = frozenset({"message", "signal", "error", "escalation"})
"""Elements whose names are matched against what callers send (message names, codes): no control
characters at all. Other elements' names are labels, where a line feed is how modelers break lines."""


@dataclass(frozen=True)
class Problem:
    """Why a deploy is refused: the resource, the element (its id) and line at fault, and what is wrong."""

    resource: str
    text: str
    element: str
    line: int
    rule: str = ""  # which check refused it, e.g. "limit.max_fan_out" (what a modeler may look up)


class _Refused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def first_problem(trees: Mapping[str, Any], limits: Limits) -> Problem | None:
    """The first shape of these resources that `limits` forbid, or None (the deploy raises it).

    `trees` maps resource names to parsed lxml trees; names not ending in .bpmn, .bpmn20.xml or .dmn are
    left to the caller (which refuses them).
    """
    found = problems(trees, limits)
    return found[0] if found else None


def problems(trees: Mapping[str, Any], limits: Limits) -> list[Problem]:
    """Every shape these resources have that `limits` forbid, in the order a deploy meets them: each
    check reports its first problem and the others still run (a validation shows them all at once)."""
    found: list[Problem] = []

    def run(check: Any, *args: Any) -> None:
        try:
            check(*args)
        except _Refused as refused:
            found.append(refused.problem)

    bpmn = {n: t for n, t in trees.items() if n.endswith(".bpmn") or n.endswith(".bpmn20.xml")}
    for name, tree in trees.items():
        if name in bpmn or name.endswith(".dmn"):
            run(_check_names, name, tree.getroot())
    processes: list[Process] = []
    for name, tree in bpmn.items():
        for element in tree.getroot():
            if _local(element) == "process" and element.get("isExecutable", "true") == "true":
                processes.append(_read_process(name, element))  # as Spiff: others never run
    run(_check_call_cycles, processes)
    for process in processes:
        run(_check_timers, process, limits)
        for scope in process.scopes:
            run(_check_nesting, scope, limits)
            run(_check_fan_out, scope, limits)
            components = strongly_connected(scope.nodes, scope.successors)
            run(_check_path_length, scope, components, limits)
            run(_check_loops, scope, components, process.waiting, limits)
    return found


# ------------------------------------------------------------------------------------------- reading


@dataclass
class Scope:
    """A process or sub-process: its flow nodes and the sequence flows between them."""

    resource: str
    element: Any
    nodes: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)  # node id → local tag name (lxml is slow to read)
    successors: dict[str, list[str]] = field(default_factory=dict)
    outgoing: dict[str, int] = field(default_factory=dict)  # sequence flows leaving each node
    dangling: set[str] = field(default_factory=set)  # nodes with a flow to no node of the scope
    waits: bool = False  # a flow node of the scope (not an event sub-process) is a wait state
    depth: int = 0  # sub-processes around it (0: the process itself)
    copies: int = 1  # how many run at once: the product of the literal parallel cardinalities around it


@dataclass
class Process:
    """A top-level process, its scopes (itself first, then every sub-process), and what it calls."""

    resource: str
    element: Any
    scopes: list[Scope]
    calls: list[Any]  # call activities anywhere inside
    waiting: set[str]  # ids of the sub-processes inside that wait

    @property
    def id(self) -> str:
        return str(self.element.get("id") or "")


def _read_process(resource: str, element: Any) -> Process:
    """Reads a process and every sub-process inside it with an explicit stack (no recursion)."""
    scopes: list[Scope] = []
    calls: list[Any] = []
    pending: list[tuple[Any, int, int]] = [(element, 0, 1)]
    while pending:
        scope_element, depth, copies = pending.pop()
        scope = Scope(resource, scope_element, depth=depth, copies=copies)
        scopes.append(scope)
        flows: list[Any] = []
        links: dict[str, list[str]] = {}  # link name → catch events
        throws: list[tuple[str, str]] = []  # (throw event id, link name)
        for child in scope.element:
            kind = _local(child)
            if kind == "sequenceFlow":
                flows.append(child)
                continue
            if kind not in FLOW_NODES or not child.get("id"):
                continue
            node_id = child.get("id")
            scope.nodes[node_id] = child
            scope.kinds[node_id] = kind
            scope.successors[node_id] = []
            if kind in ACTIVITIES_WITH_SCOPE:
                pending.append((child, depth + 1, copies * _parallel_cardinality(child)))
            elif kind == "callActivity":
                calls.append(child)
            link = _link_name(child) if kind.startswith("intermediate") else None
            if link is not None and kind == "intermediateCatchEvent":
                links.setdefault(link, []).append(node_id)
            elif link is not None and kind == "intermediateThrowEvent":
                throws.append((node_id, link))
        for flow in flows:
            source, target = flow.get("sourceRef"), flow.get("targetRef")
            if source in scope.nodes:
                scope.outgoing[source] = scope.outgoing.get(source, 0) + 1
                if target in scope.nodes:
                    scope.successors[source].append(target)
                else:
                    scope.dangling.add(source)  # Spiff names the missing target; not a loop's fault
        for node_id, node in scope.nodes.items():
            host = node.get("attachedToRef") if scope.kinds[node_id] == "boundaryEvent" else None
            if host in scope.nodes:
                scope.successors[host].append(node_id)  # when the host waits, its boundary event may leave
        for throw, link in throws:
            scope.successors[throw].extend(links.get(link, ()))
    return Process(resource, element, scopes, calls, _waiting_sub_processes(scopes))


def _waiting_sub_processes(scopes: Sequence[Scope]) -> set[str]:
    """A sub-process waits when one of its own flow nodes waits (not counting event sub-processes, which
    need not start); inner scopes come later in `scopes`, so walking backwards settles them first."""
    waiting: set[str] = set()
    for scope in reversed(scopes):
        scope.waits = any(
            _waits(scope.kinds[n], node, waiting)
            for n, node in scope.nodes.items()
            if not _is_event_sub(scope.kinds[n], node)
        )
        if scope.waits:
            waiting.add(str(scope.element.get("id") or ""))
    return waiting


def _waits(kind: str, node: Any, waiting_sub_processes: set[str]) -> bool:
    """Whether an instance may wait at `node` (a `kind` element) for something outside the engine."""
    if kind in ACTIVITIES_WITH_SCOPE:
        return node.get("id") in waiting_sub_processes
    if kind == "intermediateCatchEvent":
        return _link_name(node) is None  # a link catch event is a jump, not a wait
    return kind in WAIT_STATES


def _is_event_sub(kind: str, node: Any) -> bool:
    return kind in ACTIVITIES_WITH_SCOPE and (node.get("triggeredByEvent") or "").lower() == "true"


def _link_name(node: Any) -> str | None:
    for child in node:
        if _local(child) == "linkEventDefinition":
            return str(child.get("name") or child.get("id") or "")
    return None


def _cardinality(node: Any) -> tuple[int | None, bool]:
    """A multi-instance activity's literal loopCardinality (None: none, or computed at run time) and
    whether its instances run in parallel."""
    for marker in node:
        if _local(marker) == "multiInstanceLoopCharacteristics":
            parallel = (marker.get("isSequential") or "false").lower() != "true"
            for child in marker:
                if _local(child) == "loopCardinality":
                    value = _literal(child.text)
                    return (value if isinstance(value, int) else None), parallel
            return None, parallel
    return None, False


def _parallel_cardinality(node: Any) -> int:
    """How many copies of what is inside `node` run at once, as far as the diagram says (at least 1)."""
    cardinality, parallel = _cardinality(node)
    return max(cardinality, 1) if parallel and cardinality is not None else 1


def _timer(node: Any) -> tuple[str, Any] | None:
    """(timeCycle/timeDuration/timeDate, its literal value or None) of a timer event, else None."""
    for definition in node:
        if _local(definition) == "timerEventDefinition":
            for child in definition:
                kind = _local(child)
                if kind in ("timeCycle", "timeDuration", "timeDate"):
                    return kind, _literal(child.text)
    return None


# -------------------------------------------------------------------------------------------- graphs


def strongly_connected(nodes: Iterable[str], successors: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively; each component comes after every component
    it reaches (reverse topological order of the condensation)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work[-1]
            following = successors.get(node, ())
            if position < len(following):
                work[-1] = (node, position + 1)
                target = following[position]
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


def is_cycle(component: Sequence[str], successors: Mapping[str, Sequence[str]]) -> bool:
    """A component loops when it has several members or its one member has a flow to itself."""
    return len(component) > 1 or component[0] in successors.get(component[0], ())


@dataclass(frozen=True)
class LongestPath:
    """The longest acyclic path of a scope in elements (a loop counts each of its members once)."""

    length: int
    first: str  # where the path starts
    passes_limit: str  # the element at which the path grew past the limit ("" when it did not)


def longest_path(
    components: Sequence[Sequence[str]], successors: Mapping[str, Sequence[str]], limit: int
) -> LongestPath:
    """The longest path through the condensation of a graph (each loop one step weighing its member
    count) given its `strongly_connected` components, and the element at which it grows past `limit`."""
    if not components:
        return LongestPath(0, "", "")
    component_of = {member: number for number, component in enumerate(components) for member in component}
    length = [len(c) for c in components]
    previous: list[int | None] = [None] * len(components)
    for number in range(len(components) - 1, -1, -1):  # topological order: predecessors first
        for member in components[number]:
            for target in successors.get(member, ()):
                reached = component_of[target]
                if reached != number and length[number] + len(components[reached]) > length[reached]:
                    length[reached] = length[number] + len(components[reached])
                    previous[reached] = number
    end = max(range(len(components)), key=lambda n: length[n])
    passed = end
    start = end
    while True:
        before = previous[start]
        if before is None:
            break
        if length[before] > limit:
            passed = before
        start = before
    longest = length[end]
    return LongestPath(
        longest, _first(components[start]), _first(components[passed]) if longest > limit else ""
    )


def _first(component: Sequence[str]) -> str:
    return min(component)


# -------------------------------------------------------------------------------------------- checks


def _check_names(resource: str, root: Any) -> None:
    """Ids, names and codes with control characters would be echoed into logs, messages and screens."""
    if not _ANY_CONTROL.search(etree.tostring(root, encoding="unicode")):
        return  # the usual case, decided in C: no control character in any attribute or text
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        matched = _local(element) in _MATCHED_BY_NAME
        for attribute in ("id", "name", "errorCode", "escalationCode"):
            value = element.get(attribute)
            if not value:
                continue
            pattern = _CONTROL if attribute != "name" or matched else _CONTROL_BUT_LINE_FEED
            found = pattern.search(value)
            if found:
                _refuse(
                    resource,
                    f"the {attribute} of a {_local(element)} contains the control character "
                    f"U+{ord(found.group()):04X}; ids, names and codes may not contain control characters",
                    element,
                    shown=element.get("id") if attribute != "id" else value,
                    rule="name.control_character",
                )


def _check_call_cycles(processes: Sequence[Process]) -> None:
    """A process that calls itself, directly or through others, starts copies of itself without end: the
    engine instantiates a called process as soon as its call activity is reached."""
    by_id = {p.id: p for p in processes if p.id}
    successors: dict[str, list[str]] = {pid: [] for pid in by_id}
    for process in by_id.values():
        for call in process.calls:
            called = call.get("calledElement") or ""
            if called in by_id:
                successors[process.id].append(called)
    for component in strongly_connected(list(by_id), successors):
        if not is_cycle(component, successors):
            continue
        members = set(component)
        for pid in sorted(members):
            process = by_id[pid]
            for call in process.calls:
                if call.get("calledElement") in members:
                    cycle = " → ".join(_shown(c) for c in _call_cycle(pid, successors, members))
                    _refuse(
                        process.resource,
                        f"a call activity that starts {_shown(pid)!r} again ({cycle}): a process may not "
                        f"call itself, directly or through others (the engine starts a called process as "
                        f"soon as it is reached, so the copies would never end); repeat work with a loop "
                        f"that waits, or a message",
                        call,
                        rule="call.cycle",
                    )


def _call_cycle(start: str, successors: Mapping[str, Sequence[str]], members: set[str]) -> list[str]:
    """A shortest call path from `start` back to itself within its component (breadth first)."""
    came_from: dict[str, str] = {start: ""}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for pid in frontier:
            for called in successors[pid]:
                if called == start:
                    path = [pid]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if called in members and called not in came_from:
                    came_from[called] = pid
                    following.append(called)
        frontier = following
    return [start, start]


def _check_fan_out(scope: Scope, limits: Limits) -> None:
    """More branches than `max_fan_out` from one element, or a literal multi-instance cardinality above
    it, would start that many tokens in one step; inside a parallel multi-instance sub-process with a
    literal cardinality, every copy does it at once, so the product counts."""
    around = f" (× {scope.copies} parallel copies of the sub-process around it)" if scope.copies > 1 else ""
    for node_id, count in scope.outgoing.items():
        if count * scope.copies > limits.max_fan_out:
            _refuse(
                scope.resource,
                f"{count} outgoing sequence flows{around}: more than max_fan_out ({limits.max_fan_out}) "
                f"branches at once; split the work into stages or use a call activity per group",
                scope.nodes[node_id],
                rule="limit.max_fan_out",
            )
    for node in scope.nodes.values():
        cardinality, _parallel = _cardinality(node)
        if cardinality is not None and cardinality * scope.copies > limits.max_fan_out:
            _refuse(
                scope.resource,
                f"a multi-instance loopCardinality of {cardinality}{around}: more than max_fan_out "
                f"({limits.max_fan_out}) instances of one activity",
                node,
                rule="limit.max_fan_out",
            )


def _check_nesting(scope: Scope, limits: Limits) -> None:
    """Each sub-process is a workflow of its own inside the engine; the engine's work for one step grows
    with how deeply they nest."""
    if scope.depth > limits.max_sub_process_depth:
        _refuse(
            scope.resource,
            f"sub-processes nested {scope.depth} deep: more than max_sub_process_depth "
            f"({limits.max_sub_process_depth}); flatten them or use call activities",
            scope.element,
            rule="limit.max_sub_process_depth",
        )


def _check_path_length(scope: Scope, components: Sequence[Sequence[str]], limits: Limits) -> None:
    """The engine walks paths with bounded effort; longer processes belong in call activities."""
    path = longest_path(components, scope.successors, limits.max_path_length)
    if path.passes_limit:
        _refuse(
            scope.resource,
            f"a path of {path.length} elements (from {_shown(path.first)!r}) passes max_path_length "
            f"({limits.max_path_length}) at this element: split the process into call activities",
            scope.nodes[path.passes_limit],
            rule="limit.max_path_length",
        )


def _check_loops(
    scope: Scope, components: Sequence[Sequence[str]], waiting: set[str], limits: Limits
) -> None:
    """A loop with no way out and no wait state spins for ever inside one instance; a timer in a loop
    repeats like a cycle, so it is held to the cycle's minimum."""
    for component in components:
        if not is_cycle(component, scope.successors):
            continue
        _check_timers_in_loop(scope, component, limits)
        members = set(component)
        if any(_waits(scope.kinds[m], scope.nodes[m], waiting) for m in component):
            continue
        if any(_exits(scope, member, members) for member in component):
            continue
        named = sorted(component)
        shown = ", ".join(repr(_shown(m)) for m in named[:10]) + (" …" if len(named) > 10 else "")
        _refuse(
            scope.resource,
            f"a loop of {len(named)} element(s) ({shown}) with no way out and no wait state would run "
            f"for ever: add a flow that leaves the loop or an element that waits (a user or service "
            f"task, a receive task, a catch event)",
            scope.nodes[named[0]],
            rule="loop.no_wait_state",
        )


def _check_timers_in_loop(scope: Scope, component: Sequence[str], limits: Limits) -> None:
    """A literal duration below `min_timer_cycle_seconds`, or a literal date (once past, it no longer
    waits), on a timer event in a loop would let the loop go round faster than a cycle may fire."""
    for member in component:
        if scope.kinds[member] not in ("intermediateCatchEvent", "boundaryEvent"):
            continue
        timer = _timer(scope.nodes[member])
        if timer is None or not isinstance(timer[1], str):
            continue
        kind, value = timer
        if kind == "timeDate":
            _refuse(
                scope.resource,
                f"a timer with the fixed date {_shown(value)!r} in a loop: once the date has passed it no "
                f"longer waits, and the loop would run without pause; compute the date, or use a duration",
                scope.nodes[member],
                rule="timer.date_in_loop",
            )
        if kind == "timeDuration":
            seconds = _duration_seconds(value)
            if seconds is not None and seconds < limits.min_timer_cycle_seconds:
                _refuse(
                    scope.resource,
                    f"a timer of {seconds:g} s in a loop repeats like a cycle: below "
                    f"min_timer_cycle_seconds ({limits.min_timer_cycle_seconds:g} s)",
                    scope.nodes[member],
                    rule="limit.min_timer_cycle_seconds",
                )


def _duration_seconds(value: str) -> float | None:
    try:
        parsed = TimerEventDefinition.parse_iso_duration(value)
        return float(TimerEventDefinition.get_timedelta_from_start(parsed, datetime.now(UTC)).total_seconds())
    except Exception:
        return None  # reported by _check_timers


def _exits(scope: Scope, member: str, members: set[str]) -> bool:
    """A loop is left by a flow (or an attached boundary event) to an element outside it, an end event
    inside it, or an escalation it throws (an enclosing boundary or event sub-process may catch it)."""
    node = scope.nodes[member]
    kind = scope.kinds[member]
    if kind == "endEvent" or member in scope.dangling:
        return True
    if kind == "intermediateThrowEvent" and any(_local(d) == "escalationEventDefinition" for d in node):
        return True
    return any(target not in members for target in scope.successors.get(member, ()))


EXAMPLES = {
    "timeCycle": "repeating interval such as R/PT1H",
    "timeDuration": "duration such as PT1H",
    "timeDate": "date with a UTC offset such as 2030-01-01T09:00:00+00:00",
}


def _check_timers(process: Process, limits: Limits) -> None:
    """A literal timer that cannot be read would fail at run time; a cycle below the minimum would wake
    the engine more often than `min_timer_cycle_seconds` allows."""
    now = datetime.now(UTC)
    for definition in process.element.iter("{*}timerEventDefinition"):
        event = definition.getparent()
        for child in definition:
            kind = _local(child)
            value = _literal(child.text)
            if kind not in ("timeCycle", "timeDuration", "timeDate") or not isinstance(value, str):
                continue  # an expression is read at run time, where the same limits hold
            try:
                if kind == "timeCycle":
                    interval = recurring_interval(value, now)[2].total_seconds()
                elif kind == "timeDuration":
                    TimerEventDefinition.get_timedelta_from_start(
                        TimerEventDefinition.parse_iso_duration(value), now
                    )
                else:
                    TimerEventDefinition.get_datetime(value)
            except Exception as exc:
                _refuse(
                    process.resource,
                    f"the {kind} {_shown(value)!r} does not parse ({_shown(str(exc))}); write an ISO 8601 "
                    f"{EXAMPLES[kind]}",
                    event,
                    rule="timer.parse",
                )
            if kind == "timeCycle" and interval < limits.min_timer_cycle_seconds:
                _refuse(
                    process.resource,
                    f"the timeCycle {_shown(value)!r} repeats every {interval:g} s: below "
                    f"min_timer_cycle_seconds ({limits.min_timer_cycle_seconds:g} s)",
                    event,
                    rule="limit.min_timer_cycle_seconds",
                )


# ------------------------------------------------------------------------------------------- helpers


def _literal(text: str | None) -> Any:
    """The value of an expression that is a Python literal (a string or a number), else None."""
    if not text:
        return None
    text = text.strip()
    if not text or len(text) > 1000:
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    body = tree.body
    negative = isinstance(body, ast.UnaryOp) and isinstance(body.op, ast.USub)
    if negative:
        body = body.operand  # type: ignore[attr-defined]
    if not isinstance(body, ast.Constant) or isinstance(body.value, bool):
        return None
    if negative:
        return -body.value if isinstance(body.value, int | float) else None
    return body.value


def _local(element: Any) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _shown(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "…"


def _refuse(resource: str, problem: str, element: Any, rule: str, shown: str | None = None) -> None:
    element_id = shown if shown is not None else element.get("id")
    line = int(getattr(element, "sourceline", 0) or 0)
    raise _Refused(Problem(resource, problem, _shown(element_id), line, rule))
