"""Decision tables (DMN in bpmn/): read once, checked whole, evaluated in one place by services and by the
orchestrator's business rule tasks, so a rule lives in exactly one place: the table analysts edit.

Cells are FEEL unary tests and literals in the subset `platform.feel` reads (what dmn-js writes); a table
with any other cell is refused when it is read, with the table, the rule and the column named. Input
expressions (a column's `inputExpression`) stay expressions on the task's data, evaluated by the restricted
script engine. Hit policies: UNIQUE (two matching rules are an error), FIRST (the first matching rule in
table order), ANY (every matching rule must give the same outputs) and COLLECT without aggregation (each
output becomes the list of the matching rules' values, in table order).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from consultflow.platform.errors import FailedPrecondition
from consultflow.platform.feel import (
    Equals,
    FeelError,
    Output,
    UnaryTests,
    literal_text,
    parse_output,
    parse_unary_tests,
)
from consultflow.platform.scripting import ScriptEngine, ScriptViolation, check

_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

HIT_POLICIES = ("UNIQUE", "FIRST", "ANY", "COLLECT")
"""The hit policies evaluated; a table with another one is refused."""

_KINDS: dict[str, type] = {
    "string": str,
    "boolean": bool,
    "number": Decimal,
    "integer": Decimal,
    "long": Decimal,
    "double": Decimal,
}
"""A column's `typeRef` → the type of the literals its cells may name (other typeRefs are not checked)."""


class DecisionTableError(ValueError):
    """A table outside what is evaluated; names the file, the decision, and the rule and column."""

    def __init__(
        self,
        source: str,
        decision_id: str,
        problem: str,
        *,
        rule: Rule | None = None,
        column: str = "",
        element: str = "",
        line: int = 0,
    ) -> None:
        where = f"decision {decision_id!r}"
        if rule is not None:
            where += f", rule {rule.number} ({rule.id})"
        if column:
            where += f", {column}"
        self.source = source
        self.decision_id = decision_id
        self.detail = f"{where}: {problem}"
        self.element = element
        self.line = line
        super().__init__(f"{source}: {self.detail}")


class DecisionError(Exception):
    """Evaluating a table failed: an input that could not be read or compared, or a hit policy broken
    (two rules matching a UNIQUE table)."""


@dataclass(frozen=True)
class InputColumn:
    id: str
    label: str
    expression: str
    type_ref: str
    allowed: UnaryTests | None  # inputValues

    @property
    def title(self) -> str:
        return f"input {self.label!r}"


@dataclass(frozen=True)
class OutputColumn:
    id: str
    label: str
    name: str
    type_ref: str
    allowed: UnaryTests | None  # outputValues

    @property
    def title(self) -> str:
        return f"output {self.label or self.name!r}"


@dataclass(frozen=True)
class Rule:
    id: str
    number: int  # 1-based, in table order
    description: str
    tests: tuple[UnaryTests, ...]
    outputs: tuple[Output, ...]
    output_texts: tuple[str, ...]

    def __str__(self) -> str:
        return f"rule {self.number} ({self.id})"


@dataclass(frozen=True)
class DecisionTable:
    """One decision's table, every cell already read."""

    decision_id: str
    name: str
    source: str  # file name
    hit_policy: str
    inputs: tuple[InputColumn, ...]
    outputs: tuple[OutputColumn, ...]
    rules: tuple[Rule, ...]

    def matching(self, read: Callable[[str], object]) -> list[Rule]:
        """The rules whose every input entry holds, in table order (for FIRST, only the first). `read`
        evaluates an input expression; each is read once, and only when a cell needs it."""
        values: dict[int, object] = {}

        def value(index: int) -> object:
            if index not in values:
                column = self.inputs[index]
                try:
                    values[index] = read(column.expression)
                except Exception as exc:
                    raise DecisionError(
                        f"{self.title}, {column.title}: cannot evaluate {column.expression!r}: {exc}"
                    ) from exc
            return values[index]

        found: list[Rule] = []
        for rule in self.rules:
            if self._holds(rule, value):
                found.append(rule)
                if self.hit_policy == "FIRST":
                    break
        return found

    def _holds(self, rule: Rule, value: Callable[[int], object]) -> bool:
        for index, test in enumerate(rule.tests):
            if test.is_any:
                continue
            try:
                if not test.matches(value(index)):
                    return False
            except FeelError as exc:
                raise DecisionError(f"{self.title}, {rule}, {self.inputs[index].title}: {exc}") from exc
        return True

    def evaluate(self, read: Callable[[str], object]) -> dict[str, Any]:
        """The outputs by name: of the one matching rule (UNIQUE, ANY) or the first (FIRST), {} when none
        matches; for COLLECT each output's list of values."""
        matched = self.matching(read)
        if self.hit_policy == "COLLECT":
            collected: dict[str, Any] = {}
            for rule in matched:
                for column, output in zip(self.outputs, rule.outputs, strict=True):
                    collected.setdefault(column.name, []).append(output)
            return collected
        if not matched:
            return {}
        if self.hit_policy == "UNIQUE" and len(matched) > 1:
            rules = ", ".join(str(rule) for rule in matched)
            raise DecisionError(f"{self.title}: hit policy UNIQUE, but {rules} all match")
        if self.hit_policy == "ANY" and len({rule.outputs for rule in matched}) > 1:
            rules = ", ".join(str(rule) for rule in matched)
            raise DecisionError(f"{self.title}: hit policy ANY, but {rules} match with different outputs")
        return self.result(matched[0])

    def result(self, rule: Rule) -> dict[str, Any]:
        return {column.name: output for column, output in zip(self.outputs, rule.outputs, strict=True)}

    @property
    def title(self) -> str:
        return f"decision {self.decision_id!r} ({self.source})"


# ------------------------------------------------------------------------------------------ reading


def read_decision(root: Any, source: str) -> DecisionTable:
    """The decision table of a DMN document (an lxml root), every cell read and checked; raises
    DecisionTableError naming the table, the rule and the column of the first problem."""
    decisions = root.findall("{*}decision")
    if len(decisions) != 1:
        raise DecisionTableError(source, "", f"a file holds exactly one decision, not {len(decisions)}")
    decision = decisions[0]
    decision_id = decision.get("id") or ""
    return _Reader(source, decision_id).table(decision)


class _Reader:
    def __init__(self, source: str, decision_id: str) -> None:
        self.source = source
        self.decision_id = decision_id

    def error(
        self, problem: str, node: Any, rule: Rule | None = None, column: str = ""
    ) -> DecisionTableError:
        return DecisionTableError(
            self.source,
            self.decision_id,
            problem,
            rule=rule,
            column=column,
            element=node.get("id") or "",
            line=node.sourceline or 0,
        )

    def table(self, decision: Any) -> DecisionTable:
        tables = decision.findall("{*}decisionTable")
        if len(tables) != 1:
            raise self.error("a decision is evaluated only as exactly one decision table", decision)
        node = tables[0]
        policy = (node.get("hitPolicy") or "UNIQUE").upper()
        if policy not in HIT_POLICIES:
            raise self.error(f"hit policy {policy} is not supported (only {', '.join(HIT_POLICIES)})", node)
        if node.get("aggregation"):
            raise self.error(f"COLLECT with aggregation {node.get('aggregation')} is not supported", node)
        inputs = tuple(self.input(n) for n in node.findall("{*}input"))
        outputs = tuple(self.output(n) for n in node.findall("{*}output"))
        if not outputs:
            raise self.error("the table has no output column", node)
        rules = tuple(
            self.rule(n, number, inputs, outputs) for number, n in enumerate(node.findall("{*}rule"), 1)
        )
        return DecisionTable(
            decision_id=self.decision_id,
            name=decision.get("name") or self.decision_id,
            source=self.source,
            hit_policy=policy,
            inputs=inputs,
            outputs=outputs,
            rules=rules,
        )

    def input(self, node: Any) -> InputColumn:
        label = node.get("label") or node.get("id") or ""
        title = f"input {label!r}"
        expression_node = node.find("{*}inputExpression")
        expression = (expression_node.findtext("{*}text") if expression_node is not None else None) or ""
        if not expression.strip():
            raise self.error("the column has no input expression", node, column=title)
        try:
            check(expression, "eval")
        except ScriptViolation as exc:
            raise self.error(f"refused input expression {expression!r}: {exc}", node, column=title) from exc
        type_ref = expression_node.get("typeRef") or ""
        return InputColumn(
            id=node.get("id") or "",
            label=label,
            expression=expression.strip(),
            type_ref=type_ref,
            allowed=self.allowed(node.find("{*}inputValues"), type_ref, title),
        )

    def output(self, node: Any) -> OutputColumn:
        name = node.get("name") or ""
        label = node.get("label") or ""
        title = f"output {label or name or node.get('id')!r}"
        if not name.isidentifier():
            raise self.error(f"the output name {name!r} is not a variable name", node, column=title)
        type_ref = node.get("typeRef") or ""
        return OutputColumn(
            id=node.get("id") or "",
            label=label,
            name=name,
            type_ref=type_ref,
            allowed=self.allowed(node.find("{*}outputValues"), type_ref, title),
        )

    def allowed(self, node: Any, type_ref: str, title: str) -> UnaryTests | None:
        if node is None:
            return None
        try:
            tests = parse_unary_tests(node.findtext("{*}text"))
        except FeelError as exc:
            raise self.error(f"allowed values: {exc}", node, column=title) from exc
        self.typed(tests.literals(), type_ref, node, None, f"{title} allowed values")
        return None if tests.is_any else tests

    def typed(
        self, values: tuple[Output, ...], type_ref: str, node: Any, rule: Rule | None, title: str
    ) -> None:
        kind = _KINDS.get(type_ref.lower())
        for value in values:
            if value is None or kind is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | Decimal):
                fits = type(value) is kind
            elif type_ref.lower() in ("integer", "long"):
                fits = value == int(value)
            else:
                fits = kind is Decimal
            if not fits:
                raise self.error(
                    f"the column's type is {type_ref} but the cell names {literal_text(value)}",
                    node,
                    rule,
                    title,
                )

    def rule(
        self, node: Any, number: int, inputs: tuple[InputColumn, ...], outputs: tuple[OutputColumn, ...]
    ) -> Rule:
        rule_id = node.get("id") or ""
        here = Rule(rule_id, number, "", (), (), ())  # for messages
        entries = node.findall("{*}inputEntry")
        results = node.findall("{*}outputEntry")
        if len(entries) != len(inputs) or len(results) != len(outputs):
            raise self.error(
                f"{len(entries)} input and {len(results)} output entries for a table of "
                f"{len(inputs)} inputs and {len(outputs)} outputs",
                node,
                here,
            )
        tests = tuple(self.input_entry(e, column, here) for e, column in zip(entries, inputs, strict=True))
        values = tuple(self.output_entry(e, column, here) for e, column in zip(results, outputs, strict=True))
        return Rule(
            id=rule_id,
            number=number,
            description=(node.findtext("{*}description") or "").strip(),
            tests=tests,
            outputs=values,
            output_texts=tuple((e.findtext("{*}text") or "").strip() for e in results),
        )

    def input_entry(self, node: Any, column: InputColumn, rule: Rule) -> UnaryTests:
        self.feel_only(node, rule, column.title)
        try:
            tests = parse_unary_tests(node.findtext("{*}text"))
        except FeelError as exc:
            text = (node.findtext("{*}text") or "").strip()
            raise self.error(f"cannot read {text!r}: {exc}", node, rule, column.title) from exc
        self.typed(tests.literals(), column.type_ref, node, rule, column.title)
        if column.allowed is not None:
            for test in tests.tests:
                if isinstance(test, Equals) and not column.allowed.matches(test.literal):
                    raise self.error(
                        f"{test} is not one of the column's allowed values ({column.allowed.text})",
                        node,
                        rule,
                        column.title,
                    )
        return tests

    def output_entry(self, node: Any, column: OutputColumn, rule: Rule) -> Output:
        self.feel_only(node, rule, column.title)
        text = (node.findtext("{*}text") or "").strip()
        try:
            value = parse_output(text)
        except FeelError as exc:
            raise self.error(
                f"cannot read {text!r}: an output is a literal (a string in double quotes, a number, "
                f"true, false or null): {exc}",
                node,
                rule,
                column.title,
            ) from exc
        self.typed((value,), column.type_ref, node, rule, column.title)
        if column.allowed is not None and value is not None and not column.allowed.matches(value):
            raise self.error(
                f"{text} is not one of the column's allowed values ({column.allowed.text})",
                node,
                rule,
                column.title,
            )
        return value

    def feel_only(self, node: Any, rule: Rule, title: str) -> None:
        language = node.get("expressionLanguage") or ""
        if language and "feel" not in language.lower():
            raise self.error(f"expression language {language!r}: cells are FEEL", node, rule, title)


# ------------------------------------------------------------------------------------------ engines


class TableEngine(DMNEngine):  # type: ignore[misc]
    """Spiff's DMN engine for a business rule task, evaluating with `DecisionTable` instead of turning
    cells into Python. Keeps Spiff's model of the table (`decision_table`) for Spiff's own uses."""

    def __init__(self, spiff_table: Any, table: DecisionTable) -> None:
        super().__init__(spiff_table)
        self.table = table

    def decide(self, task: Any) -> list[Any]:
        matched = self.table.matching(_reader(task))
        return [self.decision_table.rules[rule.number - 1] for rule in matched]

    def result(self, task: Any) -> dict[str, Any]:
        return self.table.evaluate(_reader(task))


def _reader(task: Any) -> Callable[[str], object]:
    engine = task.workflow.script_engine
    return lambda expression: engine.evaluate(task, expression)


class DecisionTables:
    """Every `.dmn` file in a folder, read and checked once (a table outside the supported subset is
    refused here, at start, with DecisionTableError), evaluated by decision id."""

    def __init__(self, folder: Path) -> None:
        validator = SpiffBpmnParser(validator=VALIDATOR)  # the DMN schema check the orchestrator makes
        self._engine = ScriptEngine()
        self._tables: dict[str, DecisionTable] = {}
        for path in sorted(folder.glob("*.dmn")):
            root = etree.fromstring(path.read_bytes(), _SAFE_XML)
            validator.add_dmn_xml(root, filename=path.name)
            table = read_decision(root, path.name)
            if table.decision_id in self._tables:
                raise DecisionTableError(path.name, table.decision_id, "decided by two files")
            self._tables[table.decision_id] = table

    def table(self, decision_id: str) -> DecisionTable:
        try:
            return self._tables[decision_id]
        except KeyError:
            raise FailedPrecondition(f"decision table {decision_id!r} is not deployed") from None

    def decide(self, decision_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of the matching rule (see the hit policies above); {} when no rule matches."""
        table = self.table(decision_id)
        data = dict(inputs)
        try:
            return table.evaluate(lambda expression: self._engine.environment.evaluate(expression, data))
        except DecisionError as exc:
            raise FailedPrecondition(str(exc)) from exc

    def rules(self, decision_id: str) -> list[tuple[list[str | None], dict[str, str]]]:
        """Each rule's input entries (None for "-") and output entries as written, e.g. to draw the risk
        matrix."""
        table = self.table(decision_id)
        return [
            (
                [None if test.is_any else test.text for test in rule.tests],
                {column.name: text for column, text in zip(table.outputs, rule.output_texts, strict=True)},
            )
            for rule in table.rules
        ]
