"""The Kafka reader's restriction tracker: one reader per partition, checkpoints only."""

from __future__ import annotations

import sys

from apache_beam.io.restriction_trackers import OffsetRange

from pipelines.kafka_source import _PartitionTracker


def test_a_dynamic_split_of_a_partition_is_refused() -> None:
    # Regression: Prism split [n, 2**63) at half of what remained, and the residual reader tried to
    # claim offset 5572 in [4611686018427390915, ...).
    tracker = _PartitionTracker(OffsetRange(5000, sys.maxsize))
    assert tracker.try_claim(5571)
    assert tracker.try_split(0.5) is None
    assert tracker.try_claim(5572)


def test_a_checkpoint_hands_back_the_rest_from_the_next_offset() -> None:
    tracker = _PartitionTracker(OffsetRange(10, sys.maxsize))
    assert tracker.try_claim(10) and tracker.try_claim(11)
    primary, residual = tracker.try_split(0)
    assert (primary.start, primary.stop) == (10, 12)
    assert (residual.start, residual.stop) == (12, sys.maxsize)
    assert not _PartitionTracker(OffsetRange(12, sys.maxsize)).is_bounded()
    assert _PartitionTracker(OffsetRange(0, 100)).is_bounded()


def test_splits_of_an_open_ended_range_neither_lose_nor_re_read_offsets() -> None:
    # Whatever a runner asks for (dynamic fractions before and after claims, then a checkpoint), the
    # offsets read by the primary and the residual are exactly [start, end) once, in order.
    tracker = _PartitionTracker(OffsetRange(100, sys.maxsize))
    asked = [tracker.try_split(f) for f in (0.5, 0.01, 0.99)]  # before any claim
    read = []
    for offset in range(100, 140):
        assert tracker.try_claim(offset)
        read.append(offset)
        asked.append(tracker.try_split(0.5))
    assert asked == [None] * len(asked)
    primary, residual = tracker.try_split(0)
    tracker.check_done()  # the primary ends right after the last claimed offset: nothing left unread
    assert not tracker.try_claim(140)
    rest = _PartitionTracker(residual)
    assert rest.try_claim(140) and rest.try_claim(141)
    assert (primary.start, primary.stop, residual.start, residual.stop) == (100, 140, 140, sys.maxsize)
    assert read == list(range(primary.start, primary.stop))
