"""Store sinks: buffering DoFns that turn many small updates into few batched store writes.

Every sink opens its own store from a URL on first use (so it works on any worker of any runner),
buffers in memory, and flushes when the buffer reaches ``batch_size`` and at the end of every
bundle (``finish_bundle``): nothing is held across a bundle boundary, so a runner that commits a
bundle has also seen its writes reach the store.

Failure handling (issue 11, defects 2 and 7):

- every store call is retried with exponential backoff within a bounded budget while the store
  is unavailable (:func:`streamrec.store.retry.retry`): an outage of seconds pauses the sink;
- a batch write that fails for another reason (a record too big, a value the store refuses) is
  retried record by record, and each record that still fails becomes a :class:`DeadLetter`
  (reason, stage, the record's key: the user id for users) on the sink's output, which the job
  routes to the dead-letter topic: one bad record never fails its batch, and a restart does not
  replay into the same failure.

Sinks whose inputs come from Kafka (:class:`~pipelines.offsets.Sourced`) emit an
:class:`~pipelines.offsets.Ack` of those offsets after the write that stored their effect (see
:mod:`pipelines.offsets`).

Writes are either replacements (users, lists, items: replaying them is harmless) or increments
(co-watch, item counts, item vectors) that only ever receive updates the per-user dedup let
through (see docs/pipelines.md, "Delivery guarantee").
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.offsets import Position, acks_for, unwrap
from streamrec.events.model import CatalogItem, DeadLetter
from streamrec.model import RankedList, UserState
from streamrec.recommend.vectors import item_basis, item_vector_increments
from streamrec.store import Store, StoreError, StoreUnavailable
from streamrec.store.base import UserChange
from streamrec.store.retry import DEFAULT_BACKOFF, Backoff, RetryingStore

Increments = tuple[dict[tuple[str, str], int], dict[str, int]]  # (co-watch pairs, item counts)
#: The user sink's second output: the combined increments it wrote (ItemVectors reads them).
TAG_INCREMENTS = "increments"


class _StoreDoFn(beam.DoFn):
    """Opens the store on first use; every store call goes through :meth:`_call` (retried while
    the store is unavailable). Subclasses buffer and implement ``flush``."""

    def __init__(self, store_url: str, batch_size: int = 500, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        self.store_url = store_url
        self.batch_size = batch_size
        self.backoff = backoff
        self.writes = Metrics.counter(type(self).__name__, "store_writes")
        self.dead_letters = Metrics.counter(type(self).__name__, "dead_letters")

    def setup(self) -> None:
        # Opened on first use, so a store down at start-up is waited for there.
        self.store = RetryingStore(self.store_url, type(self).__name__, self.backoff)

    def teardown(self) -> None:
        self.store.close()

    def _call(self, what: str, fn: Any) -> Any:
        """``fn(store)``, retried with backoff while the store is unavailable."""
        if not hasattr(self, "store"):  # setup() not yet run on this instance
            self.setup()
        return self.store.call(what, fn)


class _KeyedBufferDoFn(_StoreDoFn):
    """Buffers one value per key (``merge`` decides what two values of a key make), flushes with
    ``write`` when ``batch_size`` keys are held and at the end of every bundle. Outputs dead
    letters of the records the store refused, and Acks of the Kafka offsets of what it wrote."""

    STAGE = "write"

    def key(self, value: Any) -> str:
        raise NotImplementedError

    def keep(self, held: Any, new: Any) -> bool:
        return True  # the newest value of a key wins

    def merge(self, held: Any, new: Any) -> Any:
        return new if self.keep(held, new) else held

    def write(self, store: Store, values: list[Any]) -> list[Any]:
        """Write ``values``; returns what to output once they are stored (usually nothing)."""
        raise NotImplementedError

    def start_bundle(self) -> None:
        self.buffer: dict[str, Any] = {}
        self.positions: list[Position] = []
        self.first_ts: Timestamp = MAX_TIMESTAMP

    def process(self, value: Any, timestamp: Any = beam.DoFn.TimestampParam) -> Iterator[Any]:
        value, positions = unwrap(value)
        self.positions.extend(positions)
        self.first_ts = min(self.first_ts, timestamp)
        if value is not None:
            key = self.key(value)
            held = self.buffer.get(key)
            self.buffer[key] = value if held is None else self.merge(held, value)
        if len(self.buffer) >= self.batch_size:
            yield from self.flush()

    def finish_bundle(self) -> Iterator[Any]:
        for out in self.flush():
            # In the global window at the bundle's earliest input time: never behind the
            # watermark hold of what produced it.
            if isinstance(out, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(out.tag, WindowedValue(out.value, self.first_ts, (GlobalWindow(),)))
            else:
                yield WindowedValue(out, self.first_ts, (GlobalWindow(),))

    def flush(self) -> Iterator[Any]:
        values, positions = list(self.buffer.values()), self.positions
        self.buffer, self.positions = {}, []
        if values:
            yield from self._write_or_dead_letter(values)
        yield from acks_for(positions)  # after the write that stored their effect

    def _write_or_dead_letter(self, values: list[Any]) -> list[Any]:
        try:
            outputs: list[Any] = self._call(self.STAGE, lambda store: self.write(store, values))
            self.writes.inc()
            return outputs
        except StoreUnavailable:
            raise  # the retry budget is spent: fail the bundle, the runner retries it
        except (StoreError, ValueError) as exc:
            if len(values) == 1:
                self.dead_letters.inc()
                return [self.dead_letter(values[0], exc)]
        # One record spoiled the batch: write them one by one, the refused ones become dead letters.
        return [out for value in values for out in self._write_or_dead_letter([value])]

    def dead_letter(self, value: Any, exc: Exception) -> DeadLetter:
        key = self.key(value)
        return DeadLetter(original=b"", original_key=key.encode(errors="replace"), topic="", partition=-1,
                          offset=-1, reason=f"{type(exc).__name__}: {key!r}: {exc}",
                          failed_at=int(time.time() * 1000), stage=self.STAGE)


class UserWrite(NamedTuple):
    """What UpdateUserState hands the user sink for one pane: the new state (None: nothing
    changed, only the offsets to acknowledge), the co-watch and item-count increments its events
    produced, the ids of the events it applied, and the Kafka positions of its events."""

    state: UserState | None
    pairs: dict[tuple[str, str], int]
    counts: dict[str, int]
    positions: tuple[Position, ...] = ()
    event_ids: tuple[str, ...] = ()


class WriteUserUpdates(_KeyedBufferDoFn):
    """Writes user states together with the counters their events produced
    (``Store.apply_user_updates``: one transaction on SQLite, and a pane whose events the stored
    user already holds adds nothing again, so a retried or re-run bundle never counts twice),
    then acknowledges the panes' Kafka offsets. Per user the panes of a batch are kept in order
    (the newest state is written last). Outputs dead letters and Acks (main) and the increments
    it added (``increments``, for ItemVectors)."""

    STAGE = "write_users"

    def key(self, value: list[UserWrite]) -> str:
        state = value[0].state
        assert state is not None
        return state.user_id

    def process(self, value: UserWrite, timestamp: Any = beam.DoFn.TimestampParam) -> Iterator[Any]:
        self.positions.extend(value.positions)
        yield from super().process(None if value.state is None else [value._replace(positions=())], timestamp)

    def merge(self, held: list[UserWrite], new: list[UserWrite]) -> list[UserWrite]:
        return held + new

    def write(self, store: Store, values: list[list[UserWrite]]) -> list[Any]:
        changes = [UserChange(w.state, w.pairs, w.counts, w.event_ids) for panes in values for w in panes
                   if w.state is not None]
        pairs, counts = store.apply_user_updates(changes)
        return [beam.pvalue.TaggedOutput(TAG_INCREMENTS, (pairs, counts))] if pairs or counts else []


class WriteItemVectors(_StoreDoFn):
    """Adds the item-vector deltas of combined co-watch increments to the stored raw vectors.

    The online rule is :mod:`streamrec.recommend.vectors`: a title's raw vector is its fixed
    random basis plus the count-weighted sum of its neighbours' bases, so an increment of
    ``n`` on ``(a, b)`` adds ``n * basis(b)`` to ``a``'s vector. Read-add-write per batch; the
    pipeline routes every title's deltas to one writer (see ItemVectors)."""

    def process(self, deltas: Mapping[str, np.ndarray]) -> None:
        if not deltas:
            return
        current = self._call("get_item_vectors", lambda store: store.get_item_vectors(list(deltas)))
        updated = {}
        for video_id, delta in deltas.items():
            base = current.get(video_id)
            if base is None:
                base = item_basis(video_id, delta.shape[0])
            updated[video_id] = (np.asarray(base, dtype=np.float32) + delta).astype(np.float32)
        self._call("put_item_vectors", lambda store: store.put_item_vectors(updated))
        self.writes.inc()


def vector_deltas(increments: Increments) -> dict[str, np.ndarray]:
    """Item-vector deltas of one combined batch of co-watch increments."""
    return item_vector_increments(increments[0])


class WriteRankedLists(_KeyedBufferDoFn):
    """Writes ranked lists, keeping per key the one with the newest ``window_end``: a late pane of
    an older window must not replace the list of a newer one (checked against the store too)."""

    STAGE = "write_lists"

    def key(self, value: RankedList) -> str:
        return value.key

    def keep(self, held: RankedList, new: RankedList) -> bool:
        return (new.window_end or 0) >= (held.window_end or 0)

    def write(self, store: Store, values: list[RankedList]) -> list[Any]:
        stored = store.get_lists([r.key for r in values])
        newer = [r for r in values if r.key not in stored or self.keep(stored[r.key], r)]
        if newer:
            store.put_lists(newer)
        return []


class WriteCatalog(_KeyedBufferDoFn):
    """Upserts catalog items; a title without a vector gets its basis vector so it can be
    recommended (by vector and content) before anyone has watched it."""

    STAGE = "write_catalog"

    def key(self, value: CatalogItem) -> str:
        return value.video_id

    def write(self, store: Store, values: list[CatalogItem]) -> list[Any]:
        store.upsert_items(values)
        have = store.get_item_vectors([item.video_id for item in values])
        missing = {item.video_id: item_basis(item.video_id).copy() for item in values if item.video_id not in have}
        if missing:
            store.put_item_vectors(missing)
        return []
