"""What every request of every component must be before a servicer sees it: decodable, and free of control
characters (none in names, ids and keys; none but tab and line breaks in free text).

grpcio decodes a request before any servicer runs, and protobuf refuses a string field that is not valid
UTF-8 with a message that names no field; `tolerant` turns that failure into an `Undecodable` request the
server answers INVALID_ARGUMENT, naming the field found by walking the wire format field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from consultflow.platform.errors import InvalidArgument
from consultflow.platform.inputs import is_name_field, refuse_control_characters


@dataclass(frozen=True)
class Undecodable:
    """A request that could not be decoded: what the handler receives instead, to answer it precisely."""

    error: InvalidArgument


def tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """`deserializer`, but a request it cannot decode becomes `Undecodable` instead of an INTERNAL error."""
    if deserializer is None:
        return None
    message_type = getattr(deserializer, "__self__", None)
    descriptor = getattr(message_type, "DESCRIPTOR", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError:
            return Undecodable(undecodable(data, descriptor))

    return deserialize


def undecodable(data: bytes, descriptor: Descriptor | None) -> InvalidArgument:
    """Why `data` is not a valid message: the field that is not UTF-8 when one is found."""
    field = invalid_utf8_field(data, descriptor) if descriptor is not None else None
    if field is not None:
        return InvalidArgument(field, "is not valid UTF-8")
    if descriptor is not None and any(f.type == FieldDescriptor.TYPE_STRING for f in descriptor.fields):
        return InvalidArgument("request", "is not a valid message (a string field is not valid UTF-8?)")
    return InvalidArgument("request", "is not a valid message")


def invalid_utf8_field(data: bytes, descriptor: Descriptor, prefix: str = "") -> str | None:
    """The path of the first string field in the wire bytes `data` that is not valid UTF-8, or None."""
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                chunk, position = data[position : position + length], position + length
                found = _check_chunk(chunk, descriptor.fields_by_number.get(number), prefix)
                if found is not None:
                    return found
            else:  # groups: not used by our APIs
                return None
    except IndexError:
        return None
    return None


def _check_chunk(chunk: bytes, field: FieldDescriptor | None, prefix: str) -> str | None:
    if field is None:
        return None
    path = prefix + field.name
    if field.type == FieldDescriptor.TYPE_STRING:
        try:
            chunk.decode("utf-8")
        except UnicodeDecodeError:
            return path
        return None
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
        return invalid_utf8_field(chunk, field.message_type, path + ".")
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7


def check_request(message: Message, prefix: str = "") -> None:
    """Refuses control characters in any string of `message` (nested messages, lists and maps included),
    naming the field: the one check every request of every component passes."""
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_STRING:
            for text in value if field.is_repeated else (value,):
                refuse_control_characters(path, text, name=is_name_field(field.name))
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            if field.message_type.GetOptions().map_entry:
                _check_map(path, field.message_type, value)
            elif field.is_repeated:
                for item in value:
                    check_request(item, path + ".")
            else:
                check_request(value, path + ".")


def _check_map(path: str, entry: Descriptor, value: Any) -> None:
    value_field = entry.fields_by_name["value"]
    for key, item in value.items():
        if isinstance(key, str):
            refuse_control_characters(f"{path} key", key, name=True)
        if isinstance(item, str):
            refuse_control_characters(f"{path}[{key!r}]", item, name=False)
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            check_request(item, f"{path}[{key!r}].")
