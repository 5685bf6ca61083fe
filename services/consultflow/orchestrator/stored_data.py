"""Process data stored exactly: whatever a variable may hold comes back from the database as it went in.

SpiffWorkflow's serializer marks its own objects in the JSON with a `typename` key, and on load it takes
every dict with that key for one of them. Process data is written beside those objects, so without care
a client's variable named `typename` (or a nested `{"typename": "UUID", ...}` from a form, a worker or a
script) makes the stored instance unloadable, or silently turns the client's dict into a datetime. Tuples,
sets and dicts with non-string keys would come back as lists and string keys, and bytes or frozensets
would not be written at all (the step fails). `StoredDataRegistry` escapes exactly those values when it
writes (a wrapper whose `typename` is ours) and unwraps them when it reads, at the registry every data path
goes through; plain data (str-keyed dicts without `typename`, lists, scalars) is written as before, and
states stored before this are read as they always were.
"""

from __future__ import annotations

import base64
from typing import Any

from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry

TYPENAME = "typename"
_DICT = "consultflow.dict"  # a dict with a `typename` key of its own, or with keys JSON cannot hold
_TUPLE = "consultflow.tuple"
_SET = "consultflow.set"
_FROZENSET = "consultflow.frozenset"
_BYTES = "consultflow.bytes"
_SCALARS = frozenset({str, int, float, bool, type(None)})
_WRAPPED_KINDS = frozenset({tuple, set, frozenset, bytes})


class _Wrapped(dict[str, Any]):
    """A wrapper `escape` made: never escaped again when a nested conversion meets it."""


def escape(value: Any) -> Any:
    """`value` with every dict, tuple, set and bytes that plain JSON would change or misread wrapped;
    the value itself (not a copy) when nothing in it needs that, found by a walk that allocates nothing."""
    return _escaped(value) if _needs_escape(value) else value


def _needs_escape(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        if TYPENAME in value:
            return True
        for key, member in value.items():
            if type(key) is not str or (type(member) not in _SCALARS and _needs_escape(member)):
                return True
        return False
    if kind is list:
        for member in value:  # noqa: SIM110  (a loop: any() over a generator costs twice as much here)
            if type(member) not in _SCALARS and _needs_escape(member):
                return True
        return False
    if kind is _Wrapped or kind in _SCALARS:
        return False
    return kind in _WRAPPED_KINDS or isinstance(value, dict)


def _escaped(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS or kind is _Wrapped:
        return value
    if isinstance(value, dict):
        if TYPENAME in value or not all(type(key) is str for key in value):
            return _Wrapped(typename=_DICT, items=[[_escaped(k), _escaped(v)] for k, v in value.items()])
        return {key: _escaped(member) for key, member in value.items()}
    if kind is list:
        return [_escaped(member) for member in value]
    if kind is tuple:
        return _Wrapped(typename=_TUPLE, items=[_escaped(member) for member in value])
    if kind is set or kind is frozenset:
        return _Wrapped(typename=_SET if kind is set else _FROZENSET, items=[_escaped(m) for m in value])
    if kind is bytes:
        return _Wrapped(typename=_BYTES, value=base64.b64encode(value).decode("ascii"))
    return value  # Decimal, date, datetime, UUID …: the registry's own converters write them


class StoredDataRegistry(DefaultRegistry):  # type: ignore[misc]
    """Spiff's registry, escaping process data on the way out and unwrapping it on the way in."""

    def clean(self, obj: Any) -> Any:
        if type(obj) is _Wrapped:
            return obj  # escaped already (a nested conversion of an escaped value)
        return escape(super().clean(obj))

    def restore(self, val: Any, **kwargs: Any) -> Any:
        if type(val) is dict:
            tag = val.get(TYPENAME)
            if tag == _DICT:
                return {
                    _hashable(self.restore(k, **kwargs)): self.restore(v, **kwargs) for k, v in val["items"]
                }
            if tag == _TUPLE:
                return tuple(self.restore(v, **kwargs) for v in val["items"])
            if tag == _SET:
                return {_hashable(self.restore(v, **kwargs)) for v in val["items"]}
            if tag == _FROZENSET:
                return frozenset(_hashable(self.restore(v, **kwargs)) for v in val["items"])
            if tag == _BYTES:
                return base64.b64decode(val["value"])
        return super().restore(val, **kwargs)


class StoredDataTaskConverter(TaskConverter):  # type: ignore[misc]
    """Spiff's task converter writes a task's data (or its changes from its parent's) without the
    registry; escape them like every other piece of process data."""

    def to_dict(self, task: Any) -> dict[str, Any]:
        dct: dict[str, Any] = super().to_dict(task)
        dct["data"] = escape(dct["data"])
        delta = dct.get("delta")
        if delta:
            dct["delta"] = {**delta, "updates": escape(delta.get("updates", {}))}
        return dct


def _hashable(value: Any) -> Any:
    """A key or set member read back: lists (from states stored before tuples were kept) become tuples."""
    return tuple(_hashable(v) for v in value) if isinstance(value, list) else value
