"""The single-object Avro codec: round trips, the wire format, and errors that name the field."""

from __future__ import annotations

import io
import json

import fastavro
import pytest

from streamrec.events import codec as codec_module
from streamrec.events.codec import (
    MAGIC,
    SCHEMA_DIR,
    EventCodec,
    default_codec,
    schema_fingerprint,
)
from streamrec.events.errors import EventDecodeError, EventValidationError
from streamrec.events.model import (
    CatalogItem,
    DeadLetter,
    EventType,
    Impression,
    UserEvent,
)
from tests.events.samples import (
    sample_catalog_item,
    sample_dead_letter,
    sample_event,
    sample_impression,
)


@pytest.fixture(scope="module")
def codec() -> EventCodec:
    return default_codec()


@pytest.mark.parametrize("kind", list(EventType), ids=lambda k: k.value)
def test_every_event_kind_round_trips(codec: EventCodec, kind: EventType) -> None:
    event = sample_event(kind)
    decoded = codec.decode(codec.encode(event))
    assert decoded == event
    assert isinstance(decoded.event_type, EventType)
    assert isinstance(decoded.genres, tuple)


@pytest.mark.parametrize(
    "record",
    [sample_impression(), sample_catalog_item(), sample_dead_letter(), CatalogItem(video_id="m1", title="Bare")],
    ids=["impression", "catalog_item", "dead_letter", "catalog_item_defaults"],
)
def test_other_records_round_trip(codec: EventCodec, record: Impression | CatalogItem | DeadLetter) -> None:
    assert codec.decode(codec.encode(record)) == record


def test_fingerprint_matches_the_avro_spec_test_vector() -> None:
    # CRC-64-AVRO of the canonical form "int", as computed by an independent implementation.
    assert schema_fingerprint("int").hex() == "8f5c393f1ad57572"


def test_wire_format_is_single_object_encoding_readable_by_plain_fastavro(codec: EventCodec) -> None:
    event = sample_event(EventType.HEARTBEAT)
    data = codec.encode(event)
    declared = json.loads((SCHEMA_DIR / "user_event.avsc").read_text())
    assert data[:2] == MAGIC
    assert data[2:10] == schema_fingerprint(declared)
    # The body is plain Avro binary: fastavro reads it with the schema file as written.
    body = fastavro.schemaless_reader(io.BytesIO(data[10:]), fastavro.parse_schema(declared))
    assert body["user_id"] == event.user_id
    assert body["event_type"] == "heartbeat"
    assert body["position_sec"] == event.position_sec


def test_decode_event_refuses_other_records(codec: EventCodec) -> None:
    with pytest.raises(EventDecodeError, match="expected a UserEvent, found a CatalogItem"):
        codec.decode_event(codec.encode(sample_catalog_item()))
    assert codec.decode_event(codec.encode(sample_event(EventType.LIKE))).event_type is EventType.LIKE


def test_unknown_fingerprint_is_named(codec: EventCodec) -> None:
    data = bytearray(codec.encode(sample_event(EventType.PLAY)))
    data[2:10] = b"\x01\x02\x03\x04\x05\x06\x07\x08"
    with pytest.raises(EventDecodeError) as err:
        codec.decode(bytes(data))
    assert err.value.field == "header"
    assert "unknown schema fingerprint 0102030405060708" in err.value.reason


@pytest.mark.parametrize("data", [b"", b"\xc3", b'{"user_id": "u1"}', b"\x00\x01" + bytes(20)])
def test_bytes_without_the_marker_are_rejected(codec: EventCodec, data: bytes) -> None:
    with pytest.raises(EventDecodeError) as err:
        codec.decode(data)
    assert err.value.field == "header"
    assert "not Avro single-object encoding" in err.value.reason


def test_every_truncation_is_a_decode_error_naming_a_field(codec: EventCodec) -> None:
    data = codec.encode(sample_event(EventType.HEARTBEAT))
    field_names = {f["name"] for f in json.loads((SCHEMA_DIR / "user_event.avsc").read_text())["fields"]}
    for cut in range(10, len(data)):
        with pytest.raises(EventDecodeError) as err:
            codec.decode(data[:cut])
        assert err.value.field in field_names, (cut, str(err.value))
        assert "truncated" in err.value.reason


def test_truncation_names_the_field_it_cut(codec: EventCodec) -> None:
    event = sample_event(EventType.SEARCH)
    data = codec.encode(event)
    query_bytes = event.query.encode()  # type: ignore[union-attr]
    cut = data.index(query_bytes) + 3  # in the middle of the query text
    with pytest.raises(EventDecodeError) as err:
        codec.decode(data[:cut])
    assert err.value.field == "query"


def test_trailing_bytes_are_corruption(codec: EventCodec) -> None:
    with pytest.raises(EventDecodeError) as err:
        codec.decode(codec.encode(sample_event(EventType.LIKE)) + b"\x00\x00")
    assert err.value.field == "body"
    assert "2 bytes left" in err.value.reason


def test_out_of_range_enum_names_event_type(codec: EventCodec) -> None:
    event = sample_event(EventType.LIKE)
    data = bytearray(codec.encode(event))
    # Body: event_id (length varint + 36 bytes), then the event_type enum index as a zig-zag varint.
    enum_at = 10 + 1 + len(event.event_id)
    data[enum_at] = 0x7E  # index 63: no such symbol
    with pytest.raises(EventDecodeError) as err:
        codec.decode(bytes(data))
    assert err.value.field == "event_type"


def test_invalid_utf8_names_the_string_field(codec: EventCodec) -> None:
    event = sample_event(EventType.LIKE, user_id="uuuu")
    data = codec.encode(event)
    at = data.index(b"uuuu")
    corrupt = data[:at] + b"\xff\xfe\xfd\xfc" + data[at + 4 :]
    with pytest.raises(EventDecodeError) as err:
        codec.decode(corrupt)
    assert err.value.field == "user_id"


@pytest.mark.parametrize(
    ("record", "field"),
    [
        (sample_event(EventType.RATE).replace(rating="five"), "rating"),
        (sample_event(EventType.PLAY).replace(user_id=None), "user_id"),
        (sample_event(EventType.PLAY).replace(timestamp="yesterday"), "timestamp"),
        (sample_event(EventType.PLAY).replace(event_type="binge"), "event_type"),
        (CatalogItem(video_id="m1", title="x", content_type="podcast"), "content_type"),
        (Impression("e-1", "u-1", 1, "req-1", "top_picks", (1, 2)), "video_ids"),  # type: ignore[arg-type]
    ],
    ids=["rating-str", "user_id-none", "timestamp-str", "event_type-unknown", "content_type-unknown", "video_ids-ints"],
)
def test_encode_names_the_field_that_breaks_the_schema(codec: EventCodec, record: object, field: str) -> None:
    with pytest.raises(EventValidationError) as err:
        codec.encode(record)  # type: ignore[arg-type]
    assert err.value.field == field
    assert "does not fit" in err.value.reason


def test_encode_refuses_foreign_objects(codec: EventCodec) -> None:
    with pytest.raises(EventValidationError, match="cannot encode a dict"):
        codec.encode({"user_id": "u1"})  # type: ignore[arg-type]


def test_schemas_are_parsed_once_not_per_record(codec: EventCodec, monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse_schema called on the hot path")

    monkeypatch.setattr(codec_module, "parse_schema", forbidden)
    event = sample_event(EventType.HEARTBEAT)
    assert codec.decode(codec.encode(event)) == event


def test_model_and_schemas_have_the_same_fields() -> None:
    # The dataclasses in model.py and the .avsc files must not drift apart.
    import dataclasses

    for filename, model in [
        ("user_event.avsc", UserEvent),
        ("impression.avsc", Impression),
        ("catalog_item.avsc", CatalogItem),
        ("dead_letter.avsc", DeadLetter),
    ]:
        schema_fields = {f["name"] for f in json.loads((SCHEMA_DIR / filename).read_text())["fields"]}
        model_fields = {f.name for f in dataclasses.fields(model)}
        assert schema_fields == model_fields, filename


@pytest.mark.parametrize(("changes", "field"), [
    ({"user_id": "../../x<script>"}, "user_id"),
    ({"video_id": "has space"}, "video_id"),
    ({"device": "tv\nnewline"}, "device"),
    ({"region": "no/slash"}, "region"),
])
def test_a_record_from_any_producer_meets_the_one_id_rule(changes: dict[str, str], field: str) -> None:
    """Regression (issue 11): the HTTP service refused these ids but the pipeline took them from
    Kafka; the codec now refuses them on decode, naming the field (the pipeline dead-letters them)."""
    event = UserEvent(event_id="e1", event_type=EventType.PLAY, user_id="u1", timestamp=1_700_000_000_000,
                      video_id="v1", region="US", device="tv", position_sec=1.0, duration_sec=60.0)
    data = default_codec().encode(event.replace(**changes))
    with pytest.raises(EventDecodeError) as error:
        default_codec().decode(data)
    assert error.value.field == field
    assert default_codec().decode(default_codec().encode(event)) == event


def test_the_memo_of_ids_that_met_the_rule_never_lets_a_bad_one_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids that met the rule are remembered (the decode hot path); a full memo is emptied, and an id
    is remembered only once it passed: a region-shaped id is not an id and the other way round."""
    monkeypatch.setattr(codec_module, "_PASSED_LIMIT", 3)
    codec = default_codec()
    for i in range(10):  # fills and empties the memo
        good = UserEvent(event_id=f"e{i}", event_type=EventType.PLAY, user_id=f"u{i}", timestamp=1_700_000_000_000,
                         video_id=f"v{i}", region="US", device="tv")
        assert codec.decode(codec.encode(good)) == good
        assert len(codec_module._PASSED) <= 3
    bad = good.replace(event_id="e99", video_id="v 1")
    with pytest.raises(EventDecodeError) as error:
        codec.decode(codec.encode(bad))
    assert error.value.field == "video_id"
    with pytest.raises(EventDecodeError) as error:  # "tv.hd" is an id but not a region
        codec.decode(codec.encode(good.replace(device="tv.hd", region="tv.hd")))
    assert error.value.field == "region"
