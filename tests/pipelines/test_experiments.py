"""MeasureExperiments (the Beam job's experiment counts) under TestStream: the store holds what
the core's attribution rules count, and every impression is acknowledged once counted."""

from __future__ import annotations

import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from pipelines.experiments import MeasureExperiments
from pipelines.offsets import Ack, Sourced
from streamrec.events.model import Impression, UserEvent
from streamrec.experiments.attribution import (
    ViewerAttribution,
    Watch,
    on_impression,
    on_watch,
)
from streamrec.experiments.config import parse_experiment
from streamrec.experiments.results import METRICS
from streamrec.experiments.storage import count_keys, counts_from_lists
from streamrec.store import open_store
from tests.flink.test_flink_experiments import scenario
from tests.pipelines.helpers import T0, store_url, streaming_options

pytestmark = pytest.mark.pipeline
EXPERIMENT = parse_experiment({"id": "x", "start": 0, "variants": [{"name": "blend", "share": 0.5},
                                                                   {"name": "fresh", "share": 0.5}]})


def expected_counts(arrivals: list[Impression | UserEvent]) -> dict:  # type: ignore[type-arg]
    viewers: dict[str, ViewerAttribution] = {}
    counts: dict = {}  # type: ignore[type-arg]
    for record in arrivals:
        state = viewers.setdefault(record.user_id, ViewerAttribution())
        if isinstance(record, Impression):
            got = on_impression(state, record)
        else:
            got = on_watch(state, Watch(record.event_id, record.event_type.value, record.video_id or "", record.timestamp))
        for key, n in got.items():
            counts[key] = counts.get(key, 0) + n
    return counts


def test_the_store_holds_what_the_rules_count_and_impressions_are_acknowledged(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    impressions, events = scenario(T0)
    # Impressions first, then the plays (one batch each), then the watermark moves on: expiry.
    stream = (TestStream()
              .add_elements([TimestampedValue(Sourced(i, "imp", 0, n), i.timestamp / 1000.0)
                             for n, i in enumerate(impressions)])
              .add_elements([TimestampedValue(e, e.timestamp / 1000.0) for e in events])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as pipeline:
        mixed = pipeline | stream
        shown = mixed | "Impressions" >> beam.Filter(lambda v: isinstance(v, Sourced))
        watched = mixed | "Events" >> beam.Filter(lambda v: isinstance(v, UserEvent))
        acks = (shown, watched) | MeasureExperiments(url)

        def every_impression_acknowledged(got: list[Ack]) -> None:
            offsets = sorted(o for ack in got for o in ack.offsets)
            assert offsets == list(range(len(impressions))), offsets

        assert_that(acks, every_impression_acknowledged)
    store = open_store(url)
    try:
        stored = counts_from_lists(store.get_lists(count_keys(EXPERIMENT, T0, METRICS)).values())
    finally:
        store.close()
    expected = expected_counts([*impressions, *events])
    assert stored == expected
    assert sum(n for k, n in stored.items() if k[3] == "plays") == 11


@pytest.mark.kafka
@pytest.mark.streaming_runner
@pytest.mark.timeout(240)
def test_the_streaming_job_on_prism_counts_impressions_and_plays(kafka_broker, jobs: list,  # type: ignore[no-untyped-def,type-arg]
                                                                 tmp_path: Path) -> None:
    from confluent_kafka import Producer

    from streamrec.events.codec import default_codec
    from tests.fixtures.pipeline_job import make_topics, produce, start_job, wait_for

    bootstrap, url, log = kafka_broker.bootstrap, f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "job.log"
    topics = make_topics(bootstrap, partitions=2)
    now = int(time.time() * 1000)
    impressions, events = scenario(now)
    producer = Producer({"bootstrap.servers": bootstrap})
    codec = default_codec()
    for i in impressions:
        producer.produce(topics["impressions"], key=i.user_id.encode(), value=codec.encode(i))
    assert producer.flush(30) == 0
    produce(bootstrap, topics["events"], events)
    jobs.append(start_job(bootstrap, url, topics, log))
    keys = count_keys(EXPERIMENT, now, METRICS)

    def counted() -> dict:  # type: ignore[type-arg]
        if not (tmp_path / "state.db").exists():
            return {}
        store = open_store(url)
        try:
            return counts_from_lists(store.get_lists(keys).values())
        finally:
            store.close()

    totals = {m: sum(n for k, n in expected_counts([*impressions, *events]).items() if k[3] == m) for m in METRICS}
    wait_for(lambda: {m: sum(n for k, n in counted().items() if k[3] == m) for m in METRICS} == totals, 120,
             "the experiment's counts", jobs[-1], log)
