"""What the risk use cases reach outside the service for: its decision tables, the risk matrix (6.2.3/6.3)
and the early-warning thresholds (6.4.2), read from `bpmn/*.dmn` through the shared evaluator, and the
`Dependencies` the servicer and the job handlers receive. Nothing of either table is copied here: the
axes of the matrix are the values its rules name, in the order the rules name them."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from consultflow.platform.decisions import DecisionTables
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.risk.domain import Level, MatrixCell, Strategy, Tables

RISK_MATRIX = "risk_matrix"
WARNING_THRESHOLDS = "warning_thresholds"


@dataclass(frozen=True)
class Dependencies:
    """What the risk servicer and job handlers are given at start."""

    tables: Tables
    """The risk matrix and the warning thresholds (`RiskTables` over the deployment's `bpmn/`)."""


class RiskTables:
    """`domain.Tables` over the DMN files of a folder (the deployment's `bpmn/`)."""

    def __init__(self, folder: Path) -> None:
        self._tables = DecisionTables(folder)
        matrix_inputs = [inputs for inputs, _ in self._tables.rules(RISK_MATRIX)]
        self._likelihoods = _literals(row[0] for row in matrix_inputs)
        self._impacts = _literals(row[1] for row in matrix_inputs)
        self._indicators = _literals(inputs[0] for inputs, _ in self._tables.rules(WARNING_THRESHOLDS))
        self._cells: dict[tuple[str, str], MatrixCell] = {}  # the tables are fixed for the process's life

    def likelihoods(self) -> list[str]:
        return list(self._likelihoods)

    def impacts(self) -> list[str]:
        return list(self._impacts)

    def cell(self, likelihood: str, impact: str) -> MatrixCell:
        key = (likelihood, impact)
        if key not in self._cells:
            self._cells[key] = self._decide_cell(likelihood, impact)
        return self._cells[key]

    def _decide_cell(self, likelihood: str, impact: str) -> MatrixCell:
        result = self._tables.decide(RISK_MATRIX, {"likelihood": likelihood, "impact": impact})
        if not result:
            raise FailedPrecondition(
                f"{RISK_MATRIX}.dmn has no rule for likelihood {likelihood!r} × {impact!r}"
            )
        try:
            return MatrixCell(
                likelihood=likelihood,
                impact=impact,
                level=str(result["risk_level"]),
                priority=int(result["risk_priority"]),
                suggested_strategy=Strategy(result["suggested_strategy"]),
                strategy_basis=str(result.get("strategy_basis") or ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise FailedPrecondition(f"{RISK_MATRIX}.dmn gave an unusable result {result!r}") from exc

    def indicators(self) -> list[str]:
        return list(self._indicators)

    def level(self, indicator: str, value: float) -> Level:
        result = self._tables.decide(WARNING_THRESHOLDS, {"indicator": indicator, "value": value})
        if not result:
            raise InvalidArgument("indicator", f"{WARNING_THRESHOLDS}.dmn has no band for {indicator!r}")
        try:
            return Level(result["status"])
        except (KeyError, ValueError) as exc:
            raise FailedPrecondition(f"{WARNING_THRESHOLDS}.dmn gave an unusable result {result!r}") from exc


def _literals(entries: Iterable[str | None]) -> tuple[str, ...]:
    """The distinct string literals among rule input entries, in first-seen order ("-" and ranges skipped)."""
    seen: dict[str, None] = {}
    for entry in entries:
        if not entry:
            continue
        try:
            value = ast.literal_eval(entry)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, str):
            seen.setdefault(value, None)
    return tuple(seen)
