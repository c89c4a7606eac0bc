# ruff: noqa: B008  -- Beam declares DoFn state parameters as defaults
"""MeasureExperiments: impressions and plays -> per-variant experiment counts in the store.

    (impressions, events) -> KeyByViewer -> Attribute (keyed by viewer: the core's rules,
        streamrec.experiments.attribution; an event-time timer forgets what can no longer be
        credited) -> increments by experiment -> ExperimentCounts (keyed by experiment: the
        totals, written by value as count lists) -> Acks of the impressions

The rules are the core's, as in the Flink job (``pipelines/flink/experiments.py``). The watermark
of the flattened input is the slower of the two topics', so the expiry timer fires only once
both streams are read past it (the two clocks of ``attribution.expire``).

Delivery (the Beam job's, docs/pipelines.md): an impression's offset is acknowledged once the
counts it changed are written. Keyed state does not survive a restart of this job on Prism: the
counts start again from the stored lists (an impression counted but not yet acknowledged when the
job died is counted again: at least once), and a play read after a restart whose impression was
read before it is not credited. The Flink job keeps both states in its checkpoints (exact).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)

from pipelines.decode import _Decode
from pipelines.offsets import Ack, unwrap
from streamrec.events.model import Impression, UserEvent
from streamrec.experiments.attribution import (
    ATTRIBUTION_WINDOW_MS,
    SKEW_MS,
    WATCH_KINDS,
    CountKey,
    ViewerAttribution,
    Watch,
    by_experiment,
    expire,
    on_impression,
    on_watch,
)
from streamrec.experiments.storage import counts_from_lists, counts_key, counts_lists
from streamrec.store.retry import RetryingStore


class DecodeImpressions(_Decode):
    """KafkaRecord -> (Impression, DeadLetter)."""

    def __init__(self, with_positions: bool = False) -> None:
        super().__init__(Impression, "decode_impressions", with_positions)


def _shown(value: Any) -> Iterator[tuple[str, tuple[str, Any, Any]]]:
    impression, positions = unwrap(value)
    yield impression.user_id, ("impression", impression, positions)


def _watched(value: Any) -> Iterator[tuple[str, tuple[str, Any, Any]]]:
    event, _ = unwrap(value)  # the user sink acknowledges the events
    if isinstance(event, UserEvent) and event.event_type.value in WATCH_KINDS and event.video_id:
        yield event.user_id, ("watch", Watch(event.event_id, event.event_type.value, event.video_id, event.timestamp), ())


class AttributeFn(beam.DoFn):  # type: ignore[misc]
    """Keyed by viewer: the viewer's ``ViewerAttribution``; increments out by experiment (with the
    positions of the impressions they came from, so they are acknowledged once written)."""

    VIEWER = ReadModifyWriteStateSpec("viewer", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def process(self, element: tuple[str, tuple[str, Any, Any]], viewer: Any = beam.DoFn.StateParam(VIEWER),
                expiry: Any = beam.DoFn.TimerParam(EXPIRY)) -> Iterator[tuple[str, tuple[dict[CountKey, int], Any]]]:
        _user, (kind, value, positions) = element
        state = viewer.read() or ViewerAttribution()
        counts = on_impression(state, value) if kind == "impression" else on_watch(state, value)
        viewer.write(state)
        expiry.set((state.newest_ts + ATTRIBUTION_WINDOW_MS + SKEW_MS) / 1000.0)
        parts = by_experiment(counts)
        if positions and not parts:
            parts = {"": {}}  # nothing to count (no experiment): acknowledged all the same
        for index, (experiment, part) in enumerate(parts.items()):
            yield experiment, (part, positions if index == 0 else ())

    @on_timer(EXPIRY)
    def expire_viewer(self, fired: Any = beam.DoFn.TimestampParam, viewer: Any = beam.DoFn.StateParam(VIEWER),
                      expiry: Any = beam.DoFn.TimerParam(EXPIRY)) -> None:
        state = viewer.read()
        if state is None:
            return
        now_ms = int(fired.micros // 1000)
        if expire(state, shown_until=now_ms, watched_until=now_ms):
            viewer.clear()
        else:
            viewer.write(state)
            expiry.set((now_ms + ATTRIBUTION_WINDOW_MS + SKEW_MS) / 1000.0)


class ExperimentCountsFn(beam.DoFn):  # type: ignore[misc]
    """Keyed by experiment: its totals (started from the stored lists the first time a list is
    touched), the touched lists written by value, then the impressions acknowledged."""

    TOTALS = ReadModifyWriteStateSpec("totals", PickleCoder())

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self.store: RetryingStore | None = None

    def setup(self) -> None:
        self.store = RetryingStore(self.store_url, "ExperimentCounts")

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()

    def process(self, element: tuple[str, tuple[dict[CountKey, int], Any]],
                held: Any = beam.DoFn.StateParam(TOTALS)) -> Iterator[Ack]:
        assert self.store is not None
        experiment, (increments, positions) = element
        if experiment and increments:
            previous = held.read()
            totals: dict[CountKey, int] = previous[0] if previous else {}
            loaded: set[tuple[str, int, str, str]] = previous[1] if previous else set()
            touched = {(key[0], key[1], key[2], key[3]) for key in increments}
            missing = [counts_key(*t) for t in touched if t not in loaded]
            if missing:
                stored = self.store.call("get_lists", lambda store: store.get_lists(missing))
                for key, n in counts_from_lists(stored.values()).items():
                    totals.setdefault(key, n)
                loaded |= touched
            for key, n in increments.items():
                totals[key] = totals.get(key, 0) + n
            lists = counts_lists(totals, touched, int(time.time() * 1000))
            self.store.call("put_lists", lambda store: store.put_lists(lists))
            held.write((totals, loaded))
        for topic, partition, offset in positions:
            yield Ack(topic, partition, (offset,))


class MeasureExperiments(beam.PTransform):  # type: ignore[misc]
    """(impressions, events), each a PCollection of values or ``Sourced`` values -> Acks of the
    impressions whose counts are stored (see the module docstring)."""

    def __init__(self, store_url: str) -> None:
        super().__init__()
        self.store_url = store_url

    def expand(self, inputs: tuple[beam.PCollection, beam.PCollection]) -> beam.PCollection:
        impressions, events = inputs
        shown = impressions | "KeyImpressions" >> beam.FlatMap(_shown)
        watched = events | "KeyWatches" >> beam.FlatMap(_watched)
        return ((shown, watched)
                | "Merge" >> beam.Flatten()
                | "Attribute" >> beam.ParDo(AttributeFn())
                | "ExperimentCounts" >> beam.ParDo(ExperimentCountsFn(self.store_url)))
