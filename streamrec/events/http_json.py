"""The HTTP JSON shape of a user event, to and from ``UserEvent``, with field-level validation.

The JSON an app posts to ``POST /v1/events``::

    {"user_id": "u42", "event_type": "heartbeat", "video_id": "m318", "timestamp": 1764470000.5,
     "position_sec": 612.0, "duration_sec": 8520.0, "device": "tv", "region": "US"}

``timestamp`` is Unix **seconds** (a float is fine) and becomes epoch milliseconds in the model.
``event_id`` (a UUID) is optional: one is made when absent, so a client that retries with its own
id gets deduplicated downstream.

Ids (``user_id``, ``video_id``, ``device``) and ``region`` follow the one id rule of
:mod:`streamrec.events.ids` (the read routes check the same); ``timestamp`` is from 1990-01-01 to
``MAX_FUTURE_SKEW_S`` past the server's clock; ``position_sec``/``duration_sec`` are at most a week;
numbers must be finite (an integer literal past the float range is refused, never an overflow).

``event_from_json`` checks everything and raises one ``EventValidationError`` that lists every
problem as ``{"field", "reason"}`` (``.to_list()``), so a client sees all its mistakes at once.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import time
import uuid
from typing import Any

from streamrec.events.errors import EventValidationError, FieldError
from streamrec.events.ids import (
    ID_MAX_LEN,
    ID_RULE,
    REGION_MAX_LEN,
    REGION_RULE,
    is_id,
    is_region,
)
from streamrec.events.model import TITLE_EVENTS, WATCH_EVENTS, EventType, UserEvent

#: How far ahead of the server's clock an event time may be (client clocks drift a little).
MAX_FUTURE_SKEW_S = 300.0
#: The earliest event time taken (1990-01-01, Unix seconds): old enough for replays of public
#: rating logs (MovieLens starts in 1995), late enough to refuse zeros and seconds-since-boot.
MIN_TIMESTAMP_S = 631_152_000
MIN_TIMESTAMP_TEXT = "1990-01-01"
#: Positions and durations of a watch: at most a week (604,800 s); no title is longer.
MAX_WATCH_SEC = 7 * 24 * 3600
MAX_ID_LEN = ID_MAX_LEN
MAX_DEVICE_LEN = 64
MAX_REGION_LEN = REGION_MAX_LEN
MAX_QUERY_LEN = 512
MAX_GENRE_LEN = 64
MAX_GENRES = 50

_EVENT_TYPES = {t.value: t for t in EventType}
_KNOWN_FIELDS = frozenset(
    {
        "event_id",
        "event_type",
        "user_id",
        "timestamp",
        "device",
        "region",
        "video_id",
        "position_sec",
        "duration_sec",
        "rating",
        "query",
        "genres",
    }
)


class _Checker:
    """Collects field errors while reading one JSON object."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.errors: list[FieldError] = []

    def fail(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def string(self, field: str, *, required: bool, max_len: int) -> str | None:
        value = self.obj.get(field)
        if value is None:
            if required:
                self.fail(field, "missing")
            return None
        if not isinstance(value, str):
            self.fail(field, f"must be a string, not {_json_type(value)}")
            return None
        if not value.strip():
            self.fail(field, "must not be empty")
            return None
        if len(value) > max_len:
            self.fail(field, f"too long: {len(value)} characters, at most {max_len}")
            return None
        return value

    def number(self, field: str, *, required: bool) -> float | None:
        value = self.obj.get(field)
        if value is None:
            if required:
                self.fail(field, "missing")
            return None
        # bool is an int in Python; true/false in JSON is never a number here.
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(field, f"must be a number, not {_json_type(value)}")
            return None
        try:
            number = float(value)  # an integer literal past the float range overflows here
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            self.fail(field, "must be a finite number")
            return None
        return number

    def ident(self, field: str, *, required: bool, max_len: int, region: bool = False) -> str | None:
        """A string that must follow the id rule (``streamrec.events.ids``)."""
        value = self.string(field, required=required, max_len=max_len)
        if value is not None and not (is_region(value) if region else is_id(value)):
            self.fail(field, REGION_RULE if region else ID_RULE)
            return None
        return value


def event_from_json(obj: Any, *, now_ms: int | None = None) -> UserEvent:
    """The ``UserEvent`` in a decoded JSON object; ``EventValidationError`` listing every problem.

    ``now_ms`` is the server's clock (epoch ms) for the "too far in the future" rule.
    """
    if not isinstance(obj, dict):
        raise EventValidationError("event", f"must be a JSON object, not {_json_type(obj)}")
    check = _Checker(obj)
    for name in sorted(set(obj) - _KNOWN_FIELDS):
        check.fail(name, "unknown field")

    user_id = check.ident("user_id", required=True, max_len=MAX_ID_LEN)
    event_type: EventType | None = None
    raw_type = check.string("event_type", required=True, max_len=MAX_ID_LEN)
    if raw_type is not None:
        event_type = _EVENT_TYPES.get(raw_type)
        if event_type is None:
            check.fail("event_type", f"unknown event kind {raw_type!r}; known: {', '.join(_EVENT_TYPES)}")

    timestamp_ms: int | None = None
    seconds = check.number("timestamp", required=True)
    if seconds is not None:
        now = time.time() * 1000 if now_ms is None else now_ms
        if seconds < 0:
            check.fail("timestamp", "must not be negative (Unix seconds)")
        elif seconds < MIN_TIMESTAMP_S:
            check.fail("timestamp", f"before {MIN_TIMESTAMP_TEXT} (Unix seconds {MIN_TIMESTAMP_S})")
        elif seconds * 1000 > now + MAX_FUTURE_SKEW_S * 1000:
            hint = " (Unix seconds expected; this looks like milliseconds)" if seconds > 1e11 else ""
            check.fail("timestamp", f"more than {MAX_FUTURE_SKEW_S:.0f}s in the future{hint}")
        else:
            timestamp_ms = round(seconds * 1000)

    event_id = _event_id(check)
    device = check.ident("device", required=False, max_len=MAX_DEVICE_LEN)
    region = check.ident("region", required=False, max_len=MAX_REGION_LEN, region=True)
    video_id = check.ident("video_id", required=event_type in TITLE_EVENTS, max_len=MAX_ID_LEN)

    watch = event_type in WATCH_EVENTS
    position = check.number("position_sec", required=event_type is EventType.HEARTBEAT)
    duration = check.number("duration_sec", required=False)
    if event_type is not None and not watch:
        for name, value in (("position_sec", position), ("duration_sec", duration)):
            if value is not None:
                check.fail(name, f"only watch events (play, pause, heartbeat, complete) carry it, not {event_type.value}")
    if position is not None and position < 0:
        check.fail("position_sec", "must not be negative")
    if duration is not None and duration <= 0:
        check.fail("duration_sec", "must be positive")
    for name, value in (("position_sec", position), ("duration_sec", duration)):
        if value is not None and value > MAX_WATCH_SEC:
            check.fail(name, f"at most {MAX_WATCH_SEC} seconds (a week), not {value:g}")
    if (position is not None and duration is not None and 0 <= position <= MAX_WATCH_SEC
            and 0 < duration <= MAX_WATCH_SEC and position > duration):
        check.fail("position_sec", f"past the end: {position:g}s of a {duration:g}s title")

    rating = check.number("rating", required=event_type is EventType.RATE)
    if rating is not None:
        if event_type is not None and event_type is not EventType.RATE:
            check.fail("rating", f"only rate events carry it, not {event_type.value}")
        elif not 1 <= rating <= 5:
            check.fail("rating", f"must be between 1 and 5 stars, not {rating:g}")
        elif rating * 2 != int(rating * 2):
            check.fail("rating", f"must be in half stars, not {rating:g}")

    query = check.string("query", required=event_type is EventType.SEARCH, max_len=MAX_QUERY_LEN)
    if query is not None and event_type is not None and event_type is not EventType.SEARCH:
        check.fail("query", f"only search events carry it, not {event_type.value}")

    genres = _genres(check, required=event_type is EventType.SET_PREFERENCES)
    if genres and event_type is not None and event_type is not EventType.SET_PREFERENCES:
        check.fail("genres", f"only set_preferences events carry it, not {event_type.value}")

    if check.errors:
        raise EventValidationError(check.errors)
    assert user_id is not None and event_type is not None and timestamp_ms is not None
    return UserEvent(
        event_id=event_id or str(uuid.uuid4()),
        event_type=event_type,
        user_id=user_id,
        timestamp=timestamp_ms,
        device=device,
        region=region,
        video_id=video_id,
        position_sec=position,
        duration_sec=duration,
        rating=rating,
        query=query,
        genres=genres,
    )


def _event_id(check: _Checker) -> str | None:
    value = check.obj.get("event_id")
    if value is None:
        return None
    if not isinstance(value, str):
        check.fail("event_id", f"must be a UUID string, not {_json_type(value)}")
        return None
    try:
        return str(uuid.UUID(value))  # canonical lower-case form, so duplicates compare equal
    except ValueError:
        check.fail("event_id", f"not a UUID: {value[:60]!r}")
        return None


def _genres(check: _Checker, *, required: bool) -> tuple[str, ...]:
    value = check.obj.get("genres")
    if value is None:
        if required:
            check.fail("genres", "missing")
        return ()
    if not isinstance(value, list):
        check.fail("genres", f"must be a list of strings, not {_json_type(value)}")
        return ()
    if required and not value:
        check.fail("genres", "must name at least one genre")
    if len(value) > MAX_GENRES:
        check.fail("genres", f"too many: {len(value)}, at most {MAX_GENRES}")
        return ()
    for i, genre in enumerate(value):
        if not isinstance(genre, str) or not genre.strip():
            check.fail(f"genres[{i}]", "must be a non-empty string")
            return ()
        if len(genre) > MAX_GENRE_LEN:
            check.fail(f"genres[{i}]", f"too long: {len(genre)} characters, at most {MAX_GENRE_LEN}")
            return ()
    return tuple(value)


def event_to_json(event: UserEvent) -> dict[str, Any]:
    """The HTTP JSON shape of ``event`` (``timestamp`` in Unix seconds; absent fields left out)."""
    out: dict[str, Any] = {
        "event_id": event.event_id,
        "event_type": event.event_type.value,
        "user_id": event.user_id,
        "timestamp": event.timestamp / 1000,
    }
    for name in ("device", "region", "video_id", "position_sec", "duration_sec", "rating", "query"):
        value = getattr(event, name)
        if value is not None:
            out[name] = value
    if event.genres:
        out["genres"] = list(event.genres)
    return out


def record_to_json(record: Any) -> Any:
    """Any model record (or value in one) as JSON-ready data, for dead letters, logs and debugging.

    Field names and epoch-ms times are kept as in the model; bytes become base64 strings.
    """
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: record_to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, bytes):
        return base64.b64encode(record).decode("ascii")
    if isinstance(record, list | tuple):
        return [record_to_json(v) for v in record]
    if isinstance(record, dict):
        return {str(k): record_to_json(v) for k, v in record.items()}
    return record


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
