"""Small DMN 1.3 decision tables for tests, written the way dmn-js saves them."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape, quoteattr


def dmn(
    decision_id: str,
    inputs: Sequence[tuple[str, str, str]],
    outputs: Sequence[tuple[str, str]],
    rules: Sequence[tuple[Sequence[str], Sequence[str]]],
    hit_policy: str | None = "UNIQUE",
    input_values: dict[int, str] | None = None,
    extra_table_attributes: str = "",
) -> bytes:
    """A DMN file of one decision table.

    inputs: (label, expression, typeRef); outputs: (name, typeRef); rules: (input cells, output cells);
    input_values: column index → the column's allowed values (`inputValues`).
    """
    policy = f" hitPolicy={quoteattr(hit_policy)}" if hit_policy else ""
    columns = []
    for index, (label, expression, type_ref) in enumerate(inputs):
        allowed = (input_values or {}).get(index)
        values = (
            f'<inputValues id="in_{index}_values"><text>{escape(allowed)}</text></inputValues>'
            if allowed is not None
            else ""
        )
        columns.append(
            f'<input id="in_{index}" label={quoteattr(label)}>'
            f'<inputExpression id="in_{index}_expr" typeRef="{type_ref}"><text>{escape(expression)}</text>'
            f"</inputExpression>{values}</input>"
        )
    for index, (name, type_ref) in enumerate(outputs):
        columns.append(
            f'<output id="out_{index}" label="{name.title()}" name="{name}" typeRef="{type_ref}" />'
        )
    body = []
    for number, (cells, results) in enumerate(rules, 1):
        entries = "".join(
            f'<inputEntry id="r{number}_in_{i}"><text>{escape(cell)}</text></inputEntry>'
            for i, cell in enumerate(cells)
        )
        entries += "".join(
            f'<outputEntry id="r{number}_out_{i}"><text>{escape(cell)}</text></outputEntry>'
            for i, cell in enumerate(results)
        )
        body.append(f'<rule id="{decision_id}_rule_{number}">{entries}</rule>')
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="{decision_id}_definitions"
    name="{decision_id}" namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="{decision_id}" name="{decision_id}">
    <decisionTable id="{decision_id}_table"{policy}{extra_table_attributes}>
      {"".join(columns)}
      {"".join(body)}
    </decisionTable>
  </decision>
</definitions>
""".encode()
