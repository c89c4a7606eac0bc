# ruff: noqa: B008  -- Beam declares DoFn state parameters as defaults
"""Committing Kafka offsets only once their effects are durably stored (issue 11, defect 6).

Every record the reader emits is *acknowledged* by the stage that finished with it, after that
stage's store write (or dead-letter produce) returned:

- a decoded event travels as :class:`Sourced` (the event and its topic, partition, offset); the
  user sink acknowledges the offsets of a pane after ``apply_user_updates`` wrote the pane's user
  state and counters (one transaction on SQLite), and a pane that changed nothing (replays only)
  is acknowledged after the writes buffered before it;
- a record that became a dead letter (undecodable, refused by the state machine) is acknowledged
  by the dead-letter writer after the broker confirmed the DLQ record;
- a catalog item is acknowledged by the catalog sink after its upsert.

:class:`CommitOffsets` gathers the acknowledgements per (topic, partition) in keyed state
(:class:`OffsetLedger`) and commits to the consumer group the end of the contiguous acknowledged
prefix: the committed offset is always one whose predecessors' effects are all in the store. A
crash therefore replays at most what was not yet stored, and the per-user dedup by ``event_id``
makes the replay of what *was* stored change nothing. Offsets that hold no record (compaction,
transaction markers) would stop the prefix: when it is stuck, the committer asks the broker for
the first record at or after it and skips the hole.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamrec.config import kafka_client_config

log = logging.getLogger(__name__)


class Sourced(NamedTuple):
    """A decoded record (a UserEvent, a CatalogItem) and where it was read."""

    value: Any
    topic: str
    partition: int
    offset: int

    @property
    def user_id(self) -> str:  # UserEvents are keyed by user wherever they travel
        return str(self.value.user_id)


class Ack(NamedTuple):
    """These offsets of one partition have their effects durably stored."""

    topic: str
    partition: int
    offsets: tuple[int, ...]


Position = tuple[str, int, int]  # (topic, partition, offset)


def unwrap(value: Any) -> tuple[Any, tuple[Position, ...]]:
    """A Sourced value -> (the value, its position); anything else -> (itself, no position)."""
    if isinstance(value, Sourced):
        return value.value, ((value.topic, value.partition, value.offset),)
    return value, ()


def acks_for(positions: Iterable[Position]) -> list[Ack]:
    """Positions -> one Ack per (topic, partition), offsets sorted."""
    by_partition: dict[tuple[str, int], set[int]] = {}
    for topic, partition, offset in positions:
        if offset >= 0:
            by_partition.setdefault((topic, partition), set()).add(offset)
    return [Ack(topic, partition, tuple(sorted(offsets))) for (topic, partition), offsets in sorted(by_partition.items())]


class OffsetLedger:
    """One partition's acknowledged offsets. ``base`` is the next offset to commit: every offset
    below it is acknowledged (or holds no record); ``pending`` holds those acknowledged above it."""

    def __init__(self, base: int, pending: Iterable[int] = ()) -> None:
        self.base = base
        self.committed = base  # the base as last committed to the group
        self.pending = {o for o in pending if o >= base}

    def merge(self, other: OffsetLedger) -> int:
        """Take in another copy's knowledge (both are true: acknowledged is acknowledged)."""
        self.committed = max(self.committed, other.committed)
        self.pending |= other.pending
        self.base = max(self.base, other.base)
        self.pending = {o for o in self.pending if o >= self.base}
        return self.ack(())

    def ack(self, offsets: Iterable[int]) -> int:
        """Record acknowledgements; returns the new base (the offset to commit)."""
        self.pending.update(o for o in offsets if o >= self.base)
        while self.base in self.pending:
            self.pending.discard(self.base)
            self.base += 1
        return self.base

    @property
    def stuck(self) -> bool:
        """Acknowledgements wait above an offset that has none (in flight, or a hole)."""
        return bool(self.pending)

    def skip_hole(self, first_record_at_or_after_base: int) -> int:
        """The broker says no record lies in [base, that offset): move over the hole."""
        if first_record_at_or_after_base > self.base:
            self.base = first_record_at_or_after_base
            self.pending = {o for o in self.pending if o >= self.base}
        return self.ack(())

    def __getstate__(self) -> tuple[int, tuple[int, ...], int]:
        return self.base, tuple(sorted(self.pending)), self.committed

    def __setstate__(self, state: tuple[int, tuple[int, ...], int]) -> None:
        self.base, self.pending, self.committed = state[0], set(state[1]), state[2]


class _CommitFn(beam.DoFn):
    """Keyed by "topic|partition"; commits each partition's acknowledged prefix."""

    LEDGER = ReadModifyWriteStateSpec("ledger", PickleCoder())

    def __init__(self, bootstrap: str, group: str, probe_every_s: float = 1.0) -> None:
        self.bootstrap, self.group, self.probe_every_s = bootstrap, group, probe_every_s
        self.commits = Metrics.counter("commit_offsets", "commits")

    def setup(self) -> None:
        self.consumer = Consumer({**kafka_client_config(self.bootstrap), "group.id": self.group,
                                  "enable.auto.commit": False, "enable.partition.eof": False})
        self._probed: dict[tuple[str, int], float] = {}

    def teardown(self) -> None:
        self.consumer.close()

    def _committed(self, topic: str, partition: int) -> int:
        # The reader commits its start offset before it reads (kafka_source._ListPartitions).
        [tp] = self.consumer.committed([TopicPartition(topic, partition)], timeout=30)
        if tp.offset < 0:
            raise RuntimeError(f"{topic}[{partition}]: no committed offset for group {self.group!r}")
        return int(tp.offset)

    def _first_record_at(self, topic: str, partition: int, offset: int) -> int | None:
        self.consumer.assign([TopicPartition(topic, partition, offset)])
        try:
            messages = self.consumer.consume(num_messages=1, timeout=2.0)
        finally:
            self.consumer.unassign()
        for msg in messages:
            found = msg.offset()
            if msg.error() is None and found is not None:
                return int(found)
        return None

    def process(self, keyed: tuple[str, Iterable[int]], ledger_state: Any = beam.DoFn.StateParam(LEDGER)) -> None:
        key, offsets = keyed
        topic, _, partition_text = key.rpartition("|")
        partition = int(partition_text)
        with _LEDGERS_LOCK:
            # The process-wide ledger is the truth here: Prism 2.75 was seen running two bundles of
            # one key at once, each reading the same state cell and the last write losing the other's
            # acknowledgements. The state cell carries the ledger to another worker; merging is
            # safe both ways (a union of acknowledged offsets, the larger of two valid bases).
            ledger = _LEDGERS.get((self.group, topic, partition))
            stored: OffsetLedger | None = ledger_state.read()
            if ledger is None:
                ledger = stored or OffsetLedger(self._committed(topic, partition))
                _LEDGERS[(self.group, topic, partition)] = ledger
            elif stored is not None:
                ledger.merge(stored)
            ledger.ack(offsets)
            now = time.monotonic()
            if ledger.stuck and now - self._probed.get((topic, partition), 0.0) >= self.probe_every_s:
                self._probed[(topic, partition)] = now
                first = self._first_record_at(topic, partition, ledger.base)
                if first is not None:
                    ledger.skip_hole(first)
            if ledger.base > ledger.committed:
                try:
                    self.consumer.commit(offsets=[TopicPartition(topic, partition, ledger.base)], asynchronous=False)
                    ledger.committed = ledger.base
                    self.commits.inc()
                except KafkaException as exc:  # the next acknowledgement commits again
                    log.warning("committing %s[%d] at %d failed: %s", topic, partition, ledger.base, exc)
            ledger_state.write(ledger)


#: (group, topic, partition) -> the ledger, shared by every committer instance in this process.
_LEDGERS: dict[tuple[str, str, int], OffsetLedger] = {}
_LEDGERS_LOCK = threading.Lock()


class CommitOffsets(beam.PTransform):  # type: ignore[misc]
    """Ack elements -> the consumer group's committed offsets (see the module docstring)."""

    def __init__(self, bootstrap: str, group: str) -> None:
        super().__init__()
        self.bootstrap, self.group = bootstrap, group

    def expand(self, acks: beam.PCollection) -> beam.PCollection:
        def by_partition(ack: Ack) -> Iterator[tuple[str, tuple[int, ...]]]:
            yield f"{ack.topic}|{ack.partition}", ack.offsets

        return (acks
                | "ByPartition" >> beam.FlatMap(by_partition)
                | "Commit" >> beam.ParDo(_CommitFn(self.bootstrap, self.group)))


def split_acks(results: beam.PCollection, label: str) -> tuple[beam.PCollection, beam.PCollection]:
    """A sink's mixed output -> (its Acks, everything else: dead letters)."""
    def which(value: Any, _n: int) -> int:
        return 0 if isinstance(value, Ack) else 1

    acks, rest = results | label >> beam.Partition(which, 2)  # type: ignore[arg-type]
    return acks, rest
