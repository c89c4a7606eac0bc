"""The streaming job on Flink: Kafka -> per-user state -> items, trending, new releases -> store.

    events topic --SQL Kafka source, batched per partition every --batch_ms (Java side)--+
        -> UserStateFn (keyed by partition: the users of that partition in MapState)     |
             -> users (held until a checkpoint covers them) -> store                      |
             -> increments --by title shard--> ItemTotalsFn -> co-watch, counts, vectors  |
             -> watches ----by region + global--> ListsFn -> trending, genre rows, new releases
    catalog topic --SQL Kafka source, batched--> CatalogFn -> store (upsert) --by region--> ListsFn
    impressions topic --batched--> ImpressionsFn --by viewer shard--+
    events (plays, completes) ------------------by viewer shard-----+-> AttributionFn
        -> count increments --by experiment--> ExperimentCountsFn -> count lists (pipelines.flink.experiments)
    dead letters (undecodable, refused) -> DLQ topic

Every rule is :mod:`streamrec.recommend`'s, called through :mod:`pipelines.flink.core`; the
exactly-once argument is in that module's docstring and docs/pipelines.md ("The Flink job").

What crosses into Python is batched in Java: the Kafka records of one partition per ``--batch_ms``
window (``ARRAY_AGG`` over a processing-time tumbling window), so one call applies many events.

Run (in var/flink/venv, ``make flink``)::

    flink run -py pipelines/flink/job.py --bootstrap 127.0.0.1:9092 --store sqlite:////abs/path.db
    # or from Python: streamrec_cli.localflink.LocalFlink(...).submit("pipelines/flink/job.py", ...)
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Types  # type: ignore[import-not-found]
from pyflink.datastream import (  # type: ignore[import-not-found]
    CheckpointingMode,
    StreamExecutionEnvironment,
)
from pyflink.datastream.functions import (  # type: ignore[import-not-found]
    KeyedProcessFunction,
    RuntimeContext,
)
from pyflink.datastream.state import (  # type: ignore[import-not-found]
    MapStateDescriptor,
    ValueStateDescriptor,
)
from pyflink.table import StreamTableEnvironment  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `flink run -py` runs this file as a script
    sys.path.insert(0, str(ROOT))

from pipelines.flink.core import (
    CatalogWriter,
    CheckpointWatch,
    DeadLetterProducer,
    ItemTotalsWriter,
    ListsWriter,
    Pending,
    RefreshPlan,
    RegionLists,
    UserStateApplier,
    idle_users,
    refreshed,
    route_catalog,
    route_watches,
    shard_of,
    split_increments,
)
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
from streamrec.config import (
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_STORE_URL,
    TOPIC_CATALOG,
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_IMPRESSIONS,
)
from streamrec.recommend.learned import MODEL_KEY, Example, OnlineRanker
from streamrec.store.retry import RetryingStore

CONSUMER_GROUP = "streamrec-flink"
FLUSH_EVERY_MS = 50  # how often held writes look at the group's committed offsets
RELEASE_EVERY_MS = 500  # how often held experiment counts look for a covering checkpoint
PICKLED = Types.PICKLED_BYTE_ARRAY()
#: UserState's output carries the increments/watches batches (pickles, which start with 0x80) and,
#: from its refreshes, the ranker's examples behind this byte.
EXAMPLES_MARK = b"E"


def _records(row: Any) -> list[tuple[int, bytes | None, bytes | None]]:
    """A batch row's records: three arrays aggregated side by side (one ARRAY_AGG of a ROW would
    hand back the same reused row object for every element)."""
    return [(int(o), k, v) for o, k, v in zip(row[2], row[3], row[4], strict=True)]


class _Held(KeyedProcessFunction):  # type: ignore[misc]
    """A keyed function with writes held in a ``Pending`` (keyed state) until a completed checkpoint
    covers them, released on every input and on a processing-time timer while any are held."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.pending_state = runtime_context.get_state(ValueStateDescriptor("pending", PICKLED))
        self.watch = CheckpointWatch(self.args.rest, self.args.name, clock_margin_ms=self.args.clock_margin_ms)

    def close(self) -> None:
        self.watch.close()

    def _pending(self) -> Pending:
        return self.pending_state.value() or Pending()

    def hold(self, pending: Pending, ctx: Any, added: bool = True) -> None:
        """Release what a completed checkpoint covers, keep the rest in the keyed state (written
        only when it changed: re-pickling every held snapshot on each 50 ms timer was a third of
        the job's time once checkpoints slowed, which slowed them further) and look again soon."""
        before = len(pending.groups)
        self.release(pending)
        if added or len(pending.groups) != before:
            self.pending_state.update(pending)
        if pending.groups:
            now = ctx.timer_service().current_processing_time()
            ctx.timer_service().register_processing_time_timer(now - now % FLUSH_EVERY_MS + FLUSH_EVERY_MS)

    def release(self, pending: Pending) -> None:
        raise NotImplementedError

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        pending = self._pending()
        if pending.groups:
            self.hold(pending, ctx, added=False)
        return iter(())


class UserStateFn(_Held):
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
        batch = self.applier.apply(partition, _records(row), self.load)
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


class ItemTotalsFn(_Held):
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
        items, dead = self.writer.apply(int(row[0]), _records(row))
        self.dlq.send(dead)
        if items:
            yield items


class ImpressionsFn(KeyedProcessFunction):  # type: ignore[misc]
    """Keyed by the impressions' partition: decode a batch (dead letters to the DLQ), send each
    viewer shard its impressions."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args

    def open(self, runtime_context: RuntimeContext) -> None:
        self.dlq = DeadLetterProducer(self.args.bootstrap, self.args.dlq_topic)

    def process_element(self, row: Any, ctx: Any) -> Iterator[Any]:
        impressions, dead = impressions_of(_records(row), self.args.impressions_topic, int(row[0]))
        self.dlq.send(dead)
        for shard, shown in by_shard(((i.user_id, i) for i in impressions), self.args.viewer_shards).items():
            yield shard, shown, []


def _watches(shards: int) -> Any:
    def split(row: Any) -> Iterator[Any]:
        for shard, watched in by_shard(watches_of(_records(row)), shards).items():
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


class ExperimentCountsFn(_Held):
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
        self.pending_state.update(pending)
        self._release_later(ctx)
        return iter(())

    def _release_later(self, ctx: Any) -> None:
        now = ctx.timer_service().current_processing_time()
        ctx.timer_service().register_processing_time_timer(now - now % RELEASE_EVERY_MS + RELEASE_EVERY_MS)

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        pending = self._pending()
        if pending.groups:
            self.release(pending)
            self.pending_state.update(pending)
            if pending.groups:
                self._release_later(ctx)
        return iter(())

    def release(self, pending: Pending) -> None:
        ready = pending.pop_ready(self.watch)
        if ready:
            released = self.totals.value() or ExperimentTotals()
            self.writer.write([self.writer.add(released, merged_counts(ready), int(time.time() * 1000))])
            self.totals.update(released)


def _examples(encoded: bytes) -> Iterator[Any]:
    if encoded.startswith(EXAMPLES_MARK):  # told apart by one byte: the batches are not unpickled here
        yield 0, pickle.loads(encoded[1:])


def _split_items(shards: int) -> Any:
    def split(encoded: bytes) -> Iterator[Any]:
        if encoded.startswith(EXAMPLES_MARK):
            return
        pairs, counts, _ = pickle.loads(encoded)
        for shard, (shard_pairs, shard_counts) in split_increments(pairs, counts, shards).items():
            yield shard, "increments", shard_pairs, shard_counts
    return split


def _catalog_items(shards: int) -> Any:
    def split(items: Any) -> Iterator[Any]:
        by_shard: dict[int, dict[str, int]] = {}
        for item in items:
            by_shard.setdefault(shard_of(item.video_id, shards), {})[item.video_id] = 0
        for shard, ids in by_shard.items():
            yield shard, "catalog", {}, ids
    return split


def _catalog_lists(items: Any) -> Iterator[Any]:
    for region, added in route_catalog(items).items():
        yield region, "added", added


def _split_watches(encoded: bytes) -> Iterator[Any]:
    if encoded.startswith(EXAMPLES_MARK):
        return
    watches = pickle.loads(encoded)[2]
    for region, region_watches in route_watches(watches).items():
        yield region, "watches", region_watches


def kafka_table_sql(name: str, topic: str, args: argparse.Namespace) -> str:
    """A Kafka topic as a table of raw records with their partition and offset; offsets come from
    the job's checkpoint (else the group's committed offsets, else ``--start``) and are committed
    to the group when a checkpoint completes."""
    return f"""
    CREATE TEMPORARY TABLE {name} (
      `k` BYTES, `v` BYTES,
      `part` INT METADATA FROM 'partition' VIRTUAL,
      `off` BIGINT METADATA FROM 'offset' VIRTUAL,
      `pt` AS PROCTIME()
    ) WITH (
      'connector' = 'kafka', 'topic' = '{topic}',
      'properties.bootstrap.servers' = '{args.bootstrap}',
      'properties.group.id' = '{args.group}',
      'properties.auto.offset.reset' = '{args.start}',
      'scan.startup.mode' = 'group-offsets',
      'properties.commit.offsets.on.checkpoint' = 'true',
      'key.format' = 'raw', 'key.fields' = 'k',
      'value.format' = 'raw', 'value.fields-include' = 'EXCEPT_KEY'
    )"""


def batches_sql(name: str, batch_ms: int) -> str:
    """One row per partition per processing-time window: (partition, highest offset, records)."""
    return f"""
    SELECT part, MAX(off) AS high, ARRAY_AGG(off) AS offs, ARRAY_AGG(k) AS ks, ARRAY_AGG(v) AS vs
    FROM TABLE(TUMBLE(TABLE {name}, DESCRIPTOR(pt), INTERVAL '{batch_ms / 1000:.3f}' SECOND))
    GROUP BY part, window_start, window_end"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=DEFAULT_KAFKA_BOOTSTRAP)
    parser.add_argument("--store", default=DEFAULT_STORE_URL, help="store URL (sqlite:////abs/path.db, aerospike://...)")
    parser.add_argument("--events_topic", default=TOPIC_EVENTS)
    parser.add_argument("--catalog_topic", default=TOPIC_CATALOG)
    parser.add_argument("--dlq_topic", default=TOPIC_DLQ)
    parser.add_argument("--impressions_topic", default=TOPIC_IMPRESSIONS,
                        help="impressions for the experiments' attribution ('' leaves experiments out)")
    parser.add_argument("--viewer_shards", type=int, default=4, help="viewer shards of the attribution")
    parser.add_argument("--group", default=CONSUMER_GROUP, help="consumer group the checkpoints commit offsets to")
    parser.add_argument("--start", choices=("earliest", "latest"), default="earliest",
                        help="where a partition without a committed offset starts")
    parser.add_argument("--checkpoint_ms", type=int, default=1000, help="checkpoint interval")
    parser.add_argument("--checkpoint_dir", default=None, help="checkpoint storage (file:///..., gs://...)")
    parser.add_argument("--batch_ms", type=int, default=50, help="Kafka records batched per partition for this long")
    parser.add_argument("--shards", type=int, default=4, help="title shards of the item totals")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--state_backend", choices=("hashmap", "rocksdb"), default="hashmap")
    parser.add_argument("--jars", default=None, help="';'-separated connector jar URLs (default: var/flink/lib/*.jar)")
    parser.add_argument("--new_releases_days", type=float, default=30.0)
    parser.add_argument("--rest", default="http://127.0.0.1:8081",
                        help="the JobManager's REST address (held writes wait for its completed checkpoints)")
    parser.add_argument("--settle_s", type=float, default=5.0, help="quiet time before a top-picks refresh")
    parser.add_argument("--max_delay_s", type=float, default=60.0, help="longest a top-picks refresh waits")
    parser.add_argument("--top_picks_k", type=int, default=50)
    parser.add_argument("--idle_s", type=float, default=24 * 3600.0,
                        help="a user idle this long (event time) leaves the job's keyed state; the store keeps it")
    parser.add_argument("--sweep_s", type=float, default=60.0, help="how often idle users are looked for")
    parser.add_argument("--clock_margin_ms", type=int, default=50,
                        help="clock skew allowed between TaskManagers and the JobManager (held writes)")
    parser.add_argument("--name", default=None, help="job name (unique per submission; default streamrec-<random>)")
    return parser.parse_args(argv)


def build(args: argparse.Namespace) -> StreamExecutionEnvironment:
    config = Configuration()
    config.set_string("state.backend.type", args.state_backend)
    # What reaches a Python function is already a batch: do not hold it back for a bundle (the
    # defaults, 1000 elements or 1 s, put up to a second on freshness).
    config.set_string("python.fn-execution.bundle.size", "10")
    config.set_string("python.fn-execution.bundle.time", "20")
    if args.checkpoint_dir:
        config.set_string("execution.checkpointing.dir", args.checkpoint_dir)
    env = StreamExecutionEnvironment.get_execution_environment(config)
    jars = args.jars.split(";") if args.jars else [p.as_uri() for p in sorted((ROOT / "var" / "flink" / "lib").glob("*.jar"))]
    if jars:
        env.add_jars(*jars)
    env.set_parallelism(args.parallelism)
    env.enable_checkpointing(args.checkpoint_ms, CheckpointingMode.EXACTLY_ONCE)
    env.get_checkpoint_config().set_min_pause_between_checkpoints(max(0, args.checkpoint_ms // 4))
    tables = StreamTableEnvironment.create(env)
    tables.execute_sql(kafka_table_sql("events", args.events_topic, args))
    tables.execute_sql(kafka_table_sql("catalog", args.catalog_topic, args))
    events = tables.to_data_stream(tables.sql_query(batches_sql("events", args.batch_ms)))
    catalog = tables.to_data_stream(tables.sql_query(batches_sql("catalog", args.batch_ms)))

    items_in = (catalog.key_by(lambda row: int(row[0]), key_type=Types.INT())
                .process(CatalogFn(args), output_type=PICKLED).name("Catalog").uid("catalog"))
    updates = (events.key_by(lambda row: int(row[0]), key_type=Types.INT())
               .process(UserStateFn(args), output_type=PICKLED).name("UserState").uid("user-state"))
    increments = updates.flat_map(_split_items(args.shards), output_type=PICKLED).name("SplitByTitle")
    new_titles = items_in.flat_map(_catalog_items(args.shards), output_type=PICKLED).name("TitlesByShard")
    (increments.union(new_titles).key_by(lambda v: v[0], key_type=Types.INT())
     .process(ItemTotalsFn(args), output_type=PICKLED).name("ItemTotals").uid("item-totals"))
    added = items_in.flat_map(_catalog_lists, output_type=PICKLED).name("CatalogByRegion")
    watches = updates.flat_map(_split_watches, output_type=PICKLED).name("SplitByRegion")
    (watches.union(added).key_by(lambda v: v[0], key_type=Types.STRING())
     .process(ListsFn(args), output_type=PICKLED).name("Lists").uid("lists"))
    (updates.flat_map(_examples, output_type=PICKLED).name("RankerExamples")
     .key_by(lambda v: v[0], key_type=Types.INT())
     .process(RankerFn(args), output_type=PICKLED).name("Ranker").uid("ranker"))
    if args.impressions_topic:
        tables.execute_sql(kafka_table_sql("impressions", args.impressions_topic, args))
        shown = (tables.to_data_stream(tables.sql_query(batches_sql("impressions", args.batch_ms)))
                 .key_by(lambda row: int(row[0]), key_type=Types.INT())
                 .process(ImpressionsFn(args), output_type=PICKLED).name("Impressions").uid("impressions"))
        watched = events.flat_map(_watches(args.viewer_shards), output_type=PICKLED).name("PlaysByViewer")
        (shown.union(watched).key_by(lambda v: v[0], key_type=Types.INT())
         .process(AttributionFn(args), output_type=PICKLED).name("Attribution").uid("attribution")
         .key_by(lambda v: v[0], key_type=Types.STRING())
         .process(ExperimentCountsFn(args), output_type=PICKLED).name("ExperimentCounts").uid("experiment-counts"))
    return env


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.name:
        import uuid

        args.name = f"streamrec-{uuid.uuid4().hex[:8]}"
    env = build(args)
    env.execute(args.name)  # under `flink run --detached` this submits and returns


if __name__ == "__main__":
    # Run through the module, not this script's __main__: cloudpickle then ships the functions by
    # reference (the TaskManager imports pipelines.flink.job) instead of by value with our globals.
    from pipelines.flink.job import main as module_main

    module_main(sys.argv[1:])
