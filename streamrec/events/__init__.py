"""The event contract: the model, the Avro codec and the JSON conversion for HTTP.

    from streamrec.events import default_codec, event_from_json
    event = event_from_json(request_json)          # EventValidationError lists every bad field
    value = default_codec().encode(event)          # single-object Avro for Kafka
"""

from streamrec.events.codec import EventCodec, SchemaRegistry, default_codec
from streamrec.events.errors import (
    EventDecodeError,
    EventError,
    EventValidationError,
    FieldError,
)
from streamrec.events.http_json import event_from_json, event_to_json, record_to_json
from streamrec.events.model import (
    TITLE_EVENTS,
    WATCH_EVENTS,
    CatalogItem,
    DeadLetter,
    EventType,
    Impression,
    UserEvent,
)

__all__ = [
    "TITLE_EVENTS",
    "WATCH_EVENTS",
    "CatalogItem",
    "DeadLetter",
    "EventCodec",
    "EventDecodeError",
    "EventError",
    "EventType",
    "EventValidationError",
    "FieldError",
    "Impression",
    "SchemaRegistry",
    "UserEvent",
    "default_codec",
    "event_from_json",
    "event_to_json",
    "record_to_json",
]
