"""The Flink job's keyed functions for the experiments: impressions and plays by viewer shard,
attribution, per-experiment counts (the rules: :mod:`pipelines.flink.experiments`).

- ``ImpressionsFn`` (by impressions partition), ``watches_by_shard`` (plays and completes by viewer shard),
  ``AttributionFn`` (by viewer shard), ``ExperimentCountsFn`` (by experiment, held writes).

Wired together by :mod:`pipelines.flink.job`. Runs in ``var/flink/venv`` (``make flink``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from typing import Any

from pyflink.common import Types  # type: ignore[import-not-found]
from pyflink.datastream.functions import (  # type: ignore[import-not-found]
    KeyedProcessFunction,
    RuntimeContext,
)
from pyflink.datastream.state import (  # type: ignore[import-not-found]
    MapStateDescriptor,
    ValueStateDescriptor,
)

from pipelines.flink.core import DeadLetterProducer, Pending
from pipelines.flink.experiments import (
    CountsWriter,
    ExperimentTotals,
    attribute,
    by_experiment,
    by_shard,
    expired,
    hold_increments,
    impressions_of,
    merged_counts,
    watches_of,
)
from pipelines.flink.functions import PICKLED, HeldWritesFn, batch_records

RELEASE_EVERY_MS = 500  # how often held experiment counts look for a covering checkpoint


class ImpressionsFn(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by the impressions' partition: decode a batch (dead letters to the DLQ), send each
    viewer shard its impressions."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.dlq = DeadLetterProducer(self.args.bootstrap, self.args.dlq_topic)

    def process_element(self, row: Any, ctx: Any) -> Iterator[Any]:
        impressions, dead = impressions_of(batch_records(row), self.args.impressions_topic, int(row[0]))
        self.dlq.send(dead)
        for shard, shown in by_shard(((i.user_id, i) for i in impressions), self.args.viewer_shards).items():
            yield shard, shown, []


def watches_by_shard(shards: int) -> Any:
    def split(row: Any) -> Iterator[Any]:
        for shard, watched in by_shard(watches_of(batch_records(row)), shards).items():
            yield shard, [], watched
    return split


class AttributionFn(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by viewer shard: each viewer's recent impressions in MapState; plays and completes
    credited to them (``streamrec.experiments.attribution``); count increments sent on by
    experiment. Every ``--sweep_s`` the viewers with nothing left to credit leave the state."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.viewers = runtime_context.get_map_state(MapStateDescriptor("viewers", Types.STRING(), PICKLED))
        self.sweep_state = runtime_context.get_state(ValueStateDescriptor("sweep", PICKLED))  # (newest impression, newest watch, next sweep)

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        _shard, impressions, watches = value
        users = {u for u, _ in impressions} | {u for u, _ in watches}
        current = {u: state for u in users if (state := self.viewers.get(u)) is not None}
        changed, counts = attribute(current, impressions, watches)
        for user_id, state in changed.items():
            self.viewers.put(user_id, state)
        shown_until, watched_until, next_at = self.sweep_state.value() or (0, 0, 0)
        shown_until = max([shown_until] + [i.timestamp for _, i in impressions])
        watched_until = max([watched_until] + [w.ts for _, w in watches])
        now = ctx.timer_service().current_processing_time()
        if now >= next_at:
            gone, kept = expired(list(self.viewers.items()), shown_until, watched_until)
            for user_id in gone:
                self.viewers.remove(user_id)
            for user_id, state in kept.items():
                self.viewers.put(user_id, state)
            next_at = now + int(self.args.sweep_s * 1000)
        self.sweep_state.update((shown_until, watched_until, next_at))
        yield from by_experiment(counts).items()


class ExperimentCountsFn(HeldWritesFn):
    """Keyed by experiment: the increments held until a checkpoint covers them, then added to the
    released totals (ValueState; each count list started from the store the first time it is
    touched) and the lists they changed replaced by value (a replay after a restore writes the
    same numbers). Held as increments, not lists: a slow checkpoint holds many of them."""

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.totals = runtime_context.get_state(ValueStateDescriptor("totals", PICKLED))
        self.writer = CountsWriter(self.args.store)

    def close(self) -> None:
        super().close()
        self.writer.close()

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        # Held without a release attempt per input: each attempt asks the JobManager (~100 ms on a
        # loaded machine), which made this the job's slowest operator; a timer tries twice a second.
        _experiment, increments = value
        pending = self._pending()
        hold_increments(pending, increments)
        self._store_pending(pending)
        self._release_later(ctx)
        return iter(())

    def _release_later(self, ctx: Any) -> None:
        now = ctx.timer_service().current_processing_time()
        ctx.timer_service().register_processing_time_timer(now - now % RELEASE_EVERY_MS + RELEASE_EVERY_MS)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        if self._nothing_due():
            if self.oldest_state.value() != -1:  # increments held: look again at the next tick
                self._release_later(ctx)
            return iter(())
        pending = self._pending()
        if pending.groups:
            self.release(pending)
            self._store_pending(pending)
            if pending.groups:
                self._release_later(ctx)
        return iter(())

    def release(self, pending: Pending) -> None:
        ready = pending.pop_ready(self.watch)
        if ready:
            released = self.totals.value() or ExperimentTotals()
            self.writer.write([self.writer.add(released, merged_counts(ready), int(time.time() * 1000))])
            self.totals.update(released)
