# ruff: noqa: B008  -- Beam declares DoFn state, timer and restriction parameters as defaults
"""Kafka at the pipeline's edges, in Python: a splittable-DoFn source and a small producer sink.

``ReadFromKafka(bootstrap, topic, group)`` emits :class:`KafkaRecord` elements stamped with the
record's Kafka timestamp (the producer sets it to the event time). It is a splittable DoFn over
confluent-kafka, one restriction per partition:

- the restriction is an ``OffsetRange`` of the partition's offsets; the start is the consumer
  group's committed offset (else ``start`` = earliest/latest), the end is ``sys.maxsize`` when
  unbounded, or the partition's high watermark at start-up with ``stop_at_end=True`` (a bounded
  read of what is there now: the benchmark and one-shot replays);
- every record is claimed through the ``OffsetRestrictionTracker`` before it is emitted, and the
  DoFn defers the remainder (``defer_remainder``, the SDK's form of ``ProcessContinuation.resume``) after ``max_batch_ms`` (so bundles stay short and
  downstream sees records quickly) or when the partition is idle; the runner checkpoints the
  remainder ``[next offset, end)``;
- the watermark is event time with bounded out-of-orderness: ``max record time seen -
  max_out_of_order_ms``; a caught-up idle partition moves it on with the wall clock, so windows
  close while a partition is quiet.

The reader does not commit what it read: a partition's start offset is committed before it is
read (so the group always has a base), and after that only :class:`pipelines.offsets.CommitOffsets`
commits, and only offsets whose effects the sinks have stored (docs/pipelines.md, "Delivery
guarantee"). A restart resumes there; the per-user dedup by ``event_id`` absorbs the replay.

This replaces Java KafkaIO through cross-language expansion, which needs Docker or a Flink job
server this machine cannot fetch (docs/pipelines.md, "Runners tried").
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.io.watermark_estimators import ManualWatermarkEstimator
from apache_beam.transforms.core import RestrictionProvider
from apache_beam.transforms.window import GlobalWindow, TimestampedValue
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue
from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from pipelines.offsets import acks_for
from streamrec.config import kafka_client_config
from streamrec.kafka import produce_when_room

_COORDINATOR_WAIT = (KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                     KafkaError.COORDINATOR_NOT_AVAILABLE)


class KafkaRecord(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


class PartitionSpec(NamedTuple):
    """One partition to read and the offsets to read it between (end exclusive)."""

    topic: str
    partition: int
    start: int
    end: int


def _consumer(bootstrap: str, group: str, **extra: Any) -> Consumer:
    return Consumer({
        **kafka_client_config(bootstrap),  # TLS/SASL of a managed cluster from STREAMREC_KAFKA_*
        "group.id": group,
        "enable.auto.commit": False,  # offsets are committed after the store writes, by CommitOffsets
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 50,  # short fetch waits keep freshness; batches come from consume(n)
        **extra,
    })


def _committed(consumer: Consumer, partitions: list[TopicPartition], timeout_s: float = 30.0) -> list[TopicPartition]:
    # A fresh broker answers NOT_COORDINATOR while it creates __consumer_offsets: retry a while.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return list(consumer.committed(partitions, timeout=10))
        except KafkaException as exc:
            if not exc.args[0].retriable() and exc.args[0].code() not in _COORDINATOR_WAIT or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


class _ListPartitions(beam.DoFn):
    """topic -> one PartitionSpec per partition, resolving the start and end offsets once."""

    def __init__(self, bootstrap: str, group: str, start: str, stop_at_end: bool) -> None:
        if start not in ("earliest", "latest"):
            raise ValueError(f"start: must be 'earliest' or 'latest', got {start!r}")
        self.bootstrap, self.group, self.start, self.stop_at_end = bootstrap, group, start, stop_at_end

    def process(self, topic: str) -> Iterator[PartitionSpec]:
        consumer = _consumer(self.bootstrap, self.group)
        try:
            metadata = consumer.list_topics(topic=topic, timeout=30).topics.get(topic)
            if metadata is None or metadata.error is not None or not metadata.partitions:
                raise RuntimeError(f"topic {topic!r} not found on {self.bootstrap}: {metadata and metadata.error}")
            wanted = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
            committed = {tp.partition: tp.offset for tp in _committed(consumer, wanted)}
            specs, bases = [], []
            for tp in wanted:
                low, high = consumer.get_watermark_offsets(tp, timeout=30)
                start = committed.get(tp.partition, -1)
                if start < 0:
                    start = low if self.start == "earliest" else high
                start = max(start, low)  # retention may have removed what the group last saw
                if start != committed.get(tp.partition, -1):
                    bases.append(TopicPartition(topic, tp.partition, start))
                end = high if self.stop_at_end else sys.maxsize
                specs.append(PartitionSpec(topic, tp.partition, start, max(start, end)))
            if bases:  # CommitOffsets counts acknowledgements from the group's committed offset
                consumer.commit(offsets=bases, asynchronous=False)
            yield from specs
        finally:
            consumer.close()


class _PartitionTracker(OffsetRestrictionTracker):  # type: ignore[misc]
    """An offset tracker that only splits to checkpoint (fraction 0): one reader per partition.

    A runner may split a restriction dynamically at a fraction of what remains; for an unbounded
    range [n, 2**63) that gives a residual starting near 2**62 (seen on Prism: "Tried to claim
    position 5572 for the range [4611686018427390915, ...)"). A partition's offsets are read in
    order by one consumer, so such splits are refused.
    """

    def try_split(self, fraction_of_remainder: float) -> tuple[OffsetRange, OffsetRange] | None:
        if fraction_of_remainder > 0:
            return None
        return super().try_split(fraction_of_remainder)

    def is_bounded(self) -> bool:
        return bool(self.current_restriction().stop != sys.maxsize)


class _PartitionRestrictions(RestrictionProvider):  # type: ignore[misc]
    def initial_restriction(self, spec: PartitionSpec) -> OffsetRange:
        return OffsetRange(spec.start, spec.end)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return _PartitionTracker(restriction)

    def restriction_size(self, spec: PartitionSpec, restriction: OffsetRange) -> int:
        return min(restriction.size(), 1 << 30)

    def split(self, spec: PartitionSpec, restriction: OffsetRange) -> Iterator[OffsetRange]:
        yield restriction  # one reader per partition: the runner splits only at checkpoints

    def truncate(self, spec: PartitionSpec, restriction: OffsetRange) -> OffsetRange | None:
        # On drain, an unbounded partition read stops where it is instead of reading forever.
        return None if restriction.stop == sys.maxsize else restriction


class _ReadPartition(beam.DoFn):
    """The splittable DoFn: reads one partition's restriction in short batches."""

    def __init__(self, bootstrap: str, group: str, max_batch_ms: int, max_out_of_order_ms: int,
                 idle_resume_s: float, poll_timeout_s: float) -> None:
        self.bootstrap, self.group = bootstrap, group
        self.poll_timeout_s = poll_timeout_s
        self.max_batch_ms, self.max_out_of_order_ms = max_batch_ms, max_out_of_order_ms
        self.idle_resume_s = idle_resume_s
        self._consumers: dict[tuple[str, int], Consumer] = {}
        self._positions: dict[tuple[str, int], int] = {}

    def setup(self) -> None:
        self._consumers, self._positions = {}, {}

    def teardown(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()
        self._consumers = {}

    def _consumer_at(self, topic: str, partition: int, offset: int) -> Consumer:
        key = (topic, partition)
        consumer = self._consumers.get(key)
        if consumer is None:
            consumer = self._consumers[key] = _consumer(self.bootstrap, self.group)
            consumer.assign([TopicPartition(topic, partition, offset)])
        elif self._positions.get(key) != offset:  # resumed elsewhere than where we stopped: seek
            consumer.seek(TopicPartition(topic, partition, offset))
        self._positions[key] = offset
        return consumer

    @beam.DoFn.unbounded_per_element()
    def process(
        self,
        spec: PartitionSpec,
        tracker: Any = beam.DoFn.RestrictionParam(_PartitionRestrictions()),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(
            ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[Any]:
        restriction = tracker.current_restriction()
        if restriction.start >= restriction.stop:
            return
        key = (spec.topic, spec.partition)
        consumer = self._consumer_at(spec.topic, spec.partition, restriction.start)
        deadline = time.monotonic() + self.max_batch_ms / 1000.0
        newest_ms = -1
        read_any = False
        while time.monotonic() < deadline:
            messages = consumer.consume(num_messages=1000, timeout=self.poll_timeout_s)
            if not messages:
                break
            for msg in messages:
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        continue
                    raise RuntimeError(f"reading {spec.topic}[{spec.partition}]: {error}")
                offset = msg.offset()
                if offset is None:  # only error messages lack an offset
                    continue
                if not tracker.try_claim(offset):
                    return  # the restriction ends here (bounded read, or the runner split it)
                self._positions[key] = offset + 1
                ts_ms = msg.timestamp()[1]
                newest_ms = max(newest_ms, ts_ms)
                read_any = True
                yield TimestampedValue(
                    KafkaRecord(spec.topic, spec.partition, offset, msg.key(), msg.value() or b"", ts_ms),
                    ts_ms / 1000.0)
        current = watermark.current_watermark()
        if read_any:
            candidate = Timestamp(micros=(newest_ms - self.max_out_of_order_ms) * 1000)
        else:  # caught up and idle: event time moves on with the wall clock
            candidate = Timestamp.of(time.time() - self.max_out_of_order_ms / 1000.0)
        if current is None or candidate > current:
            watermark.set_watermark(candidate)
        if restriction.stop != sys.maxsize and self._positions.get(key, restriction.start) >= restriction.stop:
            tracker.try_claim(restriction.stop)  # a bounded read that reached its end is done
            return
        # Hand the rest back to the runner: it checkpoints [next offset, end) and calls again.
        tracker.defer_remainder(Duration(seconds=0 if read_any else self.idle_resume_s))


class _ReadPartitionToEnd(_ReadPartition):
    """The same reader over ranges that end (``stop_at_end``): a bounded output, so a batch job's
    GroupByKeys need no trigger."""

    def process(  # the undecorated override is what makes the output bounded
        self,
        spec: PartitionSpec,
        tracker: Any = beam.DoFn.RestrictionParam(_PartitionRestrictions()),
        watermark: Any = beam.DoFn.WatermarkEstimatorParam(ManualWatermarkEstimator.default_provider()),
    ) -> Iterator[Any]:
        yield from super().process(spec, tracker, watermark)


class ReadFromKafka(beam.PTransform):  # type: ignore[misc]
    """topic -> KafkaRecord elements, event-time stamped, from the group's committed offsets."""

    def __init__(self, bootstrap: str, topic: str, group: str, *, start: str = "earliest",
                 stop_at_end: bool = False, max_batch_ms: int = 200, max_out_of_order_ms: int = 2000,
                 idle_resume_s: float = 0.05, poll_timeout_s: float = 0.01) -> None:
        super().__init__()
        self.bootstrap, self.topic, self.group = bootstrap, topic, group
        self.start, self.stop_at_end = start, stop_at_end
        self.max_batch_ms, self.max_out_of_order_ms = max_batch_ms, max_out_of_order_ms
        self.idle_resume_s = idle_resume_s
        # Prism resumes a deferred restriction at once (it ignores the requested delay) and a
        # blocked read holds a worker: wait for records only briefly, then hand back.
        self.poll_timeout_s = poll_timeout_s

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Topic" >> beam.Create([self.topic])
            | "ListPartitions" >> beam.ParDo(_ListPartitions(self.bootstrap, self.group, self.start, self.stop_at_end))
            | "ReadPartitions" >> beam.ParDo((_ReadPartitionToEnd if self.stop_at_end else _ReadPartition)(
                self.bootstrap, self.group, self.max_batch_ms, self.max_out_of_order_ms, self.idle_resume_s,
                self.poll_timeout_s))
        )


class WriteToKafka(beam.DoFn):
    """(key, value[, (topic, partition, offset)]) -> the topic; flushed at the end of every bundle,
    so a committed bundle's records are acknowledged by the broker (at-least-once: a retried
    bundle may write twice). After the flush, the positions given with the records are emitted
    as :class:`~pipelines.offsets.Ack` (a dead letter's source record is done once it is in the DLQ)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.producer: Producer | None = None
        self.failures: list[str] = []

    def setup(self) -> None:
        self.producer = Producer({**kafka_client_config(self.bootstrap), "enable.idempotence": True,
                                  "acks": "all", "linger.ms": 5})

    def start_bundle(self) -> None:
        self.positions: list[tuple[str, int, int]] = []
        self.first_ts: Timestamp = MAX_TIMESTAMP

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.failures.append(err.str())

    def process(self, record: tuple[Any, ...], timestamp: Any = beam.DoFn.TimestampParam) -> None:
        assert self.producer is not None
        key, value = record[0], record[1]
        if len(record) > 2 and record[2] is not None:
            self.positions.append(record[2])
            self.first_ts = min(self.first_ts, timestamp)
        produce_when_room(self.producer, self.topic, value, key=key, on_delivery=self._delivered, timeout_s=300.0)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        assert self.producer is not None
        left = self.producer.flush(30)
        if left or self.failures:
            failures, self.failures = self.failures, []
            raise RuntimeError(f"{self.topic}: {left} records unacknowledged, failures: {failures[:3]}")
        for ack in acks_for(self.positions):
            yield WindowedValue(ack, self.first_ts, (GlobalWindow(),))
        self.positions = []

    def teardown(self) -> None:
        if self.producer is not None:
            self.producer.flush(10)
            self.producer = None
