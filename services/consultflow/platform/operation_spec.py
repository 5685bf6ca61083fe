"""The contract of a job operation, declared over its handler: what the modeler offers an analyst.

Each service task names an operation (`<service>.<name>`); its spec says what the task must pass
(`inputs`, the `spiffworkflow:parameter`s), what comes back into the process (`outputs`), which BPMN
errors a boundary event may catch (`errors`) and which clauses of the regulation it implements. Plain
frozen dataclasses with small constructors, so a spec reads as a short list above the handler:

    inputs=[text("inquiry_id"), one_of("decline_reason", ["infeasible", "offer_expired"])],
    outputs=[text("intake_outcome")],

An input is `required` when the job fails without it: the handler reads it with no default, or the
service's rules refuse it empty. Every diagram must then pass it as a parameter. An optional input the
diagram does not pass may still come from a process variable of the same name (`Job.get`), unless its
description says "a parameter only" (tests/unit/test_operation_catalogue.py checks all of this).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

FieldType = Literal["string", "integer", "decimal", "boolean", "date", "list", "object", "any"]
"""How a diagram should fill an input (or what an output holds); decimals and dates travel as strings."""

FIELD_TYPES: frozenset[str] = frozenset(get_args(FieldType))

ENGAGEMENT_ID_HELP = "the engagement's id; without it, the instance's business key"


@dataclass(frozen=True)
class Field:
    """One input or output of an operation."""

    name: str
    type: FieldType = "string"
    required: bool = True
    description: str = ""
    values: tuple[str, ...] = ()  # the allowed values of a closed choice


@dataclass(frozen=True)
class ErrorSpec:
    """A BPMN error the operation may throw: the errorCode a boundary event catches."""

    code: str
    description: str


@dataclass(frozen=True)
class OperationSpec:
    """One operation as its service publishes it (`OperationCatalog.ListOperations`)."""

    name: str  # "<service>.<operation>"
    service: str
    summary: str
    description: str = ""
    clauses: tuple[str, ...] = ()
    assumption: bool = False  # the regulation does not say; the firm's own rule ("[assumption]")
    inputs: tuple[Field, ...] = ()
    outputs: tuple[Field, ...] = ()
    errors: tuple[ErrorSpec, ...] = ()

    def input(self, name: str) -> Field | None:
        """The declared input called `name`, if any."""
        return next((f for f in self.inputs if f.name == name), None)

    def problems(self) -> list[str]:
        """What makes this declaration unusable (empty when it is sound); whether it names its clauses is
        the services' test's business (tests/unit/test_operation_catalogue.py), not the registry's."""
        found: list[str] = []
        if not self.summary.strip() or "\n" in self.summary:
            found.append(f"{self.name}: the summary must be one non-empty line")
        for kind, fields in (("input", self.inputs), ("output", self.outputs)):
            seen: set[str] = set()
            for f in fields:
                if f.name in seen:
                    found.append(f"{self.name}: {kind} {f.name!r} is declared twice")
                seen.add(f.name)
                if not re.fullmatch(r"[a-z][a-z0-9_]*", f.name):
                    found.append(f"{self.name}: {kind} {f.name!r} is not a variable name")
                if f.type not in FIELD_TYPES:
                    found.append(f"{self.name}: {kind} {f.name!r} has unknown type {f.type!r}")
                if f.values and f.type != "string":
                    found.append(f"{self.name}: {kind} {f.name!r} lists values but is not a string")
        codes = [e.code for e in self.errors]
        if len(codes) != len(set(codes)):
            found.append(f"{self.name}: a BPMN error code is declared twice")
        return found


def text(name: str, description: str = "") -> Field:
    """A required text input or output."""
    return Field(name, "string", True, description)


def one_of(name: str, values: Iterable[str], description: str = "") -> Field:
    """Text that must be one of `values`."""
    return Field(name, "string", True, description, tuple(str(v) for v in values))


def flag(name: str, description: str = "") -> Field:
    """A yes/no (a boolean, or yes/no, true/false as text)."""
    return Field(name, "boolean", True, description)


def integer(name: str, description: str = "") -> Field:
    return Field(name, "integer", True, description)


def decimal(name: str, description: str = "") -> Field:
    """An exact amount or rate: a decimal string (or a whole number)."""
    return Field(name, "decimal", True, description)


def date(name: str, description: str = "") -> Field:
    """An ISO date (`YYYY-MM-DD`), or a timestamp where the description says so."""
    return Field(name, "date", True, description)


def listing(name: str, description: str = "") -> Field:
    """A list (inputs also take the text form the description gives, e.g. names separated by commas)."""
    return Field(name, "list", True, description)


def record(name: str, description: str = "") -> Field:
    """A JSON object."""
    return Field(name, "object", True, description)


def anything(name: str, description: str = "") -> Field:
    """A value of no fixed type (e.g. a number or a numeric string)."""
    return Field(name, "any", True, description)


def optional(field: Field) -> Field:
    """The same field, not required: the handler has a default (or, for an output, may leave it out)."""
    return replace(field, required=False)


def error(code: str, description: str) -> ErrorSpec:
    return ErrorSpec(code, description)


ENGAGEMENT = optional(text("engagement_id", ENGAGEMENT_ID_HELP))
"""The input most operations take: optional, since the business key is the engagement's id."""

_CLAUSE_PREFIX = re.compile(r"^(?:Ch\. )?[0-9][0-9.,/ →–-]*(?:\s*\[assumption\])?:\s+")
_SENTENCE_END = re.compile(r"(?<=\.)\s+(?=[A-Z`])")


def summary_of(docstring: str | None) -> str:
    """A handler docstring's first sentence as one line, without its leading clause reference
    ("2.1.2: records …" → "Records …"): the clauses are a field of their own."""
    paragraph = (docstring or "").strip().split("\n\n", 1)[0]
    line = " ".join(part.strip() for part in paragraph.splitlines())
    line = _SENTENCE_END.split(_CLAUSE_PREFIX.sub("", line), 1)[0]
    return line[:1].upper() + line[1:]


def names(fields: Sequence[Field]) -> list[str]:
    """The fields' names, in order."""
    return [f.name for f in fields]
