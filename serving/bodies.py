"""Every request body of the service, declared once (pydantic v2); the answers are in
``serving.answers``.

The server validates with these declarations and ``serving.openapi`` writes ``/openapi.json`` from
them, so the document says exactly what the server accepts.

The JSON an app posts to ``POST /v1/events`` (one event, a list, or ``{"events": [...]}``)::

    {"user_id": "u42", "event_type": "heartbeat", "video_id": "m318", "timestamp": 1764470000.5,
     "position_sec": 612.0, "duration_sec": 8520.0, "device": "tv", "region": "US"}

Which fields an event carries depends on its kind: the union of :data:`EVENT_SHAPES` is
discriminated on ``event_type``, one model per shape (the table "only kind X carries field Y").
``timestamp`` is Unix **seconds** (epoch ms in ``UserEvent``), from 1990-01-01 to
``MAX_FUTURE_SKEW_S`` past the server's clock; ``event_id`` (a UUID) is made when absent, so a
client that retries with the ids of the answer is deduplicated downstream. Ids follow the one id
rule of :mod:`streamrec.events.ids`. A watch position is never past the title's duration (a rule
between two fields, which JSON Schema cannot state: the field's description says it).

:func:`events_from_json` answers the ``UserEvent`` list or raises :class:`BodyError` listing every
problem as ``{index, field, reason}``, so a client sees all its mistakes at once.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from streamrec.events.ids import (
    ID_MAX_LEN,
    ID_REGEX,
    ID_RULE,
    REGION_MAX_LEN,
    REGION_REGEX,
    REGION_RULE,
)
from streamrec.events.model import EventType, UserEvent

#: How far ahead of the server's clock an event time may be (client clocks drift a little).
MAX_FUTURE_SKEW_S = 300.0
#: The earliest event time taken (1990-01-01, Unix seconds): old enough for replays of public
#: rating logs (MovieLens starts in 1995), late enough to refuse zeros and seconds-since-boot.
MIN_TIMESTAMP_S = 631_152_000
MIN_TIMESTAMP_TEXT = "1990-01-01"
#: Positions and durations of a watch: at most a week (604,800 s); no title is longer.
MAX_WATCH_SEC = 7 * 24 * 3600
MAX_DEVICE_LEN = 64
MAX_QUERY_LEN = 512
MAX_GENRE_LEN = 64
MAX_GENRES = 50
#: Text that is not blank: at least one character other than ASCII white space.
NOT_BLANK = r"[^ \t\n\r\f\v]"

Id = Annotated[str, Field(pattern=f"^{ID_REGEX}$", min_length=1, max_length=ID_MAX_LEN)]
Region = Annotated[str, Field(pattern=f"^{REGION_REGEX}$", min_length=1, max_length=REGION_MAX_LEN)]
Device = Annotated[str, Field(pattern=f"^{ID_REGEX}$", min_length=1, max_length=MAX_DEVICE_LEN)]
Genre = Annotated[str, Field(min_length=1, max_length=MAX_GENRE_LEN, pattern=NOT_BLANK)]
Genres = Annotated[list[Genre], Field(min_length=1, max_length=MAX_GENRES)]
WatchSeconds = Annotated[float, Field(ge=0, le=MAX_WATCH_SEC)]
_PATTERN_RULES = {f"^{ID_REGEX}$": ID_RULE, f"^{REGION_REGEX}$": REGION_RULE, NOT_BLANK: "must not be blank"}


def _clock(info: ValidationInfo) -> float:
    """The server's clock in Unix seconds (the ``now_s`` of the validation context, else now)."""
    context = info.context
    return float(context["now_s"]) if context and "now_s" in context else time.time()


class _Body(BaseModel):
    # Strict: a number is never a string or a boolean, a string never a number.
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


class _Event(_Body):
    """The fields every kind of event carries."""

    KINDS: ClassVar[tuple[EventType, ...]]
    event_id: uuid.UUID | None = Field(None, strict=False, description="A UUID; made by the server when absent")
    user_id: Id
    timestamp: float = Field(ge=MIN_TIMESTAMP_S, description=(
        f"Unix seconds, from {MIN_TIMESTAMP_TEXT} to {MAX_FUTURE_SKEW_S:.0f} s past the server's clock"))
    device: Device | None = None
    region: Region | None = None

    @field_validator("timestamp")
    @classmethod
    def _not_in_the_future(cls, seconds: float, info: ValidationInfo) -> float:
        if seconds > _clock(info) + MAX_FUTURE_SKEW_S:
            hint = " (Unix seconds expected; this looks like milliseconds)" if seconds > 1e11 else ""
            raise PydanticCustomError("future", "more than {skew}s in the future{hint}",
                                      {"skew": f"{MAX_FUTURE_SKEW_S:.0f}", "hint": hint})
        return seconds


class _TitleEvent(_Event):
    video_id: Id


class _WatchEvent(_TitleEvent):
    duration_sec: Annotated[float, Field(gt=0, le=MAX_WATCH_SEC)] | None = None
    position_sec: WatchSeconds | None = Field(None, description="Seconds into the title; at most duration_sec")

    @field_validator("position_sec")
    @classmethod
    def _not_past_the_end(cls, position: float | None, info: ValidationInfo) -> float | None:
        duration = info.data.get("duration_sec")
        if position is not None and duration is not None and position > duration:
            raise PydanticCustomError("past_the_end", "past the end: {position}s of a {duration}s title",
                                      {"position": f"{position:g}", "duration": f"{duration:g}"})
        return position


class WatchEvent(_WatchEvent):
    KINDS = (EventType.PLAY, EventType.PAUSE, EventType.COMPLETE)
    event_type: Literal["play", "pause", "complete"]


class HeartbeatEvent(_WatchEvent):
    KINDS = (EventType.HEARTBEAT,)
    event_type: Literal["heartbeat"]
    position_sec: WatchSeconds = Field(description="Seconds into the title; at most duration_sec")


class RateEvent(_TitleEvent):
    KINDS = (EventType.RATE,)
    event_type: Literal["rate"]
    rating: float = Field(ge=1, le=5, multiple_of=0.5, description="Stars, in half stars")


class TitleEvent(_TitleEvent):
    KINDS = (EventType.LIKE, EventType.DISLIKE, EventType.ADD_TO_LIST, EventType.REMOVE_FROM_LIST)
    event_type: Literal["like", "dislike", "add_to_list", "remove_from_list"]


class SearchEvent(_Event):
    KINDS = (EventType.SEARCH,)
    event_type: Literal["search"]
    query: str = Field(min_length=1, max_length=MAX_QUERY_LEN, pattern=NOT_BLANK)


class SetPreferencesEvent(_Event):
    KINDS = (EventType.SET_PREFERENCES,)
    event_type: Literal["set_preferences"]
    genres: Genres


#: The table: one model per shape of event, each naming the kinds it is for.
EVENT_SHAPES: tuple[type[_Event], ...] = (WatchEvent, HeartbeatEvent, RateEvent, TitleEvent, SearchEvent,
                                          SetPreferencesEvent)
Event = Annotated[WatchEvent | HeartbeatEvent | RateEvent | TitleEvent | SearchEvent | SetPreferencesEvent,
                  Field(discriminator="event_type")]
#: Which kinds carry each optional field (for "only ... carry it" answers).
CARRIERS: dict[str, tuple[str, ...]] = {
    name: tuple(k.value for shape in EVENT_SHAPES if name in shape.model_fields for k in shape.KINDS)
    for shape in EVENT_SHAPES for name in shape.model_fields
}


class EventBatch(_Body):
    events: list[Event] = Field(min_length=1)


def _shape(body: Any) -> str:
    if isinstance(body, list):
        return "list"
    return "batch" if isinstance(body, dict) and "events" in body else "event"


def events_body(max_events: int) -> Any:
    """The body of ``POST /v1/events``: one event, a list of them, or ``{"events": [...]}``."""
    batch = Annotated[list[Event], Field(min_length=1, max_length=max_events)]
    wrapped = create_model("EventBatch", __base__=EventBatch, events=(batch, ...))
    return Annotated[Annotated[Event, Tag("event")] | Annotated[batch, Tag("list")]
                     | Annotated[wrapped, Tag("batch")], Discriminator(_shape)]


class Preferences(_Body):
    """``PUT /v1/users/{user_id}/preferences``: published as a ``set_preferences`` event."""

    genres: Genres
    region: Region | None = None
    device: Device | None = None


# -- reading bodies ------------------------------------------------------------------------------


class BodyError(ValueError):
    """A body that breaks its declaration: every problem as ``{index?, field, reason}``.

    ``not_json``: the body is not JSON at all; ``batch_size``: the batch holds more events than
    allowed (this many), which the service answers apart (413).
    """

    def __init__(self, errors: list[dict[str, Any]], *, not_json: bool = False, batch_size: int | None = None) -> None:
        self.errors = errors
        self.not_json = not_json
        self.batch_size = batch_size
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


def read(adapter: TypeAdapter[Any], raw: bytes, *, now_s: float | None = None) -> Any:
    """The body ``raw`` as declared by ``adapter``, or :class:`BodyError`."""
    try:
        return adapter.validate_json(raw, context={"now_s": time.time() if now_s is None else now_s})
    except ValidationError as e:
        problems = e.errors(include_url=False)
        if problems and problems[0]["type"] == "json_invalid":
            deep = "recursion limit" in str(problems[0].get("ctx", {}).get("error", ""))
            raise BodyError([{"field": "body", "reason": "JSON nested too deep" if deep else "not valid JSON"}],
                            not_json=True) from None
        too_long = [p for p in problems if p["type"] == "too_long" and p["loc"] in (("list",), ("batch", "events"))]
        size = (too_long[0].get("ctx") or {}).get("actual_length") if too_long else None
        raise BodyError(_problems(problems, now_s), batch_size=size) from None


def _problems(problems: Iterable[ErrorDetails], now_s: float | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in problems:
        loc = list(p["loc"])
        entry: dict[str, Any] = {}
        if loc and loc[0] in ("list", "batch", "event"):
            shape = loc.pop(0)
            if shape == "batch" and loc[:1] == ["events"]:
                loc.pop(0)
                if not loc:
                    loc = ["events"]
            if shape in ("list", "batch") and loc and isinstance(loc[0], int):
                entry["index"] = loc.pop(0)
            elif shape == "list" and not loc:
                loc = ["events"]
            elif shape == "event":
                entry["index"] = 0
        kind: str | None = None
        if loc and isinstance(loc[0], str) and loc[0] in _TAGS and len(loc) > 1:
            kind = str(loc.pop(0))  # the union's tag, not a field
        if p["type"] in ("union_tag_invalid", "union_tag_not_found"):
            out += _untagged(p, entry, now_s)
            continue
        field = _field_name(loc) or ("event" if "index" in entry else "body")
        out.append({**entry, "field": field, "reason": _reason(p, field, kind)})
    return out


_TAGS = frozenset(k.value for k in EventType)


def _untagged(p: ErrorDetails, entry: dict[str, Any], now_s: float | None) -> list[dict[str, Any]]:
    """No or an unknown ``event_type``: said so, and the fields every event carries checked too."""
    obj = p["input"]
    if p["type"] == "union_tag_not_found":
        reason = "missing"
    else:
        reason = f"unknown event kind {obj.get('event_type')!r}; known: {', '.join(k.value for k in EventType)}"
    out = [{**entry, "field": "event_type", "reason": reason}]
    common = {k: obj[k] for k in _Event.model_fields if k in obj}
    try:
        _COMMON_EVENT.validate_python(common, context={"now_s": time.time() if now_s is None else now_s})
    except ValidationError as e:
        out += [{**entry, "field": _field_name(list(q["loc"])), "reason": _reason(q, str(q["loc"][0]), None)}
                for q in e.errors(include_url=False)]
    return out


def _field_name(loc: list[Any]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name


_EXPECTED = {"string_type": "a string", "float_type": "a number", "int_type": "an integer", "bool_type": "a boolean",
             "list_type": "a list", "dict_type": "a JSON object", "model_type": "a JSON object",
             "model_attributes_type": "a JSON object", "uuid_type": "a UUID string", "literal_error": None}
_RANGES: dict[str, Callable[[dict[str, Any], Any], str]] = {
    "greater_than_equal": lambda c, v: "must not be negative" if c["ge"] == 0 else f"must be at least {c['ge']}",
    "greater_than": lambda c, v: "must be positive" if c["gt"] == 0 else f"must be more than {c['gt']}",
    "less_than_equal": lambda c, v: f"at most {c['le']}, not {v:g}",
}


def _reason(p: ErrorDetails, field: str, kind: str | None) -> str:
    kind_of, ctx, value = p["type"], p.get("ctx") or {}, p.get("input")
    if kind_of == "missing":
        return "missing"
    if kind_of == "extra_forbidden":
        carriers = CARRIERS.get(field)
        return f"only {', '.join(carriers)} events carry it, not {kind}" if carriers and kind else "unknown field"
    if kind_of in _EXPECTED:
        return f"must be {_EXPECTED[kind_of] or 'one of the listed values'}, not {_json_type(value)}"
    if kind_of == "finite_number":
        return "must be a finite number"
    if kind_of in ("uuid_parsing", "uuid_version"):
        return f"not a UUID: {str(value)[:60]!r}"
    if kind_of == "string_pattern_mismatch":
        return _PATTERN_RULES.get(str(ctx.get("pattern")), p["msg"])
    if kind_of == "string_too_short":
        return "must not be empty"
    if kind_of == "string_too_long":
        return f"too long: {len(value)} characters, at most {ctx['max_length']}"
    if kind_of == "too_short":
        return f"must have at least {ctx['min_length']} item(s)"
    if kind_of == "too_long":
        return f"too many: {ctx.get('actual_length')}, at most {ctx['max_length']}"
    if field == "rating" and kind_of in ("greater_than_equal", "less_than_equal"):
        return f"must be between 1 and 5 stars, not {value:g}"
    if field == "rating" and kind_of == "multiple_of":
        return f"must be in half stars, not {value:g}"
    if field == "timestamp" and kind_of == "greater_than_equal":
        return "must not be negative (Unix seconds)" if value < 0 else (
            f"before {MIN_TIMESTAMP_TEXT} (Unix seconds {MIN_TIMESTAMP_S})")
    if kind_of == "less_than_equal" and field in ("position_sec", "duration_sec"):
        return f"at most {MAX_WATCH_SEC} seconds (a week), not {value:g}"
    if kind_of in _RANGES and isinstance(value, int | float) and math.isfinite(value):
        return _RANGES[kind_of](ctx, value)
    return str(p["msg"])


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


class _CommonEvent(_Event):
    model_config = ConfigDict(extra="ignore")


_COMMON_EVENT = TypeAdapter(_CommonEvent)


# -- to the model --------------------------------------------------------------------------------


_KINDS = {k.value: k for k in EventType}


def to_user_event(event: _Event) -> UserEvent:
    """The ``UserEvent`` of a validated event (seconds become epoch milliseconds)."""
    get = event.__dict__.get
    genres = get("genres")
    return UserEvent(
        event_id=str(event.event_id) if event.event_id is not None else str(uuid.uuid4()),
        event_type=_KINDS[event.__dict__["event_type"]],
        user_id=event.user_id,
        timestamp=round(event.timestamp * 1000),
        device=event.device,
        region=event.region,
        video_id=get("video_id"),
        position_sec=get("position_sec"),
        duration_sec=get("duration_sec"),
        rating=get("rating"),
        query=get("query"),
        genres=tuple(genres) if genres else (),
    )


def events_of(body: Any) -> list[UserEvent]:
    """The events of a validated ``events_body``."""
    if isinstance(body, _Event):
        return [to_user_event(body)]
    listed = body.events if isinstance(body, EventBatch) else body
    return [to_user_event(e) for e in listed]
