"""One realistic record of every kind, for round-trip tests (codec and Kafka)."""

from __future__ import annotations

import uuid

from streamrec.events.model import (
    CatalogItem,
    DeadLetter,
    EventType,
    Impression,
    UserEvent,
)

T0 = 1_764_470_000_123  # 2025-11-30, epoch ms


def sample_event(kind: EventType, user_id: str = "u-7", n: int = 0) -> UserEvent:
    """A valid event of ``kind`` with every field its kind carries, and nothing else."""
    base = UserEvent(
        event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"streamrec-test/{kind.value}/{user_id}/{n}")),
        event_type=kind,
        user_id=user_id,
        timestamp=T0 + n * 1000,
        device="tv",
        region="DE",
    )
    if kind is EventType.SEARCH:
        return base.replace(query="space opera with ünïcode")
    if kind is EventType.SET_PREFERENCES:
        return base.replace(genres=("Sci-Fi", "Documentary"))
    base = base.replace(video_id=f"ml-{318 + n}")
    if kind in (EventType.PLAY, EventType.PAUSE, EventType.HEARTBEAT, EventType.COMPLETE):
        return base.replace(position_sec=612.5 + n, duration_sec=8520.0)
    if kind is EventType.RATE:
        return base.replace(rating=4.5)
    return base


def sample_impression(user_id: str = "u-7") -> Impression:
    return Impression(
        event_id=str(uuid.uuid4()),
        user_id=user_id,
        timestamp=T0,
        request_id="req-1",
        row_type="top_picks",
        video_ids=("ml-1", "ml-2", "ml-3"),
        device="web",
        region=None,
    )


def sample_catalog_item() -> CatalogItem:
    return CatalogItem(
        video_id="ml-318",
        title="The Shawshank Redemption",
        description="Two imprisoned men bond over a number of years.",
        genres=("Crime", "Drama"),
        content_type="movie",
        release_year=1994,
        language="en",
        maturity_rating="R",
        regions=("US", "DE"),
        duration_sec=8520.0,
        added_at=T0,
        thumbnail="https://img.example/318.jpg",
        extra={"director": "Frank Darabont"},
    )


def sample_dead_letter() -> DeadLetter:
    return DeadLetter(
        original=b"\xc3\x01\x00garbage",
        topic="streamrec.events.v1",
        partition=2,
        offset=41,
        reason="unknown schema fingerprint 0000",
        failed_at=T0,
        field="header",
        original_key=b"u-7",
        stage="pipelines.read_events",
    )
