"""DecodeEvents and DecodeCatalog: Kafka records -> model records, bad ones to a dead-letter output.

Decoding runs under ``ParDo.with_exception_handling`` restricted to the contract's own error
(:class:`streamrec.events.errors.EventError`, a ``ValueError`` naming the field): a bug elsewhere
still fails the pipeline loudly, a bad record becomes a :class:`DeadLetter` with the reason and
the ``dead_letters`` counter goes up. Good events are re-stamped with their own event time, so
windows downstream see event time even when the Kafka timestamp says something else. With
``with_positions=True`` (the streaming job) a good record comes out as
:class:`~pipelines.offsets.Sourced` (the value and its topic, partition, offset), so the sink that
stores its effect can acknowledge the offset (:mod:`pipelines.offsets`).
"""

from __future__ import annotations

import time
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import TimestampedValue

from pipelines.kafka_source import KafkaRecord
from pipelines.offsets import Sourced
from streamrec.events.codec import EventCodec, default_codec
from streamrec.events.errors import EventDecodeError, EventError
from streamrec.events.model import CatalogItem, DeadLetter, UserEvent

DEAD_LETTERS = "dead_letters"


class _DecodeRecord(beam.DoFn):
    def __init__(self, expected: type, with_positions: bool = False) -> None:
        self.expected, self.with_positions = expected, with_positions
        self.codec: EventCodec | None = None

    def setup(self) -> None:
        self.codec = default_codec()

    def process(self, record: KafkaRecord) -> Any:
        assert self.codec is not None
        decoded = self.codec.decode(record.value)
        if not isinstance(decoded, self.expected):
            raise EventDecodeError("header", f"expected a {self.expected.__name__}, found a {type(decoded).__name__}")
        value = Sourced(decoded, record.topic, record.partition, record.offset) if self.with_positions else decoded
        if isinstance(decoded, UserEvent):
            yield TimestampedValue(value, decoded.timestamp / 1000.0)
        else:
            yield value


def _dead_letter(failure: tuple[KafkaRecord, tuple[Any, ...]], stage: str) -> DeadLetter:
    record, (exc_type, exc_repr, *_rest) = failure
    # with_exception_handling hands us the exception's type and repr; the contract's errors
    # print "field: reason", and the first field is the one at fault.
    message = exc_repr
    field = None
    text = str(exc_repr)
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1:-1].strip("'\"")
    if ": " in text:
        field, _, message = text.partition(": ")
    return DeadLetter(original=record.value, original_key=record.key, topic=record.topic,
                      partition=record.partition, offset=record.offset,
                      reason=f"{getattr(exc_type, '__name__', exc_type)}: {message}", field=field,
                      failed_at=int(time.time() * 1000), stage=stage)


class _Decode(beam.PTransform):  # type: ignore[misc]
    """KafkaRecord -> (records, dead_letters); see the module docstring."""

    def __init__(self, expected: type, stage: str, with_positions: bool = False) -> None:
        super().__init__()
        self.expected, self.stage, self.with_positions = expected, stage, with_positions

    def expand(self, records: beam.PCollection) -> tuple[beam.PCollection, beam.PCollection]:
        counter = Metrics.counter(self.stage, DEAD_LETTERS)

        def to_dead_letter(failure: tuple[KafkaRecord, tuple[Any, ...]]) -> DeadLetter:
            counter.inc()
            return _dead_letter(failure, self.stage)

        good, bad = (
            records
            | "Decode" >> beam.ParDo(_DecodeRecord(self.expected, self.with_positions)).with_exception_handling(
                exc_class=EventError, use_subprocess=False, partial=False)
        )
        dead = bad | "ToDeadLetter" >> beam.Map(to_dead_letter)
        return good, dead


class DecodeEvents(_Decode):
    """KafkaRecord -> (UserEvent stamped with its event time, DeadLetter)."""

    def __init__(self, with_positions: bool = False) -> None:
        super().__init__(UserEvent, "decode_events", with_positions)


class DecodeCatalog(_Decode):
    """KafkaRecord -> (CatalogItem, DeadLetter)."""

    def __init__(self, with_positions: bool = False) -> None:
        super().__init__(CatalogItem, "decode_catalog", with_positions)
