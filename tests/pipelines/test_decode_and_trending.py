"""DecodeEvents' dead-letter routing, and Trending's sliding windows, early/late firings and lateness."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue

from pipelines.decode import DEAD_LETTERS, DecodeEvents
from pipelines.stages import Trending, WriteTrending
from streamrec.events.codec import default_codec
from streamrec.events.errors import EventError
from streamrec.events.model import CatalogItem
from streamrec.events.model import EventType as K
from streamrec.model import genre_key, trending_key
from streamrec.store import open_store
from tests.pipelines.helpers import (
    T0,
    batch_options,
    encoded,
    event,
    record,
    store_url,
    streaming_options,
)

pytestmark = pytest.mark.pipeline
MIN = 60_000


def test_bad_records_go_to_the_dead_letter_output_with_the_reason() -> None:
    good = event(K.PLAY, "u1", "v1", T0)
    truncated = default_codec().encode(good)[:-3]
    wrong_kind = default_codec().encode(CatalogItem(video_id="v9", title="Not an event"))
    records = [encoded(good, 0), record(b"not avro at all", 1), record(truncated, 2), record(wrong_kind, 3)]
    with pytest.raises(EventError) as truncated_error:  # the codec names the field where the bytes ran out
        default_codec().decode(truncated)
    pipeline = beam.Pipeline(options=batch_options())
    events, dead = pipeline | beam.Create(records) | DecodeEvents()
    assert_that(events, equal_to([good]), label="good")
    assert_that(dead | "where" >> beam.Map(lambda d: (d.offset, d.field, d.stage)),
                equal_to([(1, "header", "decode_events"), (2, truncated_error.value.field, "decode_events"),
                          (3, "header", "decode_events")]), label="dead")
    # The reason is in words and the original bytes are kept for whoever looks at the DLQ.
    assert_that(dead | "reasons" >> beam.Map(lambda d: (d.original == records[d.offset].value, bool(d.reason))),
                equal_to([(True, True)] * 3), label="kept")
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(MetricsFilter().with_name(DEAD_LETTERS))["counters"]
    assert sum(c.committed for c in counters) == 3


def _watch(region: str, video: str, at_ms: int) -> TimestampedValue:
    return TimestampedValue((region, video), at_ms / 1000.0)


def test_trending_counts_per_region_and_globally_in_sliding_windows(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    # 1h windows every 5 min, 10 min allowed lateness; one 24h window family left out for speed.
    stream = (TestStream()
              .advance_watermark_to(T0 / 1000.0)
              .add_elements([_watch("US", "a", T0 + 1 * MIN), _watch("US", "a", T0 + 2 * MIN),
                             _watch("US", "b", T0 + 3 * MIN), _watch("GB", "b", T0 + 4 * MIN)])
              .advance_watermark_to((T0 + 65 * MIN) / 1000.0)   # closes the windows ending at T0+5..T0+65 min
              # Late but within the allowed lateness of the window ending at T0+60 min: counted there.
              .add_elements([_watch("GB", "c", T0 + 58 * MIN)])
              .advance_watermark_to((T0 + 75 * MIN) / 1000.0)
              # Later than any allowed lateness of windows that contain it: dropped.
              .add_elements([_watch("US", "late", T0 + 1 * MIN)])
              .advance_watermark_to((T0 + 200 * MIN) / 1000.0)
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as pipeline:
        lists = pipeline | stream | Trending(windows=[("1h", 60, 5, 10)], top_n=2, early_s=0)  # late panes per watch
        _ = lists | WriteTrending(url)
        # The window [T0, T0+60min) as written on time and after the late pane.
        at_hour = lists | beam.Filter(lambda r: r.window_end == T0 + 60 * MIN)
        assert_that(at_hour | beam.Map(lambda r: (r.key, [(s.video_id, s.score) for s in r.items])),
                    equal_to([
                        (trending_key("1h", "US"), [("a", 2.0), ("b", 1.0)]),
                        (trending_key("1h", "GB"), [("b", 1.0)]),
                        (trending_key("1h", "global"), [("a", 2.0), ("b", 2.0)]),
                        # the late pane: c arrived within the lateness, panes accumulate
                        (trending_key("1h", "GB"), [("b", 1.0), ("c", 1.0)]),
                        (trending_key("1h", "global"), [("a", 2.0), ("b", 2.0)]),
                    ]))
        never_late = lists | "late" >> beam.Filter(lambda r: any(s.video_id == "late" for s in r.items))
        assert_that(never_late, equal_to([]), label="dropped")
    store = open_store(url)
    stored = store.get_lists([trending_key("1h", r) for r in ("US", "GB", "global")])
    # The newest window wins per key: the last window holding c ends at T0+60+55 min... c at 58 min
    # lives in windows ending T0+60..T0+115 min; the last of those, written last, holds only c.
    assert stored[trending_key("1h", "GB")].window_end == T0 + 115 * MIN
    assert [s.video_id for s in stored[trending_key("1h", "GB")].items] == ["c"]
    assert stored[trending_key("1h", "US")].window_end == T0 + 60 * MIN  # US watches end at 3 min + 57


def test_a_live_window_is_written_early_while_it_fills_then_on_time(tmp_path: Path) -> None:
    # Early panes every early_s of processing time: the window ending at T0+5 min is in the store
    # with what it holds so far while it is still open, then once more, complete, when it closes.
    url = store_url(tmp_path)
    stream = (TestStream()
              .advance_watermark_to(T0 / 1000.0)
              .add_elements([_watch("US", "a", T0 + 1 * MIN)])
              .advance_processing_time(10)                       # early pane: [a]
              .add_elements([_watch("US", "b", T0 + 2 * MIN)])   # no processing time passes: no pane yet
              .advance_watermark_to((T0 + 6 * MIN) / 1000.0)     # on time: [a, b]
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as pipeline:
        lists = pipeline | stream | Trending(windows=[("1h", 60, 5, 10)], top_n=5, early_s=5)
        _ = lists | WriteTrending(url)
        first = lists | beam.Filter(lambda r: r.window_end == T0 + 5 * MIN and r.key == trending_key("1h", "US"))
        assert_that(first | beam.Map(lambda r: sorted(s.video_id for s in r.items)), equal_to([["a"], ["a", "b"]]))
    stored = open_store(url).get_lists([trending_key("1h", "US")])[trending_key("1h", "US")]
    assert stored.window_end == T0 + 60 * MIN and sorted(s.video_id for s in stored.items) == ["a", "b"]


def test_without_early_firings_a_window_is_written_only_when_it_closes() -> None:
    # The batch setting (early_s=0): the same stream gives only the complete on-time pane.
    stream = (TestStream()
              .advance_watermark_to(T0 / 1000.0)
              .add_elements([_watch("US", "a", T0 + 1 * MIN)])
              .advance_processing_time(10)
              .add_elements([_watch("US", "b", T0 + 2 * MIN)])
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as pipeline:
        lists = pipeline | stream | Trending(windows=[("1h", 60, 5, 10)], top_n=5, early_s=0)
        first = lists | beam.Filter(lambda r: r.window_end == T0 + 5 * MIN and r.key == trending_key("1h", "US"))
        assert_that(first | beam.Map(lambda r: sorted(s.video_id for s in r.items)), equal_to([["a", "b"]]))


def test_the_genre_window_also_writes_each_genres_popular_titles_per_region_and_globally(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    watches = [TimestampedValue(("US", "a", ("Comedy", "Drama")), (T0 + 1 * MIN) / 1000.0),
               TimestampedValue(("US", "a", ("Comedy", "Drama")), (T0 + 2 * MIN) / 1000.0),
               TimestampedValue(("US", "b", ("Comedy",)), (T0 + 3 * MIN) / 1000.0),
               TimestampedValue(("GB", "b", ("Comedy",)), (T0 + 4 * MIN) / 1000.0),
               TimestampedValue(("GB", "n", ()), (T0 + 4 * MIN) / 1000.0)]  # no genres: trends, in no genre list
    stream = (TestStream().advance_watermark_to(T0 / 1000.0).add_elements(watches)
              .advance_watermark_to_infinity())
    with beam.Pipeline(options=streaming_options()) as pipeline:
        lists = pipeline | stream | Trending(windows=[("1h", 60, 5, 10)], top_n=5, early_s=0,
                                             genre_window="1h", genre_n=5)
        _ = lists | WriteTrending(url)
    stored = open_store(url).get_lists([genre_key("Comedy"), genre_key("Comedy", "US"), genre_key("Comedy", "GB"),
                                        genre_key("Drama"), genre_key("Drama", "GB"), trending_key("1h", "GB")])
    as_pairs = {k: [(s.video_id, s.score) for s in v.items] for k, v in stored.items()}
    # The newest window holding every watch ends at T0+60 min: the last one written per key.
    assert as_pairs[genre_key("Comedy")] == [("a", 2.0), ("b", 2.0)]  # ties by id
    assert as_pairs[genre_key("Comedy", "US")] == [("a", 2.0), ("b", 1.0)]
    assert as_pairs[genre_key("Comedy", "GB")] == [("b", 1.0)]
    assert as_pairs[genre_key("Drama")] == [("a", 2.0)]
    assert genre_key("Drama", "GB") not in as_pairs
    assert as_pairs[trending_key("1h", "GB")] == [("b", 1.0), ("n", 1.0)]
    assert stored[genre_key("Comedy")].window_end == stored[trending_key("1h", "GB")].window_end
