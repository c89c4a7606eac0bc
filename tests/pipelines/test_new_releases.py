"""NewReleases on the DirectRunner: catalog records and watches in, ``new_releases:<region>`` lists
in the store: recency first, early momentum next, released on the stream's clock, aged out, and
recovered from the store by a restarted job."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipelines.new_releases import NewReleases
from streamrec.events.model import CatalogItem
from streamrec.model import new_releases_key
from streamrec.recommend.releases import DAY_MS
from streamrec.store import open_store
from tests.pipelines.helpers import T0, store_url, streaming_options

pytestmark = pytest.mark.pipeline


def _item(video_id: str, added_at: int | None, regions: tuple[str, ...] = ()) -> CatalogItem:
    return CatalogItem(video_id=video_id, title=video_id.upper(), added_at=added_at, regions=regions)


def _watch(region: str, video_id: str, at_ms: int) -> TimestampedValue:
    return TimestampedValue((region, video_id), at_ms / 1000.0)


def _run(url: str, items: list[CatalogItem], watches: list[TimestampedValue], max_age_days: float = 30) -> None:
    # Catalog first, then the watches in a later bundle (as the stream delivers them).
    stream = (TestStream(output_tags={"catalog", "watches"})
              .advance_watermark_to(T0 / 1000.0, tag="catalog").advance_watermark_to(T0 / 1000.0, tag="watches")
              .add_elements(items, tag="catalog")
              .advance_processing_time(1)
              .add_elements(watches, tag="watches")
              .advance_watermark_to_infinity(tag="catalog").advance_watermark_to_infinity(tag="watches"))
    with beam.Pipeline(options=streaming_options()) as pipeline:
        out = pipeline | stream
        _ = (out["catalog"], out["watches"]) | NewReleases(url, max_age_days=max_age_days)


def _ids(url: str, region: str) -> list[str]:
    stored = open_store(url).get_lists([new_releases_key(region)])
    return [s.video_id for s in stored[new_releases_key(region)].items] if stored else []


def test_newest_first_momentum_breaks_ties_and_the_clock_holds_back_what_is_not_out(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    today = T0 - T0 % DAY_MS
    items = [_item("old", today - 40 * DAY_MS),      # aged out at the clock (30 days)
             _item("yesterday", today - DAY_MS),
             _item("quiet", today + 60_000),
             _item("busy", today + 120_000),
             _item("us_only", today + 180_000, regions=("US",)),
             _item("tomorrow", today + 2 * DAY_MS),  # not released at the stream's clock
             _item("undated", None)]
    watches = [_watch("US", "busy", T0 + 1000), _watch("GB", "busy", T0 + 2000),
               _watch("US", "us_only", T0 + 3000), _watch("US", "old", T0 + 4000)]
    _run(url, items, watches)
    assert _ids(url, "global") == ["busy", "us_only", "quiet", "yesterday"]
    assert _ids(url, "US") == ["us_only"]  # a region's list holds its own titles; everywhere-titles are global's
    scores = {s.video_id: s.score for s in open_store(url).get_lists([new_releases_key("global")])[
        new_releases_key("global")].items}
    assert scores["busy"] == today // DAY_MS + 2 / 3  # two watches since added


def test_a_restarted_job_recovers_its_list_from_the_store(tmp_path: Path) -> None:
    url = store_url(tmp_path)
    today = T0 - T0 % DAY_MS
    _run(url, [_item("a", today + 1), _item("b", today + 2)], [_watch("US", "a", T0), _watch("US", "a", T0 + 1)])
    assert _ids(url, "global") == ["a", "b"]
    # The new job never saw a or b (its catalog offsets were committed): one more watch of b and
    # a new title keep a and b on the list, with a's two watches remembered.
    _run(url, [_item("c", today + 3)], [_watch("US", "b", T0 + 2)])
    assert _ids(url, "global") == ["a", "b", "c"]
