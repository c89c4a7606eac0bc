"""The stages after UpdateUserState: item vectors, genres of watches, trending and genre lists, catalog
(the users and their co-watch and item counts are written together by :class:`pipelines.sinks.WriteUserUpdates`).

Each is one composite transform whose ``expand()`` reads as the data flow; constructors take
plain values. Sinks are the batching DoFns of :mod:`pipelines.sinks`.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.transforms import trigger, window
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.sinks import (
    WriteCatalog,
    WriteItemVectors,
    WriteRankedLists,
    vector_deltas,
)
from streamrec.model import RankedList, ScoredItem, genre_key, trending_key
from streamrec.recommend.trending import top_n, top_per_genre
from streamrec.store.cache import ReadThrough
from streamrec.store.retry import RetryingStore

GLOBAL_REGION = "global"


class ItemVectors(beam.PTransform):  # type: ignore[misc]
    """Combined co-watch increments -> per-title vector deltas -> read-add-write of raw vectors.

    The online rule (streamrec.recommend.vectors): ``raw(a) = basis(a) + sum_b count(a,b) * basis(b)``;
    an increment of n on (a, b) adds ``n * basis(b)``. Deltas are routed by title to
    ``shards`` keys and grouped per pane, so one title's read-add-write happens in one place
    even on a runner with many workers."""

    def __init__(self, store_url: str, shards: int = 4) -> None:
        super().__init__()
        self.store_url, self.shards = store_url, shards

    def expand(self, combined: beam.PCollection) -> beam.PCollection:
        shards = self.shards

        def by_shard(increments: tuple[dict[tuple[str, str], int], dict[str, int]]) -> Iterator[tuple[int, dict]]:
            parts: dict[int, dict] = {}
            for video_id, delta in vector_deltas(increments).items():
                parts.setdefault(zlib.crc32(video_id.encode()) % shards, {})[video_id] = delta
            yield from parts.items()

        def merge(shard_deltas: tuple[int, Iterable[dict]]) -> dict:
            merged: dict = {}
            for deltas in shard_deltas[1]:
                for video_id, delta in deltas.items():
                    merged[video_id] = merged[video_id] + delta if video_id in merged else delta.copy()
            return merged

        return (
            combined
            | "DeltasByShard" >> beam.FlatMap(by_shard)
            # A GroupByKey in the global window needs a trigger to emit while streaming: every
            # pane of whatever arrived, discarding, so each delta is added exactly once.
            | "PerPane" >> beam.WindowInto(window.GlobalWindows(), trigger=trigger.Repeatedly(trigger.AfterCount(1)),
                                           accumulation_mode=trigger.AccumulationMode.DISCARDING)
            | "GroupByShard" >> beam.GroupByKey()
            | "MergeDeltas" >> beam.Map(merge)
            | "AddToVectors" >> beam.ParDo(WriteItemVectors(self.store_url))
        )


class _CountPerBucket(beam.DoFn):
    """Sums watches per (region, 5-minute bucket) over a bundle and emits one count map per pair
    (with the genres of its titles), stamped with the bucket's newest watch. Exact, not an
    approximation: the windows (1 h every 5 min, 24 h every hour) are aligned to 5 minutes, so
    every watch of one bucket belongs to the same windows. It turns ~36 window assignments per
    watch into a few per bundle."""

    BUCKET_MS = 300_000

    def start_bundle(self) -> None:
        self.buckets: dict[tuple[str, int], tuple[dict[str, int], int]] = {}
        self.genres: dict[str, tuple[str, ...]] = {}

    def process(self, watch: tuple[Any, ...], timestamp: Any = beam.DoFn.TimestampParam) -> None:
        region, video_id = watch[0], watch[1]
        if len(watch) > 2 and watch[2]:
            self.genres[video_id] = tuple(watch[2])
        ts_ms = int(timestamp.micros // 1000)
        regions = (region,) if region == GLOBAL_REGION else (region, GLOBAL_REGION)
        for key in ((r, ts_ms // self.BUCKET_MS) for r in regions):
            counts, newest = self.buckets.get(key, ({}, ts_ms))
            counts[video_id] = counts.get(video_id, 0) + 1
            self.buckets[key] = (counts, max(newest, ts_ms))

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (region, _bucket), (counts, newest) in self.buckets.items():
            genres = {v: self.genres[v] for v in counts if v in self.genres}
            yield WindowedValue((region, (counts, genres)), Timestamp(micros=newest * 1000), (GlobalWindow(),))
        self.buckets, self.genres = {}, {}


class _TopItems(beam.CombineFn):  # type: ignore[misc]
    """Sums per-title watch counts in a window; the output is the top ``n`` (ties by id) and, when
    ``genre_n`` > 0, the top ``genre_n`` of each genre. Accumulator: (counts, genres per title)."""

    def __init__(self, n: int, genre_n: int = 0) -> None:
        self.n, self.genre_n = n, genre_n

    def create_accumulator(self) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
        return {}, {}

    def add_input(self, acc: tuple[dict[str, int], dict[str, tuple[str, ...]]],
                  more: tuple[dict[str, int], dict[str, tuple[str, ...]]]) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
        counts, genres = acc
        for video_id, n in more[0].items():
            counts[video_id] = counts.get(video_id, 0) + n
        if self.genre_n:
            genres.update(more[1])
        return acc

    def merge_accumulators(self, accumulators: Iterable[tuple[dict[str, int], dict[str, tuple[str, ...]]]]
                           ) -> tuple[dict[str, int], dict[str, tuple[str, ...]]]:
        merged = self.create_accumulator()
        for acc in accumulators:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc: tuple[dict[str, int], dict[str, tuple[str, ...]]]
                       ) -> tuple[list[ScoredItem], dict[str, list[ScoredItem]]]:
        counts, genres = acc
        return top_n(counts, self.n), (top_per_genre(counts, genres, self.genre_n) if self.genre_n else {})


class Trending(beam.PTransform):  # type: ignore[misc]
    """(region, video_id[, genres]) watches at event time -> top-N per sliding window, per region
    and globally, as RankedList ``trending:<label>:<region>`` with the window's end; the window
    labelled ``genre_window`` also gives each genre's top ``genre_n`` as ``genre:<genre>[:<region>]``
    (popular in a genre: the same counts, windows and panes as trending, no second counting).

    ``windows``: ``(label, size_minutes, period_minutes, allowed_lateness_minutes)``. Each window
    fires early every ``early_s`` of processing time (so the current hour is visible while it
    fills; ``early_s=0`` turns that off, as the batch backfill must), on time when the watermark
    passes its end, and after late watches until the allowed lateness is over (``early_s`` after
    the first of them; at once when ``early_s=0``); panes accumulate, so every firing is the window's full count.
    Watches later than that are dropped here (they still changed user state and co-watch)."""

    def __init__(self, windows: Sequence[tuple[str, int, int, int]] = (("1h", 60, 5, 10), ("24h", 1440, 60, 60)),
                 top_n: int = 100, early_s: float = 5.0, genre_window: str | None = "24h", genre_n: int = 100) -> None:
        super().__init__()
        self.windows, self.n, self.early_s = tuple(windows), top_n, early_s
        self.genre_window, self.genre_n = genre_window, genre_n

    def expand(self, watches: beam.PCollection) -> beam.PCollection:
        # Every watch counts for its region and for the global list, summed per 5-minute bucket.
        both = watches | "CountPerBucket" >> beam.ParDo(_CountPerBucket())
        # Batch runners have no processing-time clock: early firings only where they mean something.
        early = trigger.AfterProcessingTime(max(1, round(self.early_s))) if self.early_s > 0 else None
        # Late panes: on Prism 2.75 a data-driven late trigger (AfterCount) next to a processing-time
        # early one suppresses every early pane (no live window reached the store before it closed);
        # a processing-time late trigger does not, and costs at most ``early_s`` of delay.
        late = early if early is not None else trigger.AfterCount(1)
        lists = []
        for label, size_min, period_min, lateness_min in self.windows:
            lists.append(
                both
                | f"Window{label}" >> beam.WindowInto(
                    window.SlidingWindows(size=size_min * 60, period=period_min * 60),
                    trigger=trigger.AfterWatermark(early=early, late=late),
                    accumulation_mode=trigger.AccumulationMode.ACCUMULATING,
                    allowed_lateness=lateness_min * 60)
                | f"TopPerRegion{label}" >> beam.CombinePerKey(
                    _TopItems(self.n, self.genre_n if label == self.genre_window else 0))
                | f"ToList{label}" >> beam.ParDo(_ToRankedList(label))
                | f"Unwindow{label}" >> beam.WindowInto(window.GlobalWindows())  # lists carry their window end
            )
        return lists | "AllWindows" >> beam.Flatten()


class _ToRankedList(beam.DoFn):
    def __init__(self, label: str) -> None:
        self.label = label

    def process(self, region_top: tuple[str, tuple[list, dict]], win: Any = beam.DoFn.WindowParam) -> Iterator[RankedList]:
        region, (items, by_genre) = region_top
        now_ms, window_end = int(time.time() * 1000), int(win.end.micros // 1000)
        yield RankedList(key=trending_key(self.label, region), items=items, updated_at=now_ms, window_end=window_end)
        for genre, genre_items in sorted(by_genre.items()):
            yield RankedList(key=genre_key(genre, region), items=genre_items, updated_at=now_ms, window_end=window_end)


class AttachGenres(beam.DoFn):
    """(region, video_id) watches -> (region, video_id, genres), the genres read from the catalog in
    the store: one batched read per bundle for the titles not in this worker's cache (kept
    ``ttl_s``, so a catalog change is seen within that). A title the catalog does not know has no
    genres (it still trends)."""

    def __init__(self, store_url: str, ttl_s: float = 600.0, max_cached: int = 200_000) -> None:
        self.store_url, self.ttl_s, self.max_cached = store_url, ttl_s, max_cached
        self.store: RetryingStore | None = None

    def setup(self) -> None:
        self.store = RetryingStore(self.store_url, "attach_genres")
        self.genres: ReadThrough[tuple[str, ...]] = ReadThrough(self.ttl_s, self.max_cached)

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()

    def start_bundle(self) -> None:
        self.pending: list[tuple[tuple[str, str], Any, Any]] = []

    def process(self, watch: tuple[str, str], timestamp: Any = beam.DoFn.TimestampParam,
                win: Any = beam.DoFn.WindowParam) -> None:
        self.pending.append((watch, timestamp, win))

    def finish_bundle(self) -> Iterator[WindowedValue]:
        store = self.store
        assert store is not None
        genres = self.genres.get((v for (_, v), _, _ in self.pending), lambda missing: {
            v: item.genres for v, item in store.call("get_items", lambda s: s.get_items(missing)).items()},
            lambda _: ())
        for (region, video_id), ts, win in self.pending:
            yield WindowedValue((region, video_id, genres[video_id]), ts, (win,))
        self.pending = []


class WriteTrending(beam.PTransform):  # type: ignore[misc]
    def __init__(self, store_url: str) -> None:
        super().__init__()
        self.store_url = store_url

    def expand(self, lists: beam.PCollection) -> beam.PCollection:
        return (
            lists
            | "PutLists" >> beam.ParDo(WriteRankedLists(self.store_url))
        )


class CatalogUpsert(beam.PTransform):  # type: ignore[misc]
    """CatalogItem -> store (metadata, and a basis vector for titles that have none)."""

    def __init__(self, store_url: str, batch_size: int = 500) -> None:
        super().__init__()
        self.store_url, self.batch_size = store_url, batch_size

    def expand(self, items: beam.PCollection) -> beam.PCollection:
        return items | "UpsertItems" >> beam.ParDo(WriteCatalog(self.store_url, self.batch_size))
