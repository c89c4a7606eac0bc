"""The Flink job's keyed functions for users, titles and lists: each keeps its part of the job's
state in Flink's keyed state and calls :mod:`pipelines.flink.core`'s adapters.

- ``UserStateFn`` (by events partition), ``RankerFn`` (one key), ``ItemTotalsFn`` (by title shard),
  ``ListsFn`` (by region), ``CatalogFn`` (by catalog partition); ``HeldWritesFn``: writes held until a
  completed checkpoint covers them.

Wired together by :mod:`pipelines.flink.job`; the experiments' functions are in
:mod:`pipelines.flink.experiment_functions`. Runs in ``var/flink/venv`` (``make flink``).
"""

from __future__ import annotations

import argparse
import pickle
import time
from collections.abc import Iterator, Sequence
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

from pipelines.flink.core import (
    CheckpointWatch,
    DeadLetterProducer,
    Pending,
    RefreshPlan,
    RegionLists,
    idle_users,
    refreshed,
)
from pipelines.flink.items import CatalogWriter, ItemTotalsWriter
from pipelines.flink.lists import ListsWriter
from pipelines.flink.users import UserStateApplier
from streamrec.recommend.learned import MODEL_KEY, Example, OnlineRanker
from streamrec.store.retry import RetryingStore

FLUSH_EVERY_MS = 50  # how often held writes look at the group's committed offsets
PICKLED = Types.PICKLED_BYTE_ARRAY()
#: UserState's output carries the increments/watches batches (pickles, which start with 0x80) and,
#: from its refreshes, the ranker's examples behind this byte.
EXAMPLES_MARK = b"E"


def batch_records(row: Any) -> list[tuple[int, bytes | None, bytes | None]]:
    """A batch row's records: three arrays aggregated side by side (one ARRAY_AGG of a ROW would
    hand back the same reused row object for every element)."""
    return [(int(o), k, v) for o, k, v in zip(row[2], row[3], row[4], strict=True)]


class HeldWritesFn(KeyedProcessFunction):  # type: ignore[misc]
    """A keyed function with writes held in a ``Pending`` (keyed state) until a completed checkpoint
    covers them, released on every input and on a processing-time timer while any are held."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.pending_state = runtime_context.get_state(ValueStateDescriptor("pending", PICKLED))
        # When the oldest held write was made (-1: none held), kept beside the pickled writes so a
        # timer can tell nothing is due without unpickling them all: while checkpoints are slow
        # the held writes grow, and unpickling them every 50 ms was a quarter of the job's time
        # (py-spy on the demo's TaskManager), which slowed the checkpoints further.
        self.oldest_state = runtime_context.get_state(ValueStateDescriptor("pending_oldest", Types.LONG()))
        self.watch = CheckpointWatch(self.args.rest, self.args.name, clock_margin_ms=self.args.clock_margin_ms)

    def close(self) -> None:
        self.watch.close()

    def _pending(self) -> Pending:
        return self.pending_state.value() or Pending()

    def _store_pending(self, pending: Pending) -> None:
        """The held writes into keyed state, and when the oldest of them was made."""
        self.pending_state.update(pending)
        self.oldest_state.update(pending.groups[0][0] if pending.groups else -1)

    def _nothing_due(self) -> bool:
        """No held write, or none a completed checkpoint covers yet: read without unpickling the
        held writes (their order is arrival order, so the oldest is the first to be covered). A
        state from before this field says nothing, so the writes are looked at."""
        oldest = self.oldest_state.value()
        if oldest is None:
            return False
        if oldest < 0:
            return True
        self.watch.poll()
        return not self.watch.covers(oldest)

    def hold(self, pending: Pending, ctx: Any, added: bool = True) -> None:
        """Release what a completed checkpoint covers, keep the rest in the keyed state (written
        only when it changed: re-pickling every held snapshot on each 50 ms timer was a third of
        the job's time once checkpoints slowed, which slowed them further) and look again soon."""
        before = len(pending.groups)
        self.release(pending)
        if added or len(pending.groups) != before:
            self._store_pending(pending)
        if pending.groups:
            self._look_again(ctx)

    def release(self, pending: Pending) -> None:
        raise NotImplementedError

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        if self._nothing_due():
            if self.oldest_state.value() != -1:  # writes held: look again at the next tick
                self._look_again(ctx)
            return iter(())
        pending = self._pending()
        if pending.groups:
            self.hold(pending, ctx, added=False)
        return iter(())

    def _look_again(self, ctx: Any) -> None:
        now = ctx.timer_service().current_processing_time()
        ctx.timer_service().register_processing_time_timer(now - now % FLUSH_EVERY_MS + FLUSH_EVERY_MS)


class UserStateFn(HeldWritesFn):
    """Keyed by the events' Kafka partition (the topic is keyed by user, so a user's events are in
    one partition, in order): the partition's users in MapState, each batch applied by
    ``UserStateApplier``; user states held until covered, increments and watches sent on."""

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.users = runtime_context.get_map_state(MapStateDescriptor("users", Types.STRING(), PICKLED))
        self.refresh_state = runtime_context.get_state(ValueStateDescriptor("refresh", PICKLED))
        self.sweep_state = runtime_context.get_state(ValueStateDescriptor("sweep", PICKLED))  # (clock, next sweep)
        self.settle_ms, self.max_delay_ms = int(self.args.settle_s * 1000), int(self.args.max_delay_s * 1000)
        self.idle_ms, self.sweep_every_ms = int(self.args.idle_s * 1000), int(self.args.sweep_s * 1000)
        self.applier = UserStateApplier(self.args.store, self.args.events_topic)
        self.dlq = DeadLetterProducer(self.args.bootstrap, self.args.dlq_topic)

    def close(self) -> None:
        super().close()
        self.applier.close()

    def load(self, user_ids: Sequence[str]) -> dict[str, Any]:
        found = {}
        missing = []
        for user_id in user_ids:
            held = self.users.get(user_id)
            if held is None:
                missing.append(user_id)
            else:
                found[user_id] = held
        if missing:  # never written by this job: the store holds the starting state (see core)
            found.update(self.applier.load_from_store(missing))
        return found

    def process_element(self, row: Any, ctx: Any) -> Iterator[bytes]:
        partition = int(row[0])
        batch = self.applier.apply(partition, batch_records(row), self.load)
        self.dlq.send(batch.dead_letters)
        if batch.users:
            for user_id, held in batch.users.items():
                self.users.put(user_id, held)
            pending = self._pending()
            pending.add({user_id: state for user_id, (state, _) in batch.users.items()})
            self.hold(pending, ctx)
        if batch.taste_changed:
            plan = self.refresh_state.value() or RefreshPlan()
            plan.changed(batch.taste_changed, ctx.timer_service().current_processing_time(), self.settle_ms,
                         self.max_delay_ms)
            self.refresh_state.update(plan)
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now + self.settle_ms)
        self.sweep(batch, ctx)
        if batch.pairs or batch.counts or batch.watches:
            yield pickle.dumps((batch.pairs, batch.counts, batch.watches), protocol=pickle.HIGHEST_PROTOCOL)

    def sweep(self, batch: Any, ctx: Any) -> None:
        """Every ``sweep_s`` of processing time, idle users leave the partition's keyed state
        (``core.idle_users``): the state stays bounded by the active users, as in the Beam job."""
        clock, next_at = self.sweep_state.value() or (0, 0)
        if batch.users:
            clock = max(clock, max(state.updated_at for state, _ in batch.users.values()))
        now = ctx.timer_service().current_processing_time()
        if now >= next_at:
            held = {user_id for _, payload in self._pending().groups for user_id in payload}
            plan = self.refresh_state.value()
            users = [(user_id, held_user[0].updated_at) for user_id, held_user in self.users.items()]
            for user_id in idle_users(users, clock, self.idle_ms, held, plan.waiting if plan else ()):
                self.users.remove(user_id)
            next_at = now + self.sweep_every_ms
        self.sweep_state.update((clock, next_at))

    def release(self, pending: Pending) -> None:
        self.applier.write_users(pending.pop_ready(self.watch))

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        examples = self.refresh_due(ctx)
        if examples:  # the learned ranker's (RankerFn), beside the increments and watches
            yield EXAMPLES_MARK + pickle.dumps(examples, protocol=pickle.HIGHEST_PROTOCOL)
        yield from super().on_timer(timestamp, ctx)

    def refresh_due(self, ctx: Any) -> list[Example]:
        """Top picks of the users whose refresh is due (the feed's ranking over store reads),
        written through the same held user writes; the ranker's examples they gave."""
        plan = self.refresh_state.value()
        if plan is None or not plan.waiting:
            return []
        now = ctx.timer_service().current_processing_time()
        due = plan.due(now)
        if plan.waiting:
            ctx.timer_service().register_processing_time_timer(min(d for _, d, _ in plan.waiting.values()))
        self.refresh_state.update(plan)
        snapshot = {}
        examples: list[Example] = []
        for user_id, first_ts in due.items():
            held = self.users.get(user_id)
            if held is None:
                continue
            state, region = held
            done = self.applier.refresh(state, region, self.args.top_picks_k)
            examples += done.examples
            state = refreshed(state, done.picks, first_ts, self.settle_ms, self.max_delay_ms)
            self.users.put(user_id, (state, region))
            snapshot[user_id] = state
        if snapshot:
            pending = self._pending()
            pending.add(snapshot)
            self.hold(pending, ctx)
        return examples


class RankerFn(KeyedProcessFunction):  # type: ignore[misc]
    """One key: the learned ranker's trainer (``streamrec.recommend.learned.OnlineRanker``): the
    refreshes' examples in, each new model version written to the store (one record, whole)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("model", PICKLED))
        self.store = RetryingStore(self.args.store, "RankerFn")
        self.ranker = OnlineRanker(lambda: self.store.call("get_lists", lambda s: s.get_lists([MODEL_KEY])).get(MODEL_KEY))

    def close(self) -> None:
        self.store.close()

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        held, written = self.ranker.learn(self.state.value(), value[1], int(time.time() * 1000))
        self.state.update(held)
        if written is not None:
            self.store.call("put_lists", lambda s: s.put_lists([written]))
        return iter(())


class ItemTotalsFn(HeldWritesFn):
    """Keyed by title shard: each title's totals (count, co-watch row, raw vector) in MapState,
    increments held until covered, then written idempotently (``ItemTotalsWriter``)."""

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.totals = runtime_context.get_map_state(MapStateDescriptor("totals", Types.STRING(), PICKLED))
        self.writer = ItemTotalsWriter(self.args.store)

    def close(self) -> None:
        super().close()
        self.writer.close()

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        _shard, kind, pairs, counts = value
        ids = set(counts) | {a for a, _ in pairs}
        new = [v for v in ids if not self.totals.contains(v)]
        if new:  # first seen: start from the store, before any write of ours can reach it (see core)
            initial = self.writer.initial(new)
            for video_id, total in initial.items():
                self.totals.put(video_id, total)
            if kind == "catalog":  # a new title gets its basis vector now (the value replayed state holds too)
                self.writer.put_missing_vectors(initial)
        if kind == "increments":
            pending = self._pending()
            pending.add((pairs, counts))
            self.hold(pending, ctx)
        return iter(())

    def release(self, pending: Pending) -> None:
        ready = pending.pop_ready(self.watch)
        if not ready:
            return
        pairs: dict[tuple[str, str], int] = {}
        counts: dict[str, int] = {}
        for ready_pairs, ready_counts in ready:
            for pair, n in ready_pairs.items():
                pairs[pair] = pairs.get(pair, 0) + n
            for video_id, n in ready_counts.items():
                counts[video_id] = counts.get(video_id, 0) + n
        ids = set(counts) | {a for a, _ in pairs}
        totals = {v: self.totals.get(v) for v in ids}
        for video_id, total in self.writer.write(totals, pairs, counts).items():
            self.totals.put(video_id, total)


class ListsFn(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by region (and ``global``): watch counts per 5-minute bucket and the new-releases
    pool; every input rewrites the region's trending, genre and new-releases lists."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("lists", PICKLED))
        self.writer = ListsWriter(self.args.store, max_age_days=self.args.new_releases_days)

    def close(self) -> None:
        self.writer.close()

    def process_element(self, value: Any, ctx: Any) -> Iterator[Any]:
        region, kind, payload = value
        lists = self.state.value() or RegionLists()
        if kind == "watches":
            written = self.writer.on_watches(region, lists, payload)
        else:
            written = self.writer.on_catalog(region, lists, payload)
        self.state.update(lists)
        self.writer.write(written)
        return iter(())


class CatalogFn(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by the catalog's partition: upsert each batch, send its titles to the release lists."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.writer = CatalogWriter(self.args.store, self.args.catalog_topic)
        self.dlq = DeadLetterProducer(self.args.bootstrap, self.args.dlq_topic)

    def close(self) -> None:
        self.writer.close()

    def process_element(self, row: Any, ctx: Any) -> Iterator[Any]:
        items, dead = self.writer.apply(int(row[0]), batch_records(row))
        self.dlq.send(dead)
        if items:
            yield items
