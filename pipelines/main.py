"""The pipeline entry point: ``run(argv)`` builds the streaming job or the batch backfill.

I/O lives only here, at the edges; the stages in between are the same in both jobs:

    streaming:  Kafka events  -> DecodeEvents -> MaintainState -> store     (dead letters -> DLQ topic)
                Kafka catalog -> DecodeCatalog -> CatalogUpsert -> store
                (Kafka impressions -> DecodeImpressions, events) -> MeasureExperiments -> store
                (catalog, MaintainState's watches) -> NewReleases -> store
    backfill:   --history DIR (rating log -> watch events) -> MaintainState -> store
                                 (its movies file -> CatalogUpsert, NewReleases -> store)

Run locally (Prism, Beam's portable runner, built by ``make prism``)::

    python -m pipelines.main --bootstrap 127.0.0.1:9092 --store sqlite:///var/streamrec.db \\
        --runner PrismRunner --prism_location var/prism/bin/prism --environment_type LOOPBACK --streaming
    python -m pipelines.main --history ../shared/data/ml-latest-small --store sqlite:///var/x.db \\
        --runner DirectRunner

Any other Beam option passes through to the runner (Dataflow, Flink: see docs/pipelines.md).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    DebugOptions,
    PipelineOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
)
from apache_beam.transforms.window import TimestampedValue

from pipelines.decode import DecodeCatalog, DecodeEvents
from pipelines.experiments import DecodeImpressions, MeasureExperiments
from pipelines.kafka_source import ReadFromKafka, WriteToKafka
from pipelines.new_releases import NewReleases
from pipelines.offsets import CommitOffsets, split_acks
from pipelines.ranker import TrainRanker
from pipelines.sinks import TAG_INCREMENTS, WriteUserUpdates
from pipelines.stages import (
    AttachGenres,
    CatalogUpsert,
    ItemVectors,
    Trending,
    WriteTrending,
)
from pipelines.user_state import (
    TAG_EXAMPLES,
    TAG_REJECTED,
    TAG_WATCHES,
    UpdateUserState,
)
from streamrec.config import (
    DEFAULT_KAFKA_BOOTSTRAP,
    DEFAULT_STORE_URL,
    TOPIC_CATALOG,
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_IMPRESSIONS,
)
from streamrec.events.model import CatalogItem, DeadLetter, UserEvent

CONSUMER_GROUP = "streamrec-pipeline"
TAG_ACKS = "acks"


class MaintainState(beam.PTransform):  # type: ignore[misc]
    """UserEvent (or Sourced UserEvent) -> every piece of state in the store. The one graph both
    the streaming job and the backfill run. Returns a dict: ``users`` (UserWrites: the snapshots
    written, with their increments), ``rejected`` (DeadLetters: events the state refused, user
    records the store refused), ``watches`` (NewReleases reads them beside the catalog) and
    ``acks`` (Kafka offsets whose effects are stored: CommitOffsets reads them)."""

    def __init__(self, store_url: str, *, settle_s: float = 5.0, max_delay_s: float = 60.0,
                 idle_s: float = 24 * 3600.0, top_picks_k: int = 50, trending_top_n: int = 100,
                 early_s: float = 5.0, bounded: bool = False) -> None:
        super().__init__()
        self.store_url, self.idle_s, self.bounded = store_url, idle_s, bounded
        self.settle_s, self.max_delay_s, self.top_picks_k = settle_s, max_delay_s, top_picks_k
        self.trending_top_n, self.early_s = trending_top_n, early_s

    def expand(self, events: beam.PCollection) -> dict[str, beam.PCollection]:
        updated = events | "UpdateUserState" >> UpdateUserState(
            self.store_url, settle_s=self.settle_s, max_delay_s=self.max_delay_s, idle_s=self.idle_s,
            top_picks_k=self.top_picks_k, bounded=self.bounded)
        # Users and their co-watch/item counts in one write (docs/pipelines.md, "Delivery guarantee").
        written = updated.users | "WriteUsers" >> beam.ParDo(WriteUserUpdates(self.store_url)).with_outputs(
            TAG_INCREMENTS, main="results")
        acks, refused_by_store = split_acks(written.results, "SplitAcks")
        _ = written[TAG_INCREMENTS] | "ItemVectors" >> ItemVectors(self.store_url)
        lists_refused = (updated[TAG_WATCHES]
                         | "AttachGenres" >> beam.ParDo(AttachGenres(self.store_url))
                         | "Trending" >> Trending(top_n=self.trending_top_n, early_s=self.early_s)
                         | "WriteTrending" >> WriteTrending(self.store_url))  # dead letters of lists refused
        model_refused = (updated[TAG_EXAMPLES]
                         | "TrainRanker" >> TrainRanker(self.store_url)
                         | "WriteModel" >> WriteTrending(self.store_url))  # one ranked list per version
        rejected = ((updated[TAG_REJECTED], refused_by_store, lists_refused, model_refused)
                    | "Rejected" >> beam.Flatten())
        return {"users": updated.users, TAG_REJECTED: rejected, TAG_WATCHES: updated[TAG_WATCHES], TAG_ACKS: acks}


def history_events(dataset: str, limit: int | None) -> Iterator[TimestampedValue]:
    """A rating log's ratings (oldest first, the first ``limit``) as watch events at event time."""
    from streamrec import ratings as rating_logs

    ratings = rating_logs.load_ratings(Path(dataset))
    for event in rating_logs.history_events(ratings[:limit] if limit else ratings):
        yield TimestampedValue(event, event.timestamp / 1000.0)


def catalog_items(dataset: str, limit: int | None) -> Iterator[CatalogItem]:
    """The log's titles, each added to the catalog at its first rating among the first ``limit``
    (titles rated only later are in the catalog, not yet released: no ``added_at``)."""
    from streamrec import ratings as rating_logs

    ratings = rating_logs.load_ratings(Path(dataset))
    yield from rating_logs.with_added_at(rating_logs.load_catalog(Path(dataset)), ratings[:limit] if limit else ratings)


def _encode_dead_letter(letter: DeadLetter) -> tuple[bytes | None, bytes, tuple[str, int, int] | None]:
    """A dead letter as a DLQ record, with the position of its source record (acknowledged once
    the DLQ has it) when it came from Kafka."""
    from streamrec.events.codec import default_codec

    source = (letter.topic, letter.partition, letter.offset) if letter.topic and letter.offset >= 0 else None
    return letter.original_key, default_codec().encode(letter), source


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=DEFAULT_KAFKA_BOOTSTRAP, help="Kafka bootstrap servers")
    parser.add_argument("--store", default=DEFAULT_STORE_URL, help="store URL (sqlite:///..., aerospike://...)")
    parser.add_argument("--events_topic", default=TOPIC_EVENTS)
    parser.add_argument("--catalog_topic", default=TOPIC_CATALOG)
    parser.add_argument("--dlq_topic", default=TOPIC_DLQ)
    parser.add_argument("--impressions_topic", default=TOPIC_IMPRESSIONS,
                        help="impressions for the experiments' counts ('' leaves experiments out)")
    parser.add_argument("--group", default=CONSUMER_GROUP, help="consumer group whose offsets the job commits")
    parser.add_argument("--start", choices=("earliest", "latest"), default="earliest",
                        help="where to start a partition the group has no offset for")
    parser.add_argument("--stop_at_end", action="store_true",
                        help="read the topics up to their current end, then finish (bounded run)")
    parser.add_argument("--history", help="backfill from this rating-log directory instead of Kafka")
    parser.add_argument("--history_limit", type=int, default=None, help="backfill only the oldest N ratings")
    parser.add_argument("--settle_s", type=float, default=5.0, help="quiet time before a top-picks refresh")
    parser.add_argument("--max_delay_s", type=float, default=60.0, help="longest a top-picks refresh waits")
    parser.add_argument("--max_batch_ms", type=int, default=200, help="longest a Kafka read bundle lasts")
    parser.add_argument("--commit_lag_s", type=float, default=None,
                        help="ignored (kept for old command lines): offsets are now committed once "
                             "their effects are stored")
    parser.add_argument("--early_s", type=float, default=5.0, help="trending: early firing period")
    parser.add_argument("--new_releases_days", type=float, default=30.0,
                        help="new releases: a title leaves the list this long after it was added")
    return parser.parse_known_args(argv)


def build(pipeline: beam.Pipeline, args: argparse.Namespace) -> None:
    """Add the job ``args`` describe to ``pipeline`` (no runner specifics here)."""
    stages = MaintainState(args.store, settle_s=args.settle_s, max_delay_s=args.max_delay_s,
                           early_s=0.0 if args.history or args.stop_at_end else args.early_s,
                           bounded=bool(args.history or args.stop_at_end))
    releases = NewReleases(args.store, max_age_days=args.new_releases_days)
    if args.history:
        events = (pipeline
                  | "HistoryPath" >> beam.Create([args.history])
                  | "ReadHistory" >> beam.FlatMap(history_events, args.history_limit))
        updated = events | "MaintainState" >> stages
        items = (pipeline
                 | "CatalogPath" >> beam.Create([args.history])
                 | "ReadCatalog" >> beam.FlatMap(catalog_items, args.history_limit))
        _ = items | "CatalogUpsert" >> CatalogUpsert(args.store)
        _ = (items, updated[TAG_WATCHES]) | "NewReleases" >> releases
        return

    read = {"start": args.start, "stop_at_end": args.stop_at_end, "max_batch_ms": args.max_batch_ms}
    records = pipeline | "ReadEvents" >> ReadFromKafka(args.bootstrap, args.events_topic, args.group, **read)
    events, undecodable = records | "DecodeEvents" >> DecodeEvents(with_positions=True)
    updated = events | "MaintainState" >> stages
    refused = updated[TAG_REJECTED]
    catalog = pipeline | "ReadCatalog" >> ReadFromKafka(args.bootstrap, args.catalog_topic, args.group, **read)
    sourced_items, bad_items = catalog | "DecodeCatalog" >> DecodeCatalog(with_positions=True)
    items = sourced_items | "CatalogItems" >> beam.Map(lambda sourced: sourced.value)
    catalog_acks, catalog_refused = split_acks(sourced_items | "CatalogUpsert" >> CatalogUpsert(args.store),
                                               "SplitCatalogAcks")
    _ = (items, updated[TAG_WATCHES]) | "NewReleases" >> releases
    experiment_acks, bad_impressions = [], []
    if args.impressions_topic:  # experiments: plays credited to impressions (pipelines/experiments.py)
        shown_records = pipeline | "ReadImpressions" >> ReadFromKafka(args.bootstrap, args.impressions_topic,
                                                                      args.group, **read)
        shown, bad = shown_records | "DecodeImpressions" >> DecodeImpressions(with_positions=True)
        experiment_acks.append((shown, events) | "MeasureExperiments" >> MeasureExperiments(args.store))
        bad_impressions.append(bad)
    dlq_acks = ((undecodable, refused, bad_items, catalog_refused, *bad_impressions)
                | "DeadLetters" >> beam.Flatten()
                | "EncodeDeadLetters" >> beam.Map(_encode_dead_letter)
                | "WriteDLQ" >> beam.ParDo(WriteToKafka(args.bootstrap, args.dlq_topic)))
    # Offsets are committed once their effects are stored (pipelines/offsets.py).
    _ = ((updated[TAG_ACKS], catalog_acks, dlq_acks, *experiment_acks)
         | "Acks" >> beam.Flatten()
         | "CommitOffsets" >> CommitOffsets(args.bootstrap, args.group))


def run(argv: Sequence[str] | None = None) -> beam.runners.runner.PipelineResult:
    """Run the job; blocks until a bounded job (backfill, ``--stop_at_end``) finishes."""
    args, beam_args = parse_args(argv)
    options = PipelineOptions(beam_args)
    options.view_as(SetupOptions).save_main_session = False
    if not args.history and not args.stop_at_end:
        options.view_as(StandardOptions).streaming = True
        # Portable runners put this deadline on the job's state stream too: a streaming driver would
        # give up (and take a local runner with it) after 5 minutes. Never, unless asked for.
        if not any(a.startswith(("--job_server_timeout", "--job-server-timeout")) for a in beam_args):
            options.view_as(PortableOptions).job_server_timeout = 365 * 24 * 3600
        # Prism splits a bundle that makes no progress (a store outage stalls the sinks) and runs the
        # residual at once, beside the still-running primary: a user's next pane was applied to the
        # state before the stalled pane's (lost and out-of-order updates, docs/pipelines.md). The
        # Kafka reader refuses dynamic splits anyway; other runners ignore the experiment.
        options.view_as(DebugOptions).add_experiment("prism_disable_sdf_split")
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args)
    result = pipeline.run()
    result.wait_until_finish()
    return result


__all__ = ["MaintainState", "UserEvent", "build", "run"]

if __name__ == "__main__":
    logging.getLogger().setLevel(logging.WARNING)
    run()
