"""Avro single-object encoding of the event model, with a registry built from ``schemas/avro``.

Wire format (Avro spec, "Single-object encoding")::

    C3 01 | CRC-64-AVRO fingerprint of the writer schema's canonical form (8 bytes, little-endian) | body

Every ``*.avsc`` in ``schemas/avro/`` is a current schema; ``schemas/avro/history/<file>.vN.avsc``
keeps the versions it replaced. The registry knows all of them, so ``decode`` reads a record
written by any version into today's model (Avro schema resolution fills new fields with their
defaults). ``encode`` always writes the current version.

    codec = default_codec()
    data = codec.encode(UserEvent(...))      # bytes for Kafka
    event = codec.decode(data)               # UserEvent | Impression | CatalogItem | DeadLetter

Schemas are parsed once, when the registry is built. Logical types (``uuid``,
``timestamp-millis``) are dropped from the schemas fastavro works with: they do not change the
bytes or the fingerprint, and the model keeps epoch milliseconds and string ids, so no
``datetime``/``UUID`` objects are made and unmade per record.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, TypeAlias

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.validation import validate

from streamrec.events.errors import EventDecodeError, EventValidationError, FieldError
from streamrec.events.fast_reader import LAYOUT, layout, read_user_event
from streamrec.events.ids import ID_RULE, REGION_RULE, is_id, is_region
from streamrec.events.model import (
    CatalogItem,
    DeadLetter,
    EventType,
    Impression,
    UserEvent,
)


def _schema_dir() -> Path:
    """``STREAMREC_SCHEMA_DIR`` if set; the repository's ``schemas/avro`` in a checkout (or an
    editable install); else the copy ``setup.py`` installs under ``<prefix>/share/streamrec``
    (Dataflow/Flink workers install streamrec with ``--setup_file``, without the repository)."""
    if os.environ.get("STREAMREC_SCHEMA_DIR"):
        return Path(os.environ["STREAMREC_SCHEMA_DIR"])
    in_repo = Path(__file__).resolve().parents[2] / "schemas" / "avro"
    if in_repo.is_dir():
        return in_repo
    return Path(sys.prefix) / "share" / "streamrec" / "schemas" / "avro"


SCHEMA_DIR = _schema_dir()
MAGIC = b"\xc3\x01"
HEADER_LEN = 10

Record: TypeAlias = UserEvent | Impression | CatalogItem | DeadLetter
_EVENT_TYPES = {t.value: t for t in EventType}


# -- model <-> Avro dicts: written out per type, because dataclasses.asdict is slow on hot paths --


def _user_event_to_dict(e: UserEvent) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "event_type": e.event_type.value if isinstance(e.event_type, EventType) else e.event_type,
        "user_id": e.user_id,
        "timestamp": e.timestamp,
        "device": e.device,
        "region": e.region,
        "video_id": e.video_id,
        "position_sec": e.position_sec,
        "duration_sec": e.duration_sec,
        "rating": e.rating,
        "query": e.query,
        "genres": list(e.genres),
    }


def _user_event_from_dict(d: dict[str, Any]) -> UserEvent:
    # Positional, in the dataclass's field order (the decode hot path; keywords cost more).
    return UserEvent(d["event_id"], _EVENT_TYPES[d["event_type"]], d["user_id"], d["timestamp"], d["device"],
                     d["region"], d["video_id"], d["position_sec"], d["duration_sec"], d["rating"], d["query"],
                     tuple(d["genres"]))


def _impression_to_dict(i: Impression) -> dict[str, Any]:
    return {
        "event_id": i.event_id,
        "user_id": i.user_id,
        "timestamp": i.timestamp,
        "request_id": i.request_id,
        "row_type": i.row_type,
        "video_ids": list(i.video_ids),
        "device": i.device,
        "region": i.region,
        "experiment": i.experiment,
        "variant": i.variant,
    }


def _impression_from_dict(d: dict[str, Any]) -> Impression:
    return Impression(**{**d, "video_ids": tuple(d["video_ids"])})


def _catalog_item_to_dict(c: CatalogItem) -> dict[str, Any]:
    return {
        "video_id": c.video_id,
        "title": c.title,
        "description": c.description,
        "genres": list(c.genres),
        "content_type": c.content_type,
        "release_year": c.release_year,
        "language": c.language,
        "maturity_rating": c.maturity_rating,
        "regions": list(c.regions),
        "duration_sec": c.duration_sec,
        "added_at": c.added_at,
        "thumbnail": c.thumbnail,
        "extra": dict(c.extra),
    }


def _catalog_item_from_dict(d: dict[str, Any]) -> CatalogItem:
    return CatalogItem(**{**d, "genres": tuple(d["genres"]), "regions": tuple(d["regions"])})


def _dead_letter_to_dict(x: DeadLetter) -> dict[str, Any]:
    return {
        "original": x.original,
        "original_key": x.original_key,
        "topic": x.topic,
        "partition": x.partition,
        "offset": x.offset,
        "reason": x.reason,
        "field": x.field,
        "failed_at": x.failed_at,
        "stage": x.stage,
    }


@dataclass(frozen=True)
class _Binding:
    model: type
    to_dict: Callable[[Any], dict[str, Any]]
    from_dict: Callable[[dict[str, Any]], Any]


#: Avro full name -> the model dataclass and its converters.
BINDINGS: dict[str, _Binding] = {
    "streamrec.events.UserEvent": _Binding(UserEvent, _user_event_to_dict, _user_event_from_dict),
    "streamrec.events.Impression": _Binding(Impression, _impression_to_dict, _impression_from_dict),
    "streamrec.events.CatalogItem": _Binding(CatalogItem, _catalog_item_to_dict, _catalog_item_from_dict),
    "streamrec.events.DeadLetter": _Binding(DeadLetter, _dead_letter_to_dict, lambda d: DeadLetter(**d)),
}
_NAME_OF_MODEL = {b.model: name for name, b in BINDINGS.items()}


# -- the registry -------------------------------------------------------------------------------


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(s) for s in schema]
    return schema


def schema_fingerprint(schema: Any) -> bytes:
    """CRC-64-AVRO of the Parsing Canonical Form, little-endian, as single-object encoding wants."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@dataclass(frozen=True)
class SchemaVersion:
    """One schema file: ``version`` is ``"current"`` or ``"v1"``, ``"v2"``, ... from history/."""

    name: str  # Avro full name, e.g. streamrec.events.UserEvent
    version: str
    path: Path
    declared: dict[str, Any]  # as written in the file
    parsed: dict[str, Any]  # fastavro-parsed, logical types dropped
    fingerprint: bytes

    @functools.cached_property
    def field_schemas(self) -> list[tuple[str, dict[str, Any] | str | list[Any]]]:
        """Each top-level field with its own parsed schema, to find the field at fault on errors."""
        from fastavro.schema import expand_schema

        expanded: dict[str, Any] = expand_schema(_without_logical_types(self.declared))  # type: ignore[assignment]
        return [(f["name"], parse_schema(f["type"], named_schemas={})) for f in expanded["fields"]]


def _load(path: Path, version: str) -> SchemaVersion:
    try:
        declared = json.loads(path.read_text())
        parsed: dict[str, Any] = parse_schema(_without_logical_types(declared), named_schemas={})  # type: ignore[assignment]
    except Exception as exc:
        raise ValueError(f"schema {path} does not parse: {exc}") from exc
    name = parsed["name"]
    return SchemaVersion(name, version, path, declared, parsed, schema_fingerprint(declared))


class SchemaRegistry:
    """Every schema in ``schemas/avro`` (current) and ``schemas/avro/history`` (older versions)."""

    def __init__(self, schema_dir: Path = SCHEMA_DIR) -> None:
        self.schema_dir = Path(schema_dir)
        self.current: dict[str, SchemaVersion] = {}
        self.by_fingerprint: dict[bytes, SchemaVersion] = {}
        self.history: dict[str, list[SchemaVersion]] = {}
        for path in sorted(self.schema_dir.glob("*.avsc")):
            schema = _load(path, "current")
            if schema.name in self.current:
                raise ValueError(f"{schema.name} is defined twice: {self.current[schema.name].path} and {path}")
            self.current[schema.name] = schema
            self._add(schema)
        for path in sorted((self.schema_dir / "history").glob("*.v*.avsc")):
            schema = _load(path, path.name.rsplit(".", 2)[-2])
            if schema.name not in self.current:
                raise ValueError(f"{path} is an old version of {schema.name}, which has no current schema")
            self.history.setdefault(schema.name, []).append(schema)
            self._add(schema)
        if not self.current:
            raise ValueError(f"no *.avsc schemas in {self.schema_dir}")

    def _add(self, schema: SchemaVersion) -> None:
        known = self.by_fingerprint.get(schema.fingerprint)
        if known is not None and known.name != schema.name:
            raise ValueError(f"{schema.path} and {known.path} share fingerprint {schema.fingerprint.hex()}")
        # An old version identical to the current one adds nothing: keep the current entry.
        self.by_fingerprint.setdefault(schema.fingerprint, schema)


# -- the codec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reader:
    schema: SchemaVersion
    reader: dict[str, Any] | None  # the current schema when the writer is an older version
    from_dict: Callable[[dict[str, Any]], Any]


class EventCodec:
    """Encodes model records to single-object Avro and decodes any version the registry knows."""

    def __init__(self, registry: SchemaRegistry | None = None) -> None:
        self.registry = registry or SchemaRegistry()
        missing = set(BINDINGS) - set(self.registry.current)
        if missing:
            raise ValueError(f"no schema for {sorted(missing)} in {self.registry.schema_dir}")
        self._writers = {
            BINDINGS[name].model: (schema, MAGIC + schema.fingerprint, BINDINGS[name].to_dict)
            for name, schema in self.registry.current.items()
            if name in BINDINGS
        }
        self._readers: dict[bytes, _Reader] = {}
        for fp, schema in self.registry.by_fingerprint.items():
            current = self.registry.current[schema.name]
            binding = BINDINGS.get(schema.name)
            from_dict = binding.from_dict if binding else dict
            reader = None if current is schema else current.parsed
            self._readers[fp] = _Reader(schema, reader, from_dict)
        # User events in today's schema: read by fast_reader when the schema is the layout it knows.
        events = self.registry.current["streamrec.events.UserEvent"]
        self._fast_header = MAGIC + events.fingerprint if layout(events.parsed) == LAYOUT else None

    def encode(self, record: Record) -> bytes:
        """The record as single-object Avro in its current schema; ``EventValidationError`` if it
        does not fit the schema (the error names the field)."""
        try:
            schema, header, to_dict = self._writers[type(record)]
        except KeyError:
            raise EventValidationError("record", f"cannot encode a {type(record).__name__}") from None
        datum = to_dict(record)
        out = BytesIO()
        out.write(header)
        try:
            schemaless_writer(out, schema.parsed, datum)
        except Exception as exc:  # fastavro raises many types; the slow path below names the field
            raise EventValidationError(_find_invalid_fields(schema, datum) or [FieldError("record", str(exc))]) from exc
        return out.getvalue()

    def decode_dict(self, data: bytes) -> tuple[SchemaVersion, dict[str, Any]]:
        """The writer's schema and the record as a plain dict, resolved to the current schema."""
        entry, datum = self._read(data)
        return entry.schema, datum

    def _read(self, data: bytes) -> tuple[_Reader, dict[str, Any]]:
        if len(data) < HEADER_LEN or data[:2] != MAGIC:
            head = bytes(data[:2]).hex() or "nothing"
            raise EventDecodeError(
                "header", f"not Avro single-object encoding: starts with {head}, expected c301 and 8 fingerprint bytes"
            )
        entry = self._readers.get(bytes(data[2:HEADER_LEN]))
        if entry is None:
            raise EventDecodeError("header", f"unknown schema fingerprint {bytes(data[2:HEADER_LEN]).hex()}")
        buf = BytesIO(data)
        buf.seek(HEADER_LEN)
        try:
            datum = schemaless_reader(buf, entry.schema.parsed, entry.reader)
        except SchemaResolutionError as exc:
            # The writer's version cannot be read as today's schema: a bad schema change, not bad data.
            found = re.search(r"field (\w+)", str(exc))
            reason = f"written with {entry.schema.version} of {entry.schema.name}, unreadable as current: {exc}"
            raise EventDecodeError(found.group(1) if found else "body", reason) from exc
        except Exception as exc:  # truncation and corruption surface as many types
            raise EventDecodeError(_locate_decode_failure(entry.schema, data[HEADER_LEN:])) from exc
        left = len(data) - buf.tell()
        if left:
            raise EventDecodeError("body", f"{left} bytes left after a complete {entry.schema.name}: corrupt record")
        return entry, datum  # type: ignore[return-value]  # a record schema reads a dict

    def decode(self, data: bytes) -> Record:
        """The model record in ``data``; ``EventDecodeError`` naming the field when it cannot be read,
        or when an id breaks the one id rule (:mod:`streamrec.events.ids`): a record written by any
        producer, not only by the HTTP service, meets the rule the service applies."""
        if self._fast_header is not None and type(data) is bytes and data.startswith(self._fast_header):
            event = read_user_event(data, HEADER_LEN)
            if event is not None:
                _check_ids(event)
                return event
        entry, datum = self._read(data)
        try:
            record = entry.from_dict(datum)
        except (KeyError, TypeError) as exc:
            raise EventDecodeError("body", f"{entry.schema.name} does not fit the model: {exc}") from exc
        _check_ids(record)
        return record  # type: ignore[no-any-return]

    def decode_event(self, data: bytes) -> UserEvent:
        """Like ``decode`` but only accepts a ``UserEvent``."""
        record = self.decode(data)
        if not isinstance(record, UserEvent):
            raise EventDecodeError("header", f"expected a UserEvent, found a {type(record).__name__}")
        return record


#: Ids and regions that met their rule lately: the same users, titles, devices and regions come
#: back in every other event, and a set lookup costs a fraction of the pattern match. Bounded:
#: emptied when full.
_PASSED: set[str] = set()
_PASSED_REGIONS: set[str] = set()
_PASSED_LIMIT = 100_000


def _passes(value: str, rule: Callable[[str], bool], passed: set[str]) -> bool:
    if value in passed:
        return True
    if not rule(value):
        return False
    if len(passed) >= _PASSED_LIMIT:
        passed.clear()
    passed.add(value)
    return True


def _check_ids(record: object) -> None:
    fields: tuple[tuple[str, str | None], ...]
    if isinstance(record, UserEvent):
        fields = (("user_id", record.user_id), ("video_id", record.video_id), ("device", record.device))
        region = record.region
    elif isinstance(record, CatalogItem):
        fields, region = (("video_id", record.video_id),), None
    else:
        return
    for name, value in fields:  # the set lookup inline: almost every id has passed before
        if value is not None and value not in _PASSED and not _passes(value, is_id, _PASSED):
            raise EventDecodeError(name, f"{ID_RULE}, got {value[:40]!r}")
    if region is not None and region not in _PASSED_REGIONS and not _passes(region, is_region, _PASSED_REGIONS):
        raise EventDecodeError("region", f"{REGION_RULE}, got {region[:40]!r}")


def _find_invalid_fields(schema: SchemaVersion, datum: dict[str, Any]) -> list[FieldError]:
    errors = []
    for name, field_schema in schema.field_schemas:
        value = datum.get(name)
        if not validate(value, field_schema, raise_errors=False):
            errors.append(FieldError(name, f"{value!r:.60} does not fit Avro type {_describe(field_schema)}"))
    return errors


def _locate_decode_failure(schema: SchemaVersion, body: bytes) -> list[FieldError]:
    buf = BytesIO(body)
    for name, field_schema in schema.field_schemas:
        start = buf.tell()
        try:
            schemaless_reader(buf, field_schema, None)
        except (EOFError, StopIteration, IndexError, ValueError, OverflowError) as exc:
            if buf.tell() >= len(body) or isinstance(exc, EOFError | StopIteration):
                reason = f"truncated: the record ends inside this field (at body byte {start} of {len(body)})"
            else:
                reason = f"corrupt value at body byte {start}: {exc}"
            return [FieldError(name, reason)]
        except Exception as exc:  # noqa: BLE001
            return [FieldError(name, f"corrupt value at body byte {start}: {type(exc).__name__}: {exc}")]
    return [FieldError("body", f"unreadable {schema.name} ({len(body)} bytes)")]


def _describe(schema: Any) -> str:
    if isinstance(schema, dict):
        return str(schema.get("type"))
    if isinstance(schema, list):
        return " | ".join(_describe(s) for s in schema)
    return str(schema)


@functools.cache
def default_codec() -> EventCodec:
    """The codec over the repository's ``schemas/avro``, built once per process."""
    return EventCodec()
