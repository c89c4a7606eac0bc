"""The event model shared by every part: one record per user action, one per impression.

Times are epoch milliseconds in Python and Avro (``timestamp-millis``); the HTTP JSON shape uses
Unix seconds and is converted at the edge (``serving.bodies``).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field


class EventType(str, enum.Enum):
    PLAY = "play"
    PAUSE = "pause"
    HEARTBEAT = "heartbeat"
    COMPLETE = "complete"
    RATE = "rate"
    LIKE = "like"
    DISLIKE = "dislike"
    ADD_TO_LIST = "add_to_list"
    REMOVE_FROM_LIST = "remove_from_list"
    SEARCH = "search"
    SET_PREFERENCES = "set_preferences"


#: Kinds that name a title and therefore carry ``video_id``.
TITLE_EVENTS = frozenset(
    {
        EventType.PLAY,
        EventType.PAUSE,
        EventType.HEARTBEAT,
        EventType.COMPLETE,
        EventType.RATE,
        EventType.LIKE,
        EventType.DISLIKE,
        EventType.ADD_TO_LIST,
        EventType.REMOVE_FROM_LIST,
    }
)
#: Kinds that report a playback position (``position_sec``, ``duration_sec``).
WATCH_EVENTS = frozenset({EventType.PLAY, EventType.PAUSE, EventType.HEARTBEAT, EventType.COMPLETE})


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One user action, as published on ``streamrec.events.v1`` (key: ``user_id``)."""

    event_id: str
    event_type: EventType
    user_id: str
    timestamp: int  # epoch ms, event time
    device: str | None = None
    region: str | None = None
    video_id: str | None = None
    position_sec: float | None = None
    duration_sec: float | None = None
    rating: float | None = None  # 1..5 stars, half stars allowed
    query: str | None = None
    genres: tuple[str, ...] = ()

    def replace(self, **changes: object) -> UserEvent:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Impression:
    """What a feed showed, as published on ``streamrec.impressions.v1`` (key: ``user_id``)."""

    event_id: str
    user_id: str
    timestamp: int  # epoch ms
    request_id: str
    row_type: str
    video_ids: tuple[str, ...]
    device: str | None = None
    region: str | None = None
    experiment: str | None = None  # the experiment that ranked the feed (streamrec.experiments)
    variant: str | None = None  # the viewer's variant in it


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """A title, as published on the compacted ``streamrec.catalog.v1`` (key: ``video_id``)."""

    video_id: str
    title: str
    description: str = ""
    genres: tuple[str, ...] = ()
    content_type: str = "movie"  # movie | series | episode
    release_year: int | None = None
    language: str | None = None
    maturity_rating: str | None = None  # G, PG, PG-13, R, NC-17 (kids profiles stop at PG)
    regions: tuple[str, ...] = ()  # empty: available everywhere
    duration_sec: float | None = None
    added_at: int | None = None  # epoch ms
    thumbnail: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record a consumer could not use, as published on ``streamrec.events.dlq.v1``."""

    original: bytes  # the value exactly as read
    topic: str
    partition: int
    offset: int
    reason: str
    failed_at: int  # epoch ms
    field: str | None = None  # the field at fault, when known
    original_key: bytes | None = None
    stage: str | None = None  # which consumer rejected it
