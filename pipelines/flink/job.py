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
This module builds the graph (sources, routing between the functions, sinks); the keyed functions
are :mod:`pipelines.flink.functions` (users, titles, lists) and
:mod:`pipelines.flink.experiment_functions` (attribution, experiment counts).

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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pyflink.common import Configuration, Types  # type: ignore[import-not-found]
from pyflink.datastream import (  # type: ignore[import-not-found]
    CheckpointingMode,
    StreamExecutionEnvironment,
)
from pyflink.table import StreamTableEnvironment  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `flink run -py` runs this file as a script
    sys.path.insert(0, str(ROOT))

from pipelines.flink.experiment_functions import (
    AttributionFn,
    ExperimentCountsFn,
    ImpressionsFn,
    watches_by_shard,
)
from pipelines.flink.functions import (
    EXAMPLES_MARK,
    PICKLED,
    CatalogFn,
    ItemTotalsFn,
    ListsFn,
    RankerFn,
    UserStateFn,
)
from pipelines.flink.items import shard_of, split_increments
from pipelines.flink.lists import route_catalog, route_watches
from streamrec.config import (
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_STORE_URL,
    TOPIC_CATALOG,
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_IMPRESSIONS,
)

CONSUMER_GROUP = "streamrec-flink"


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
        watched = events.flat_map(watches_by_shard(args.viewer_shards), output_type=PICKLED).name("PlaysByViewer")
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
