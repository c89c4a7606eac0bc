"""The current ``UserEvent`` schema read straight from the bytes: the decode hot path.

:class:`streamrec.events.codec.EventCodec` reads every record with fastavro's compiled
``schemaless_reader``, the reference. For a user event written with today's schema it first
tries :func:`read_user_event`: one pass over the body with integer indexing, building the
:class:`UserEvent` slot by slot with no intermediate dict and no file object (fastavro's reader
calls ``read`` on a ``BytesIO`` once per value and returns a dict the codec then unpacks: 4.5 µs
per event of the bench's plain loop, against ~2 µs here). It only knows the layout in
:data:`LAYOUT` (the codec uses it only when the schema file says exactly that), and reads only
what is well formed in the plainest way (one-byte union branches, lengths within the record, no
byte left over): anything else returns ``None`` and the codec reads the record with fastavro,
which accepts or refuses it and names the field at fault. ``tests/events/test_fast_reader.py``
holds it equal to fastavro's reading on both shared rating logs, every event kind and every
truncation and corruption of a record.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from typing import Any, TypeVar

from streamrec.events.model import EventType, UserEvent

_OPTIONAL_STRING = ("null", "string")
_OPTIONAL_DOUBLE = ("null", "double")
#: The fields this reader knows, in the order the record is written, each as
#: :func:`layout` spells a field's type.
LAYOUT: tuple[tuple[str, object], ...] = (
    ("event_id", "string"),
    ("event_type", ("enum", tuple(t.value for t in EventType))),
    ("user_id", "string"),
    ("timestamp", "long"),
    ("device", _OPTIONAL_STRING),
    ("region", _OPTIONAL_STRING),
    ("video_id", _OPTIONAL_STRING),
    ("position_sec", _OPTIONAL_DOUBLE),
    ("duration_sec", _OPTIONAL_DOUBLE),
    ("rating", _OPTIONAL_DOUBLE),
    ("query", _OPTIONAL_STRING),
    ("genres", ("array", "string")),
)
_KINDS = tuple(EventType)  # the enum's symbols in schema order (LAYOUT checks it)


def _event_builder() -> Callable[..., UserEvent]:
    """``UserEvent(*fields)``, built slot by slot through the slots' descriptors: what the frozen
    dataclass's ``__init__`` does through ``object.__setattr__``, at about half its cost (0.45 vs
    0.8 µs). Plain ``UserEvent`` if the class ever gets a ``__post_init__`` or other slots."""
    names = tuple(f.name for f in dataclasses.fields(UserEvent))
    if hasattr(UserEvent, "__post_init__") or tuple(UserEvent.__slots__) != names:
        return UserEvent
    new = object.__new__
    s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11 = (getattr(UserEvent, n).__set__ for n in names)

    def build(a0: Any, a1: Any, a2: Any, a3: Any, a4: Any, a5: Any, a6: Any, a7: Any, a8: Any, a9: Any, a10: Any,
              a11: Any) -> UserEvent:
        event = new(UserEvent)
        s0(event, a0), s1(event, a1), s2(event, a2), s3(event, a3), s4(event, a4), s5(event, a5)
        s6(event, a6), s7(event, a7), s8(event, a8), s9(event, a9), s10(event, a10), s11(event, a11)
        return event

    return build


_build_event = _event_builder()
_DOUBLE = struct.Struct("<d").unpack_from
T = TypeVar("T")


def layout(parsed: dict[str, Any]) -> tuple[tuple[str, object], ...]:
    """A parsed record schema's fields as ``(name, type)``: a primitive by name, a union as the
    tuple of its branches, an enum as ``("enum", symbols)``, an array as ``("array", items)``."""

    def spell(schema: Any) -> object:
        if isinstance(schema, list):
            return tuple(spell(s) for s in schema)
        if isinstance(schema, dict):
            if schema["type"] == "enum":
                return "enum", tuple(schema["symbols"])
            if schema["type"] == "array":
                return "array", spell(schema["items"])
            return spell(schema["type"]) if isinstance(schema["type"], str) and len(schema) <= 2 else schema
        return schema

    return tuple((f["name"], spell(f["type"])) for f in parsed["fields"])


class _Malformed(Exception):
    """Not the plain form this reader takes: fastavro reads (or refuses) the record."""


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """The unsigned varint at ``i`` (zigzag not undone) and the index after it."""
    value = shift = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise _Malformed


def _string(data: bytes, i: int) -> tuple[str, int]:
    raw = data[i]
    if raw < 0x80:
        i += 1
    else:
        raw, i = _varint(data, i)
    if raw & 1:  # a negative length
        raise _Malformed
    end = i + (raw >> 1)
    if end > len(data):
        raise _Malformed
    return data[i:end].decode(), end


def _double(data: bytes, i: int) -> tuple[float, int]:
    return _DOUBLE(data, i)[0], i + 8


def _optional(data: bytes, i: int, read: Callable[[bytes, int], tuple[T, int]]) -> tuple[T | None, int]:
    """A ``["null", ...]`` union: branch 0 (zigzag 0) is null, branch 1 (zigzag 2) the value."""
    branch = data[i]
    if branch == 0:
        return None, i + 1
    if branch != 2:
        raise _Malformed
    return read(data, i + 1)


def read_user_event(data: bytes, start: int) -> UserEvent | None:
    """The event whose body starts at ``data[start]``, or ``None`` when it is not in the plain
    form (see the module docstring)."""
    try:
        event_id, i = _string(data, start)
        kind = data[i]
        if kind & 1 or kind >> 1 >= len(_KINDS):
            return None
        user_id, i = _string(data, i + 1)
        raw, i = _varint(data, i)
        timestamp = (raw >> 1) ^ -(raw & 1)
        device, i = _optional(data, i, _string)
        region, i = _optional(data, i, _string)
        video_id, i = _optional(data, i, _string)
        position, i = _optional(data, i, _double)
        duration, i = _optional(data, i, _double)
        rating, i = _optional(data, i, _double)
        query, i = _optional(data, i, _string)
        genres: tuple[str, ...] = ()
        raw, i = _varint(data, i)
        while raw:  # array blocks: a zigzag count (negative: the block's byte size follows), 0 ends
            if raw & 1:
                count = (raw + 1) >> 1
                _, i = _varint(data, i)
            else:
                count = raw >> 1
            block = []
            for _ in range(count):
                genre, i = _string(data, i)
                block.append(genre)
            genres += tuple(block)
            raw, i = _varint(data, i)
        if i != len(data):
            return None
    except (_Malformed, IndexError, UnicodeDecodeError, struct.error):
        return None
    return _build_event(event_id, _KINDS[kind >> 1], user_id, timestamp, device, region, video_id, position,
                        duration, rating, query, genres)
