"""The event contract: the model and the Avro codec (the HTTP JSON shape is the service's:
``serving.bodies``).

    from streamrec.events import default_codec
    value = default_codec().encode(event)          # single-object Avro for Kafka
    event = default_codec().decode_event(value)    # EventDecodeError names the field
"""

from streamrec.events.codec import EventCodec, SchemaRegistry, default_codec
from streamrec.events.errors import (
    EventDecodeError,
    EventError,
    EventValidationError,
    FieldError,
)
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
]
