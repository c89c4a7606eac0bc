"""Store sinks: buffering DoFns that turn many small updates into few batched store writes.

Every sink opens its own store from a URL in ``setup`` (so it works on any worker of any runner),
buffers in memory, and flushes when the buffer reaches ``batch_size`` and at the end of every
bundle (``finish_bundle``): nothing is held across a bundle boundary, so a runner that commits a
bundle has also seen its writes reach the store.

Writes are either replacements (users, lists, items: replaying them is harmless) or increments
(co-watch, item counts, item vectors) that only ever receive updates the per-user dedup let
through (see docs/pipelines.md, "Delivery guarantee").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from streamrec.events.model import CatalogItem
from streamrec.recommend.vectors import item_basis, item_vector_increments
from streamrec.store import Store, open_store
from streamrec.store.base import RankedList, UserState

Increments = tuple[dict[tuple[str, str], int], dict[str, int]]  # (co-watch pairs, item counts)


class _StoreDoFn(beam.DoFn):
    """Opens the store once per DoFn instance; subclasses buffer and implement ``flush``."""

    def __init__(self, store_url: str, batch_size: int = 500) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.store_url = store_url
        self.batch_size = batch_size
        self.store: Store | None = None
        self.writes = Metrics.counter(type(self).__name__, "store_writes")

    def setup(self) -> None:
        self.store = open_store(self.store_url)

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _store(self) -> Store:
        if self.store is None:  # setup() not yet run on this instance (some runners reuse lazily)
            self.setup()
        assert self.store is not None
        return self.store


class _KeyedBufferDoFn(_StoreDoFn):
    """Buffers one value per key (``keep`` decides which of two wins), flushes with ``write``
    when ``batch_size`` keys are held and at the end of every bundle."""

    def key(self, value: Any) -> str:
        raise NotImplementedError

    def keep(self, held: Any, new: Any) -> bool:
        return True  # the newest value of a key wins

    def write(self, store: Store, values: list[Any]) -> None:
        raise NotImplementedError

    def start_bundle(self) -> None:
        self.buffer: dict[str, Any] = {}

    def process(self, value: Any) -> None:
        key = self.key(value)
        held = self.buffer.get(key)
        if held is None or self.keep(held, value):
            self.buffer[key] = value
        if len(self.buffer) >= self.batch_size:
            self.flush()

    def finish_bundle(self) -> None:
        self.flush()

    def flush(self) -> None:
        if self.buffer:
            values = list(self.buffer.values())
            self.buffer = {}
            self.write(self._store(), values)


class WriteUserStates(_KeyedBufferDoFn):
    """Buffers user snapshots, newest per user wins, and writes them with one ``put_users``."""

    def key(self, value: UserState) -> str:
        return value.user_id

    def write(self, store: Store, values: list[UserState]) -> None:
        store.put_users(values)
        self.writes.inc()


class CombineIncrements(beam.DoFn):
    """Sums co-watch and item-count increments over a bundle and emits one combined pair per
    ``batch_size`` inputs and at the end of the bundle: pairs are added before they are written."""

    def __init__(self, batch_size: int = 2000) -> None:
        self.batch_size = batch_size

    def start_bundle(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.pairs: dict[tuple[str, str], int] = {}
        self.counts: dict[str, int] = {}
        self.inputs = 0
        self.first_ts: Timestamp = MAX_TIMESTAMP

    def process(self, increments: Increments, timestamp: Any = beam.DoFn.TimestampParam) -> Iterator[Increments]:
        pairs, counts = increments
        for pair, n in pairs.items():
            self.pairs[pair] = self.pairs.get(pair, 0) + n
        for video_id, n in counts.items():
            self.counts[video_id] = self.counts.get(video_id, 0) + n
        self.inputs += 1
        self.first_ts = min(self.first_ts, timestamp)
        if self.inputs >= self.batch_size:
            combined = (self.pairs, self.counts)
            self._reset()
            yield combined

    def finish_bundle(self) -> Iterator[WindowedValue]:
        if self.inputs:
            # Emitted in the global window at the bundle's earliest input time, so it is never
            # behind the watermark hold of what produced it.
            yield WindowedValue((self.pairs, self.counts), self.first_ts, (GlobalWindow(),))
        self._reset()


class WriteIncrements(_StoreDoFn):
    """Writes combined co-watch pairs and item counts (each call one store transaction)."""

    def process(self, increments: Increments) -> None:
        pairs, counts = increments
        store = self._store()
        if pairs:
            store.add_cowatch(pairs)
        if counts:
            store.add_item_counts(counts)
        self.writes.inc()


class WriteItemVectors(_StoreDoFn):
    """Adds the item-vector deltas of combined co-watch increments to the stored raw vectors.

    The online rule is :mod:`streamrec.recommend.vectors`: a title's raw vector is its fixed
    random basis plus the count-weighted sum of its neighbours' bases, so an increment of
    ``n`` on ``(a, b)`` adds ``n * basis(b)`` to ``a``'s vector. Read-add-write per batch; the
    pipeline routes every title's deltas to one writer (see ItemVectors)."""

    def process(self, deltas: Mapping[str, np.ndarray]) -> None:
        if not deltas:
            return
        store = self._store()
        current = store.get_item_vectors(list(deltas))
        updated = {}
        for video_id, delta in deltas.items():
            base = current.get(video_id)
            if base is None:
                base = item_basis(video_id, delta.shape[0])
            updated[video_id] = (np.asarray(base, dtype=np.float32) + delta).astype(np.float32)
        store.put_item_vectors(updated)
        self.writes.inc()


def vector_deltas(increments: Increments) -> dict[str, np.ndarray]:
    """Item-vector deltas of one combined batch of co-watch increments."""
    return item_vector_increments(increments[0])


class WriteRankedLists(_KeyedBufferDoFn):
    """Writes ranked lists, keeping per key the one with the newest ``window_end``: a late pane of
    an older window must not replace the list of a newer one (checked against the store too)."""

    def key(self, value: RankedList) -> str:
        return value.key

    def keep(self, held: RankedList, new: RankedList) -> bool:
        return (new.window_end or 0) >= (held.window_end or 0)

    def write(self, store: Store, values: list[RankedList]) -> None:
        stored = store.get_lists([r.key for r in values])
        newer = [r for r in values if r.key not in stored or self.keep(stored[r.key], r)]
        if newer:
            store.put_lists(newer)
            self.writes.inc()


class WriteCatalog(_KeyedBufferDoFn):
    """Upserts catalog items; a title without a vector gets its basis vector so it can be
    recommended (by vector and content) before anyone has watched it."""

    def key(self, value: CatalogItem) -> str:
        return value.video_id

    def write(self, store: Store, values: list[CatalogItem]) -> None:
        store.upsert_items(values)
        have = store.get_item_vectors([item.video_id for item in values])
        missing = {item.video_id: item_basis(item.video_id).copy() for item in values if item.video_id not in have}
        if missing:
            store.put_item_vectors(missing)
        self.writes.inc()
