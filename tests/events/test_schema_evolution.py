"""Schema evolution: today's schemas read every record their older versions wrote.

Old versions live in ``schemas/avro/history/<file>.vN.avsc``. For each one, records are made from
the old schema itself (every field set, and every optional field left empty), written in the old
version's single-object encoding, and decoded by the codec into today's model. A schema change
that would strand data in Kafka fails here before it is deployed.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from streamrec.events.codec import (
    MAGIC,
    SCHEMA_DIR,
    EventCodec,
    SchemaRegistry,
    SchemaVersion,
    default_codec,
)
from streamrec.events.errors import EventDecodeError

REGISTRY = SchemaRegistry()
OLD_VERSIONS = [old for versions in REGISTRY.history.values() for old in versions]


def example(schema: Any, *, full: bool, depth: str = "x") -> Any:
    """A value of ``schema``: ``full`` takes the non-null branch of every union, else the null one."""
    if isinstance(schema, list):
        branches = [b for b in schema if b != "null"] if full or "null" not in schema else ["null"]
        return example(branches[0], full=full, depth=depth)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: example(f["type"], full=full, depth=f["name"]) for f in schema["fields"]}
        if kind == "enum":
            return schema["symbols"][-1]
        if kind == "array":
            return [example(schema["items"], full=full, depth=depth)] if full else []
        if kind == "map":
            return {"k": example(schema["values"], full=full, depth=depth)} if full else {}
        if kind == "fixed":
            return b"\x01" * schema["size"]
        return example(kind, full=full, depth=depth)
    return {
        "null": None,
        "boolean": True,
        "int": 7,
        "long": 1_764_470_000_123,
        "float": 1.5,
        "double": 2.25,
        "bytes": b"\x00\xff",
        "string": f"{depth}-value",
    }[schema]


def single_object(old: SchemaVersion, datum: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(MAGIC + old.fingerprint)
    fastavro.schemaless_writer(out, old.parsed, datum)
    return out.getvalue()


def test_history_exists_and_is_named_after_current_schemas() -> None:
    assert OLD_VERSIONS, "schemas/avro/history/ should keep at least the catalog item's v1"
    for path in (SCHEMA_DIR / "history").glob("*.avsc"):
        stem, version, _ = path.name.rsplit(".", 2)
        assert version[0] == "v" and version[1:].isdigit(), path.name
        assert (SCHEMA_DIR / f"{stem}.avsc").exists(), f"{path.name} has no current {stem}.avsc"


@pytest.mark.parametrize("old", OLD_VERSIONS, ids=lambda s: s.path.name)
@pytest.mark.parametrize("full", [True, False], ids=["all-fields-set", "optional-fields-empty"])
def test_current_schema_reads_records_of_old_versions(old: SchemaVersion, full: bool) -> None:
    codec = default_codec()
    current = REGISTRY.current[old.name]
    assert old.fingerprint != current.fingerprint, f"{old.path.name} is identical to the current schema"
    datum = example(old.parsed, full=full)
    record = codec.decode(single_object(old, datum))
    values = {name: getattr(record, name) for name in datum}
    for name, written in datum.items():
        read = values[name]
        assert (list(read) if isinstance(read, tuple) else read) == written, name
    # Fields added since that version come out as their declared defaults.
    for added in current.declared["fields"]:
        if added["name"] not in datum:
            assert getattr(record, added["name"]) == added["default"], added["name"]


def test_an_incompatible_change_is_caught(tmp_path: Path) -> None:
    # Make a version that adds a field without a default: it cannot read the current records, and the
    # codec says which field is at fault. This proves the check above can fail.
    schemas = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, schemas)
    (schemas / "history").joinpath("impression.v2.avsc").write_text((SCHEMA_DIR / "impression.avsc").read_text())
    changed = json.loads((SCHEMA_DIR / "impression.avsc").read_text())
    changed["fields"].append({"name": "campaign", "type": "string"})
    (schemas / "impression.avsc").write_text(json.dumps(changed))
    codec = EventCodec(SchemaRegistry(schemas))
    old = next(s for s in codec.registry.history["streamrec.events.Impression"] if s.version == "v2")
    with pytest.raises(EventDecodeError) as err:
        codec.decode_dict(single_object(old, example(old.parsed, full=True)))
    assert err.value.field == "campaign"
    assert "written with v2 of streamrec.events.Impression, unreadable as current" in err.value.reason


def test_registry_refuses_history_without_a_current_schema(tmp_path: Path) -> None:
    schemas = tmp_path / "avro"
    shutil.copytree(SCHEMA_DIR, schemas)
    (schemas / "history" / "watch_party.v1.avsc").write_text(
        json.dumps({"type": "record", "name": "WatchParty", "namespace": "streamrec.events", "fields": []})
    )
    with pytest.raises(ValueError, match="has no current schema"):
        SchemaRegistry(schemas)
