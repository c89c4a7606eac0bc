# ruff: noqa: B008  -- Beam declares DoFn state parameters as defaults
"""NewReleases: the catalog and the watch stream -> ``new_releases:<region>`` lists in the store.

    CatalogItem ----per bundle, per region--> {video_id: added_at}  \\
                                                                     +-> NewReleasesFn (keyed by region)
    (region, video_id) watches --per bundle--> (clock, {video_id: n}) /      -> RankedList -> store

The rule is :mod:`streamrec.recommend.releases` (one copy, the evaluation and any other engine
call the same). Per region key the stateful DoFn holds a :class:`ReleasePool`: the titles not
aged out yet, the watches since each was added, and the clock (the newest watch's event time).
Every input changes the pool and writes the region's list again (inputs are per bundle, so a
busy stream costs a few list writes per second, not one per watch).

The pool is bounded by age (``max_age_days``) and per region, so it needs no expiry timer. A
restarted job has no pool: on a key's first input it is recovered from the list in the store
(the titles on it, their day and watches read back from the scores), so a restart never
replaces a full list with an empty one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms import window
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.sinks import WriteRankedLists
from streamrec.events.model import CatalogItem
from streamrec.model import RankedList, new_releases_key
from streamrec.recommend.releases import (
    DAY_MS,
    DEFAULT_LIST_SIZE,
    DEFAULT_MAX_AGE_DAYS,
    GLOBAL,
    ReleasePool,
    release_regions,
)
from streamrec.store.retry import RetryingStore

ADDED = "added"  # {video_id: added_at | None} of a bundle's catalog records
WATCHED = "watched"  # (newest event time, {video_id: watches}) of a bundle's watches


class _CatalogPerRegion(beam.DoFn):
    """Catalog records of a bundle -> one ``(region, (ADDED, {video_id: added_at}))`` per region."""

    def start_bundle(self) -> None:
        self.added: dict[str, dict[str, int | None]] = {}

    def process(self, item: CatalogItem) -> None:
        for region in release_regions(item):
            self.added.setdefault(region, {})[item.video_id] = item.added_at

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for region, added in self.added.items():
            yield WindowedValue((region, (ADDED, added)), MIN_TIMESTAMP, (GlobalWindow(),))
        self.added = {}


class _WatchesPerRegion(beam.DoFn):
    """Watches of a bundle -> one ``(region, (WATCHED, (newest_ms, counts)))`` for each region seen
    and for the global list."""

    def start_bundle(self) -> None:
        self.watched: dict[str, tuple[int, dict[str, int]]] = {}

    def process(self, watch: tuple[Any, ...], timestamp: Any = beam.DoFn.TimestampParam) -> None:
        region, video_id = watch[0], watch[1]
        ts_ms = int(timestamp.micros // 1000)
        for r in {region, GLOBAL}:
            newest, counts = self.watched.get(r, (ts_ms, {}))
            counts[video_id] = counts.get(video_id, 0) + 1
            self.watched[r] = (max(newest, ts_ms), counts)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for region, (newest, counts) in self.watched.items():
            yield WindowedValue((region, (WATCHED, (newest, counts))), Timestamp(micros=newest * 1000),
                                (GlobalWindow(),))
        self.watched = {}


class NewReleasesFn(beam.DoFn):
    """Keyed by region; see the module docstring."""

    POOL = ReadModifyWriteStateSpec("release_pool", PickleCoder())

    def __init__(self, store_url: str, max_age_days: float, n: int) -> None:
        self.store_url, self.max_age_ms, self.n = store_url, int(max_age_days * DAY_MS), n
        self.store: RetryingStore | None = None

    def setup(self) -> None:
        self.store = RetryingStore(self.store_url, "new_releases")

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()

    def process(self, keyed: tuple[str, tuple[str, Any]], pool_state: Any = beam.DoFn.StateParam(POOL)
                ) -> Iterator[RankedList]:
        region, (kind, payload) = keyed
        key = new_releases_key(region)
        pool: ReleasePool | None = pool_state.read()
        if pool is None:
            assert self.store is not None
            stored = self.store.call("get_lists", lambda store: store.get_lists([key])).get(key)
            pool = ReleasePool.from_list(stored.items) if stored else ReleasePool()
        if kind == ADDED:
            for video_id, added_at in payload.items():
                pool.add(video_id, added_at, self.max_age_ms)
        else:
            newest, counts = payload
            pool.advance(newest, self.max_age_ms)
            pool.watched(counts)
        pool_state.write(pool)
        yield RankedList(key=key, items=pool.ranked(self.n), updated_at=int(time.time() * 1000))


class NewReleases(beam.PTransform):  # type: ignore[misc]
    """(catalog items, watches) -> ``new_releases:<region>`` RankedLists, written to the store.
    Returns the lists written."""

    def __init__(self, store_url: str, max_age_days: float = DEFAULT_MAX_AGE_DAYS, n: int = DEFAULT_LIST_SIZE) -> None:
        super().__init__()
        self.store_url, self.max_age_days, self.n = store_url, max_age_days, n

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        items, watches = inputs
        # The state is per key, not per window: one pool per region for the job's lifetime. Both
        # inputs are put in the global window with the default trigger (no grouping follows; the
        # watches come with UpdateUserState's per-pane trigger, which a Flatten must not mix).
        added = (items
                 | "CatalogPerRegion" >> beam.ParDo(_CatalogPerRegion())
                 | "CatalogGlobal" >> beam.WindowInto(window.GlobalWindows()))
        watched = (watches
                   | "WatchesPerRegion" >> beam.ParDo(_WatchesPerRegion())
                   | "WatchesGlobal" >> beam.WindowInto(window.GlobalWindows()))
        lists = (
            (added, watched)
            | "Both" >> beam.Flatten().with_output_types(beam.typehints.Tuple[str, Any])  # str keys: a deterministic coder
            | "PerRegion" >> beam.ParDo(NewReleasesFn(self.store_url, self.max_age_days, self.n))
        )
        _ = lists | "PutLists" >> beam.ParDo(WriteRankedLists(self.store_url))
        return lists


__all__ = ["NewReleases", "NewReleasesFn"]
