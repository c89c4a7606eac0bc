"""The event contract: the model, the Avro codec and the JSON conversion for HTTP."""

from streamrec.events.model import (
    TITLE_EVENTS,
    WATCH_EVENTS,
    CatalogItem,
    EventType,
    Impression,
    UserEvent,
)

__all__ = ["TITLE_EVENTS", "WATCH_EVENTS", "CatalogItem", "EventType", "Impression", "UserEvent"]
