"""The live replay releases titles: a title the log rates first during the replay is published
again on the catalog topic, with ``added_at`` just before its first session, and only once."""

from __future__ import annotations

import time
from pathlib import Path

from streamrec.config import TOPIC_CATALOG, TOPIC_EVENTS
from streamrec.events.codec import default_codec
from streamrec.events.model import CatalogItem
from streamrec.kafka import EventProducer
from streamrec.ratings import Rating
from streamrec_cli.publisher import ReplayStats, replay_live
from tests.fixtures.kafka import read_records


def test_a_title_first_rated_live_is_released_just_before_its_first_session(kafka_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run = f"release-{time.time_ns()}"
    titles = [f"{run}-new", f"{run}-again", f"{run}-past"]
    ratings = [Rating(f"{run}-u{i}", titles[i % 2], 4.0, 1_000_000 + i) for i in range(6)]
    ratings.insert(0, Rating(f"{run}-u9", titles[2], 3.0, 999_999))  # before the resume point: not released
    releases = {t: CatalogItem(video_id=t, title=t.upper(), genres=("Drama",)) for t in titles}
    began_ms = int(time.time() * 1000)
    with EventProducer(kafka_broker.bootstrap) as producer:
        replay_live(producer, ratings, start=1, events_per_s=500.0, stats=(stats := ReplayStats()),
                    stats_path=tmp_path / "stats.json", durations={}, releases=releases)
    codec = default_codec()
    published = [codec.decode(r.value or b"") for r in read_records(kafka_broker.bootstrap, TOPIC_CATALOG, timeout_s=10)
                 if r.key is not None and r.key.decode().startswith(run)]
    assert sorted(i.video_id for i in published) == sorted(titles[:2])  # each once; the past one not at all
    assert stats.released_titles == 2
    events = [codec.decode_event(r.value or b"") for r in read_records(kafka_broker.bootstrap, TOPIC_EVENTS, timeout_s=10)
              if r.key is not None and r.key.decode().startswith(run)]
    for item in published:
        assert isinstance(item, CatalogItem) and item.genres == ("Drama",)
        first_event = min(e.timestamp for e in events if e.video_id == item.video_id)
        assert item.added_at is not None and began_ms - 120_000 <= item.added_at < first_event
