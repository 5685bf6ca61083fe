"""Size limits on what an instance stores: one variable as JSON (`max_variable_bytes`) and its whole state
(`max_instance_state_bytes`), whoever sets them.

Input (a worker's result, a form, a message, a start's variables) is refused before any step with
INVALID_ARGUMENT naming the variable and the limit; a step whose result would pass a limit (a script, the
engine's own growth) is not written (`StateTooLarge`, and the host parks the instance). Messages name the
variable and the sizes, never the value: an error must not echo a megabyte back.

Sizes are counted in characters first: a UTF-8 character takes at most 4 bytes, so text under a quarter
of a limit needs no encoding to be measured, which keeps the check free for ordinary steps and requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from consultflow.platform import jsonutil
from consultflow.platform.errors import InvalidArgument, ResourceExhausted
from consultflow.platform.limits import Limits, env_name

MAX_NAME_SHOWN = 80
"""A variable's name is shown up to this many characters (a name, too, may be huge)."""


class StateTooLarge(ResourceExhausted):
    """A step would store more than a size limit allows: the step is not written, the instance is parked."""

    def __init__(self, limit_name: str, limit: int, size: int, what: str) -> None:
        super().__init__(
            f"{what} would be {size:,} bytes as JSON, over the limit {limit_name} = {limit:,} "
            f"({env_name(limit_name)})"
        )
        self.limit_name = limit_name
        self.limit = limit
        self.size = size


def shown(name: str) -> str:
    """A variable's name for an error message, cut short."""
    return repr(name[:MAX_NAME_SHOWN] + ("…" if len(name) > MAX_NAME_SHOWN else ""))


def utf8_size(text: str, limit: int) -> int:
    """The text's size in UTF-8 bytes when it may pass `limit`; else a lower bound that is within it."""
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def check_input(variables: Mapping[str, Any], limits: Limits, field: str = "") -> None:
    """Refuses variables of which one is larger as JSON than `max_variable_bytes`, or which together are
    larger than `max_instance_state_bytes`, or which cannot be stored as JSON at all.

    `field` names the request field in the error (e.g. `variables_json`); empty: the variable's own name is
    the field (a form, whose fields are its variables).
    """
    try:
        text = jsonutil.dumps(dict(variables))
    except (TypeError, ValueError, RecursionError):
        _refuse_unstorable(variables, field)
    total = utf8_size(text, limits.max_variable_bytes)
    if total <= limits.max_variable_bytes:
        return  # no single variable can be larger than all of them together
    for name, value in variables.items():
        size = utf8_size(jsonutil.dumps(value), limits.max_variable_bytes)
        if size > limits.max_variable_bytes:
            raise InvalidArgument(
                field or str(name),
                f"variable {shown(str(name))} is {size:,} bytes as JSON, over the limit max_variable_bytes = "
                f"{limits.max_variable_bytes:,} ({env_name('max_variable_bytes')})",
            )
    total = utf8_size(text, limits.max_instance_state_bytes)
    if total > limits.max_instance_state_bytes:
        raise InvalidArgument(
            field or "variables",
            f"the variables are {total:,} bytes as JSON together, over the limit max_instance_state_bytes = "
            f"{limits.max_instance_state_bytes:,} ({env_name('max_instance_state_bytes')})",
        )


def _refuse_unstorable(variables: Mapping[str, Any], field: str) -> NoReturn:
    for name, value in variables.items():
        try:
            jsonutil.dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else type(exc).__name__
            raise InvalidArgument(
                field or str(name), f"variable {shown(str(name))} cannot be stored as JSON ({reason})"
            ) from None
    raise InvalidArgument(field or "variables", "cannot be stored as JSON")


def check_step(
    state: str, variables_json: str, variables: Mapping[str, Any], limits: Limits, parts_bytes: int = 0
) -> None:
    """Before a step writes: its state (the running part and `parts_bytes` of finished subprocesses stored
    apart) within `max_instance_state_bytes`, each variable it shows within `max_variable_bytes` (measured
    one by one only when all of them together are larger)."""
    size = parts_bytes + utf8_size(state, max(limits.max_instance_state_bytes - parts_bytes, 0))
    if size > limits.max_instance_state_bytes:
        raise StateTooLarge("max_instance_state_bytes", limits.max_instance_state_bytes, size, "the state")
    if utf8_size(variables_json, limits.max_variable_bytes) <= limits.max_variable_bytes:
        return
    for name, value in variables.items():
        size = utf8_size(jsonutil.dumps(value), limits.max_variable_bytes)
        if size > limits.max_variable_bytes:
            raise StateTooLarge(
                "max_variable_bytes", limits.max_variable_bytes, size, f"variable {shown(str(name))}"
            )
