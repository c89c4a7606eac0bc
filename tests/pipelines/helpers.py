"""Builders shared by the pipeline tests: events, records and a streaming DirectRunner."""

from __future__ import annotations

import itertools
from pathlib import Path

from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.kafka_source import KafkaRecord
from streamrec.events.codec import default_codec
from streamrec.events.model import EventType, UserEvent

T0 = (1_700_000_000_000 // 3_600_000) * 3_600_000  # epoch ms on a whole hour: window ends are easy to state
_ids = itertools.count()


def streaming_options() -> PipelineOptions:
    return PipelineOptions(["--runner=DirectRunner", "--streaming"])


def batch_options() -> PipelineOptions:
    return PipelineOptions(["--runner=DirectRunner"])


def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


def event(kind: EventType, user: str, video: str | None, at_ms: int, *, region: str = "US",
          event_id: str | None = None, **fields: object) -> UserEvent:
    if kind in (EventType.PLAY, EventType.HEARTBEAT, EventType.PAUSE, EventType.COMPLETE):
        fields.setdefault("duration_sec", 3600.0)
        fields.setdefault("position_sec", 60.0)
    return UserEvent(event_id=event_id or f"e{next(_ids)}", event_type=kind, user_id=user, timestamp=at_ms,
                     video_id=video, region=region, **fields)  # type: ignore[arg-type]


def record(value: bytes, offset: int = 0, *, topic: str = "streamrec.events.v1", ts_ms: int = T0) -> KafkaRecord:
    return KafkaRecord(topic, 0, offset, b"key", value, ts_ms)


def encoded(e: UserEvent, offset: int = 0) -> KafkaRecord:
    return record(default_codec().encode(e), offset, ts_ms=e.timestamp)
