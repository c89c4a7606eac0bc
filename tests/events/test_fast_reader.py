"""The decode hot path (:mod:`streamrec.events.fast_reader`) against fastavro's reading, the
reference: the same event for every record of both shared rating logs and every event kind, and
for a damaged or unusually written record either the same event or no answer (fastavro decides)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from streamrec import ratings as rating_logs
from streamrec.events.codec import HEADER_LEN, EventCodec, default_codec
from streamrec.events.errors import EventDecodeError
from streamrec.events.fast_reader import LAYOUT, layout, read_user_event
from streamrec.events.model import EventType, UserEvent
from tests.events.samples import sample_event


def reference(codec: EventCodec, data: bytes) -> UserEvent | None:
    """fastavro's reading of ``data`` into the model (None where it refuses the record)."""
    try:
        entry, datum = codec._read(data)
        return entry.from_dict(datum)  # type: ignore[no-any-return]
    except (EventDecodeError, KeyError, TypeError):
        return None


def events_of(dataset: Path) -> list[UserEvent]:
    """Every 5th event of the log's watch sessions (~120k: every kind, every user)."""
    return list(rating_logs.history_events(rating_logs.load_ratings(dataset)))[::5]


def same(a: UserEvent | None, b: UserEvent | None) -> bool:
    """Equal, field by field as ``repr`` spells them (a NaN equals a NaN, -0.0 differs from 0.0)."""
    return repr(a) == repr(b)


def test_the_current_schema_is_the_layout_the_fast_reader_knows() -> None:
    codec = default_codec()
    assert layout(codec.registry.current["streamrec.events.UserEvent"].parsed) == LAYOUT
    assert codec._fast_header is not None


@pytest.mark.parametrize("dataset", ["movielens_dir", "movietweetings_dir"])
def test_every_event_of_the_shared_logs_reads_as_fastavro_reads_it(dataset: str, request: pytest.FixtureRequest) -> None:
    codec = default_codec()
    events = events_of(request.getfixturevalue(dataset))
    assert len(events) > 100_000 and set(EventType) - {e.event_type for e in events} <= {
        EventType.SEARCH, EventType.SET_PREFERENCES, EventType.ADD_TO_LIST, EventType.REMOVE_FROM_LIST, EventType.LIKE}
    for event in events:
        data = codec.encode(event)
        fast = read_user_event(data, HEADER_LEN)
        assert fast is not None and same(fast, reference(codec, data)) and fast == event, event
        assert hash(fast) == hash(event) and type(fast) is UserEvent
        assert type(fast.event_type) is EventType and type(fast.timestamp) is int


def odd_events() -> list[UserEvent]:
    """Every kind with every field, long ids and strings (multi-byte lengths), non-ASCII text,
    negative and huge numbers, many genres."""
    out = [sample_event(kind, n=n) for kind in EventType for n in (0, 1, 7)]
    rng = random.Random(13)
    for i in range(200):
        kind = rng.choice(list(EventType))
        out.append(UserEvent(
            event_id="é" * rng.randrange(1, 120), event_type=kind, user_id=f"u{i}" + "x" * rng.randrange(0, 300),
            timestamp=rng.choice([0, -1, 1, 2**62, -(2**62), rng.randrange(-2**40, 2**40)]),
            device=rng.choice([None, "", "tv", "ü" * 70]), region=rng.choice([None, "DE", ""]),
            video_id=rng.choice([None, "ml-1", "t" * 200]), position_sec=rng.choice([None, 0.0, -1.5, 1e300]),
            duration_sec=rng.choice([None, 8520.0, float("inf")]), rating=rng.choice([None, 0.5, 5.0]),
            query=rng.choice([None, "", "space opera with ünïcode " * rng.randrange(1, 9)]),
            genres=tuple(rng.choice(["Drama", "Sci-Fi", "ö" * 80, ""]) for _ in range(rng.randrange(0, 70)))))
    return out


def test_every_kind_and_odd_values_read_as_fastavro_reads_them() -> None:
    codec = default_codec()
    for event in odd_events():
        data = codec.encode(event)
        fast = read_user_event(data, HEADER_LEN)
        assert same(fast, reference(codec, data)) and same(fast, event), event


def test_a_damaged_record_reads_as_fastavro_reads_it_or_not_at_all() -> None:
    """Every truncation and bytes appended, and random byte changes: where the fast reader
    answers, fastavro gives that very event (it never accepts what fastavro refuses)."""
    codec = default_codec()
    rng = random.Random(5)
    answered = 0
    for event in odd_events()[::4]:
        data = codec.encode(event)
        damaged = [data[:n] for n in range(HEADER_LEN, len(data))] + [data + b"\x00", data + b"\x02a"]
        for _ in range(60):
            body = bytearray(data)
            for _ in range(rng.randrange(1, 3)):
                body[rng.randrange(HEADER_LEN, len(body))] = rng.randrange(256)
            damaged.append(bytes(body))
        for bad in damaged:
            fast = read_user_event(bad, HEADER_LEN)
            if fast is not None:
                answered += 1
                assert same(fast, reference(codec, bad)), bad.hex()
    assert answered > 100  # changed values inside strings and numbers still read


def test_unusual_but_valid_encodings_read_as_fastavro_reads_them() -> None:
    """Genres in several array blocks, a block with its byte size (negative count), overlong
    varints: valid Avro the encoder never writes, read as fastavro reads it."""
    codec = default_codec()
    data = codec.encode(sample_event(EventType.SET_PREFERENCES))  # genres ("Sci-Fi", "Documentary")
    head = data[:-len(b"\x04\x0cSci-Fi\x16Documentary\x00")]
    for genres in (b"\x02\x0cSci-Fi\x02\x16Documentary\x00",  # two blocks of one
                   b"\x03\x26\x0cSci-Fi\x16Documentary\x00",  # a block of -2 with its byte size (19)
                   b"\x84\x00\x0cSci-Fi\x16Documentary\x00",  # the count as an overlong varint
                   b"\x04\x8c\x00Sci-Fi\x16Documentary\x00"):  # a length as an overlong varint
        odd = head + genres
        expected = reference(codec, odd)
        assert expected is not None and expected.genres == ("Sci-Fi", "Documentary")
        assert same(read_user_event(odd, HEADER_LEN), expected), genres.hex()


def test_the_codec_decodes_through_the_fast_reader_and_falls_back_to_fastavro() -> None:
    codec = default_codec()
    event = sample_event(EventType.PLAY)
    data = codec.encode(event)
    assert codec.decode(data) == event
    assert codec.decode(bytearray(data)) == event  # not bytes: fastavro reads it
    with pytest.raises(EventDecodeError) as caught:  # the fast reader declines; fastavro names the field
        codec.decode(data[:-3])
    assert caught.value.errors[0].field == "rating"  # the last 3 bytes: genres, query and the end of rating
