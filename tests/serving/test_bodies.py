"""The declared bodies (serving.bodies): the HTTP JSON shape -> UserEvent, one test per rule, and
the document generated from the same declaration."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import TypeAdapter

from serving import bodies
from serving.bodies import MAX_FUTURE_SKEW_S, MAX_QUERY_LEN, BodyError
from streamrec.events.ids import ID_MAX_LEN as MAX_ID_LEN
from streamrec.events.model import TITLE_EVENTS, EventType, UserEvent
from tests.events.samples import sample_event

NOW_MS = 1_764_470_400_000
NOW_S = NOW_MS / 1000
EVENTS = TypeAdapter(bodies.events_body(500))


def event_from_json(obj: Any, *, now_ms: int = NOW_MS) -> UserEvent:
    """The one event of a body holding ``obj`` (the server's path: bytes in, UserEvent out)."""
    [event] = bodies.events_of(bodies.read(EVENTS, json.dumps(obj).encode(), now_s=now_ms / 1000))
    return event


def event_to_json(event: UserEvent) -> dict[str, Any]:
    """The HTTP JSON shape of ``event`` (``timestamp`` in Unix seconds; absent fields left out)."""
    out: dict[str, Any] = {"event_id": event.event_id, "event_type": event.event_type.value,
                           "user_id": event.user_id, "timestamp": event.timestamp / 1000}
    for name in ("device", "region", "video_id", "position_sec", "duration_sec", "rating", "query"):
        if getattr(event, name) is not None:
            out[name] = getattr(event, name)
    if event.genres:
        out["genres"] = list(event.genres)
    return out


def valid(kind: str = "heartbeat", **changes: Any) -> dict[str, Any]:
    """A valid JSON object of ``kind``; ``changes`` set fields, a value of ... removes one."""
    obj: dict[str, Any] = {"user_id": "u42", "event_type": kind, "timestamp": NOW_S - 60, "device": "tv", "region": "US"}
    if kind in {k.value for k in TITLE_EVENTS}:
        obj["video_id"] = "ml-318"
    if kind in ("play", "pause", "heartbeat", "complete"):
        obj |= {"position_sec": 612.0, "duration_sec": 8520.0}
    if kind == "rate":
        obj["rating"] = 4
    if kind == "search":
        obj["query"] = "heist"
    if kind == "set_preferences":
        obj["genres"] = ["Crime", "Drama"]
    for name, value in changes.items():
        if value is ...:
            obj.pop(name, None)
        else:
            obj[name] = value
    return obj


def errors_of(obj: Any) -> dict[str, str]:
    with pytest.raises(BodyError) as err:
        event_from_json(obj, now_ms=NOW_MS)
    listed = err.value.errors
    assert all(set(e) == {"index", "field", "reason"} and e["index"] == 0 for e in listed)
    return {e["field"]: e["reason"] for e in listed}


@pytest.mark.parametrize("kind", list(EventType), ids=lambda k: k.value)
def test_every_kind_converts(kind: EventType) -> None:
    event = event_from_json(valid(kind.value), now_ms=NOW_MS)
    assert event.event_type is kind
    assert event.user_id == "u42"
    assert event.timestamp == NOW_MS - 60_000


def test_seconds_become_milliseconds_with_fractions() -> None:
    assert event_from_json(valid(timestamp=1_700_000_000.1234), now_ms=NOW_MS).timestamp == 1_700_000_000_123


def test_event_id_is_made_when_absent_and_differs_per_event() -> None:
    first = event_from_json(valid(), now_ms=NOW_MS)
    second = event_from_json(valid(), now_ms=NOW_MS)
    assert uuid.UUID(first.event_id).version == 4
    assert first.event_id != second.event_id


def test_given_event_id_is_kept_in_canonical_form() -> None:
    given = "6F9619FF-8B86-D011-B42D-00C04FC964FF"
    assert event_from_json(valid(event_id=given), now_ms=NOW_MS).event_id == given.lower()


def test_json_round_trip_keeps_the_event() -> None:
    for kind in EventType:
        event = sample_event(kind)
        assert event_from_json(event_to_json(event), now_ms=NOW_MS) == event


def test_not_an_object() -> None:
    assert errors_of(17) == {"event": "must be a JSON object, not number"}


@pytest.mark.parametrize("name", ["user_id", "event_type", "timestamp"])
def test_missing_required_field(name: str) -> None:
    assert errors_of(valid(**{name: ...}))[name] == "missing"


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("user_id", 42, "must be a string, not number"),
        ("timestamp", "2025-11-30T00:00:00Z", "must be a number, not string"),
        ("position_sec", True, "must be a number, not boolean"),
        ("genres", "Drama", "must be a list, not string"),
        ("device", {"kind": "tv"}, "must be a string, not object"),
    ],
)
def test_wrong_type(name: str, value: Any, reason: str) -> None:
    kind = "set_preferences" if name == "genres" else "heartbeat"
    assert errors_of(valid(kind, **{name: value}))[name] == reason


def test_unknown_event_kind() -> None:
    assert errors_of(valid(event_type="binge"))["event_type"].startswith("unknown event kind 'binge'; known: play, pause")


def test_unknown_field() -> None:
    assert errors_of(valid(positon_sec=3))["positon_sec"] == "unknown field"


def test_negative_position() -> None:
    assert errors_of(valid(position_sec=-1))["position_sec"] == "must not be negative"


def test_position_past_duration() -> None:
    assert errors_of(valid(position_sec=9000, duration_sec=8520))["position_sec"] == "past the end: 9000s of a 8520s title"


def test_position_at_the_end_is_fine() -> None:
    assert event_from_json(valid("complete", position_sec=8520, duration_sec=8520), now_ms=NOW_MS).position_sec == 8520


def test_zero_duration() -> None:
    assert errors_of(valid(duration_sec=0))["duration_sec"] == "must be positive"


def test_heartbeat_needs_a_position() -> None:
    assert errors_of(valid("heartbeat", position_sec=...))["position_sec"] == "missing"


def test_position_only_on_watch_events() -> None:
    assert errors_of(valid("like", position_sec=3))["position_sec"] == (
        "only play, pause, complete, heartbeat events carry it, not like")


@pytest.mark.parametrize("rating", [0, 0.5, 5.5, 6, -1])
def test_rating_outside_one_to_five(rating: float) -> None:
    assert errors_of(valid("rate", rating=rating))["rating"].startswith("must be between 1 and 5 stars")


def test_rating_in_half_stars() -> None:
    assert errors_of(valid("rate", rating=3.3))["rating"] == "must be in half stars, not 3.3"
    assert event_from_json(valid("rate", rating=3.5), now_ms=NOW_MS).rating == 3.5


def test_rate_needs_a_rating() -> None:
    assert errors_of(valid("rate", rating=...))["rating"] == "missing"


def test_rating_only_on_rate_events() -> None:
    assert errors_of(valid("like", rating=5))["rating"] == "only rate events carry it, not like"


def test_timestamp_too_far_in_the_future() -> None:
    assert errors_of(valid(timestamp=NOW_S + MAX_FUTURE_SKEW_S + 1))["timestamp"] == "more than 300s in the future"
    # Just inside the allowed clock skew is accepted.
    assert event_from_json(valid(timestamp=NOW_S + MAX_FUTURE_SKEW_S - 1), now_ms=NOW_MS)


def test_timestamp_in_milliseconds_gets_a_hint() -> None:
    assert "looks like milliseconds" in errors_of(valid(timestamp=NOW_MS))["timestamp"]


def test_negative_timestamp() -> None:
    assert errors_of(valid(timestamp=-5))["timestamp"] == "must not be negative (Unix seconds)"


def test_old_timestamps_are_accepted_for_replays() -> None:
    # MovieLens ratings start in 1996; a backfill through HTTP must not be refused.
    assert event_from_json(valid("rate", timestamp=828_124_615), now_ms=NOW_MS).timestamp == 828_124_615_000


@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", 17])
def test_bad_event_id(bad: Any) -> None:
    reason = errors_of(valid(event_id=bad))["event_id"]
    assert reason.startswith(("not a UUID", "must be a UUID string"))


def test_event_id_null_is_absent() -> None:
    assert uuid.UUID(event_from_json(valid(event_id=None)).event_id)


@pytest.mark.parametrize("kind", sorted(k.value for k in TITLE_EVENTS))
def test_title_events_need_video_id(kind: str) -> None:
    assert errors_of(valid(kind, video_id=...))["video_id"] == "missing"


def test_search_needs_no_video_id_but_a_query() -> None:
    assert event_from_json(valid("search"), now_ms=NOW_MS).video_id is None
    assert errors_of(valid("search", query=...))["query"] == "missing"


def test_set_preferences_needs_genres() -> None:
    assert errors_of(valid("set_preferences", genres=[]))["genres"] == "must have at least 1 item(s)"
    assert errors_of(valid("set_preferences", genres=["Drama", ""]))["genres[1]"] == "must not be empty"
    assert errors_of(valid("set_preferences", genres=["Drama", " \t"]))["genres[1]"] == "must not be blank"
    assert errors_of(valid("set_preferences", genres=["x"] * 51))["genres"] == "too many: 51, at most 50"


@pytest.mark.parametrize(
    ("name", "kind", "length", "limit"),
    [("user_id", "like", MAX_ID_LEN + 1, MAX_ID_LEN), ("query", "search", MAX_QUERY_LEN + 1, MAX_QUERY_LEN)],
)
def test_too_long_strings(name: str, kind: str, length: int, limit: int) -> None:
    assert errors_of(valid(kind, **{name: "x" * length}))[name] == f"too long: {length} characters, at most {limit}"


def test_empty_strings() -> None:
    assert errors_of(valid(user_id=""))["user_id"] == "must not be empty"
    assert errors_of(valid("search", query="   "))["query"] == "must not be blank"


def test_all_problems_are_reported_at_once() -> None:
    found = errors_of({"event_type": "rate", "timestamp": NOW_S, "rating": 9, "extra": 1})
    assert set(found) == {"user_id", "video_id", "rating", "extra"}


# -- issue 11: hostile numbers, bounds and ids -------------------------------------------------


@pytest.mark.parametrize("name", ["timestamp", "position_sec", "duration_sec", "rating"])
def test_integers_too_large_for_a_float_name_the_field(name: str) -> None:
    kind = "rate" if name == "rating" else "heartbeat"
    assert "finite number" in errors_of(valid(kind, **{name: 10**400}))[name]


@pytest.mark.parametrize("name", ["position_sec", "duration_sec"])
def test_watch_positions_and_durations_are_at_most_a_week(name: str) -> None:
    week = 7 * 24 * 3600
    assert event_from_json(valid("complete", position_sec=week, duration_sec=week), now_ms=NOW_MS)
    assert "at most 604800" in errors_of(valid(**{name: week + 1, "duration_sec": week + 1}))[name]


def test_timestamps_before_the_replayable_past_are_refused() -> None:
    assert "before 1990-01-01" in errors_of(valid(timestamp=5))["timestamp"]
    assert "before 1990-01-01" in errors_of(valid(timestamp=631_151_999))["timestamp"]


@pytest.mark.parametrize("name", ["user_id", "video_id", "device"])
@pytest.mark.parametrize("bad", ["../../x<script>", "has space", "new\nline", "-leading", "é"])
def test_ids_follow_the_one_id_pattern(name: str, bad: str) -> None:
    assert "letters, digits" in errors_of(valid(**{name: bad}))[name]


@pytest.mark.parametrize("bad", ["U S", "../x", "US\n"])
def test_regions_follow_the_region_pattern(bad: str) -> None:
    assert "letters, digits" in errors_of(valid(region=bad))["region"]


@pytest.mark.parametrize("value", ["u42", "ml:318", "a.b@c-d_e", "x" * 128, "x" * 129, "../../x", "a b", "-x", ""])
def test_reads_and_writes_accept_the_same_ids(value: str) -> None:
    from serving.errors import ApiError
    from serving.params import check_id

    try:
        event_from_json(valid(user_id=value, video_id=value), now_ms=NOW_MS)
        written = True
    except BodyError:
        written = False
    try:
        check_id("user_id", value)
        read = True
    except ApiError:
        read = False
    assert written == read


# -- issue 19: one declaration for the server and the document --------------------------------------


PREFERENCES = TypeAdapter(bodies.Preferences)


def test_preferences_are_genres_and_optionally_where() -> None:
    body = bodies.read(PREFERENCES, b'{"genres": ["Drama"], "region": "US", "device": "tv"}')
    assert body.genres == ["Drama"] and body.region == "US" and body.device == "tv"
    with pytest.raises(BodyError) as err:
        bodies.read(PREFERENCES, b'{"genres": [], "mood": "sad", "region": ""}')
    assert {e["field"] for e in err.value.errors} == {"genres", "mood", "region"}
    assert all("index" not in e for e in err.value.errors)


def test_the_document_states_what_the_server_takes() -> None:
    from serving.openapi import document
    from serving.settings import ServingConfig

    config = ServingConfig(store_url="sqlite:///x", kafka_bootstrap="x", jwt_key="k" * 40, max_batch_events=7)
    schemas = document(config, now_s=NOW_S)["components"]["schemas"]
    for shape in bodies.EVENT_SHAPES:
        schema = schemas[shape.__name__]
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == {n for n, f in shape.model_fields.items() if f.is_required()}
        assert schema["properties"]["timestamp"]["maximum"] == NOW_S + MAX_FUTURE_SKEW_S
    assert set(schemas["Event"]["discriminator"]["mapping"]) == {k.value for k in EventType}
    batch = next(s for s in schemas["EventsBody"]["oneOf"] if s.get("type") == "array")
    assert (batch["minItems"], batch["maxItems"]) == (1, 7)
    assert schemas["EventBatch"]["properties"]["events"]["maxItems"] == 7
    genre = schemas["Preferences"]["properties"]["genres"]["items"]
    assert genre["minLength"] == 1


def test_a_batch_over_the_limit_says_its_size_in_both_shapes() -> None:
    small = TypeAdapter(bodies.events_body(3))
    for body in ([valid()] * 4, {"events": [valid()] * 4}):
        with pytest.raises(BodyError) as err:
            bodies.read(small, json.dumps(body).encode(), now_s=NOW_S)
        assert err.value.batch_size == 4
    with pytest.raises(BodyError) as err:
        bodies.read(small, json.dumps([valid(user_id="a b")]).encode(), now_s=NOW_S)
    assert err.value.batch_size is None
