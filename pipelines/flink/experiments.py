"""What the Flink job's experiment functions do, without Flink: attribution and per-variant counts.

    impressions topic --batched--> impressions by viewer shard --+
    events topic -----batched--> plays/completes by viewer shard -+-> AttributionFn (viewer shard:
        each viewer's ViewerAttribution in MapState; streamrec.experiments.attribution's rules)
        -> count increments by experiment -> ExperimentCountsFn (experiment: its totals in
        ValueState) -> count lists replaced by value in the store

The rules are :mod:`streamrec.experiments.attribution`'s; the store layout
:mod:`streamrec.experiments.storage`'s. Both keyed states are in Flink's checkpoint with the
offsets of both topics, and the count lists are written by value from the totals once a completed
checkpoint covers them (held writes, ``pipelines.flink.core``): after a crash the job restores,
replays and writes the same numbers again, and a job started afresh from the group's offsets
starts each list from the store, which holds nothing past the last checkpoint. (A fresh job has no
attribution state, though: a play whose impression came before the start is not credited, and a
viewer already counted that day is counted again.) Nothing here imports PyFlink.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pipelines.flink.core import Pending, StoreUser, dead_letter
from streamrec.events.codec import EventCodec, default_codec
from streamrec.events.errors import EventError
from streamrec.events.model import DeadLetter, Impression, UserEvent
from streamrec.experiments.attribution import (
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
from streamrec.model import RankedList

__all__ = [
    "CountsWriter",
    "ExperimentTotals",
    "attribute",
    "by_experiment",
    "by_shard",
    "expired",
    "hold_increments",
    "impressions_of",
    "merged_counts",
    "viewer_shard",
    "watches_of",
]

#: A Kafka record as the job's SQL source hands it over: (offset, key, value).
Record = tuple[int, bytes | None, bytes | None]
ListKey = tuple[str, int, str, str]  # (experiment, window, variant, metric): one count list
STAGE = "attribute_plays"


def viewer_shard(user_id: str, shards: int) -> int:
    return zlib.crc32(user_id.encode()) % shards


def impressions_of(records: Iterable[Record], topic: str, partition: int,
                   codec: EventCodec | None = None) -> tuple[list[Impression], list[DeadLetter]]:
    """The impressions of a batch, and a dead letter for each record that is not one."""
    codec = codec or default_codec()
    found, dead = [], []
    for offset, key, value in records:
        try:
            if value is None:
                raise EventError("body", "empty record")
            record = codec.decode(value)
            if not isinstance(record, Impression):
                raise EventError("record", f"not an impression: {type(record).__name__}")
            found.append(record)
        except EventError as exc:
            dead.append(dead_letter(value, key, topic, partition, offset, exc, STAGE))
    return found, dead


def watches_of(records: Iterable[Record], codec: EventCodec | None = None) -> list[tuple[str, Watch]]:
    """The plays and completes of a batch of events, by viewer (what cannot be decoded is left to
    the user-state stage, which dead-letters it once)."""
    codec = codec or default_codec()
    out = []
    for _, _, value in records:
        if value is None:
            continue
        try:
            event = codec.decode_event(value)
        except EventError:
            continue
        if isinstance(event, UserEvent) and event.event_type.value in WATCH_KINDS and event.video_id:
            out.append((event.user_id, Watch(event.event_id, event.event_type.value, event.video_id, event.timestamp)))
    return out


def by_shard(pairs: Iterable[tuple[str, object]], shards: int) -> dict[int, list[tuple[str, object]]]:
    out: dict[int, list[tuple[str, object]]] = {}
    for user_id, value in pairs:
        out.setdefault(viewer_shard(user_id, shards), []).append((user_id, value))
    return out


def attribute(viewers: Mapping[str, ViewerAttribution], impressions: Sequence[tuple[str, Impression]],
              watches: Sequence[tuple[str, Watch]]) -> tuple[dict[str, ViewerAttribution], dict[CountKey, int]]:
    """Apply a batch (impressions first: a play read in the same batch finds its impression);
    returns the viewers changed and the count increments."""
    changed: dict[str, ViewerAttribution] = {}
    counts: dict[CountKey, int] = {}

    def state_of(user_id: str) -> ViewerAttribution:
        if user_id not in changed:
            changed[user_id] = viewers.get(user_id) or ViewerAttribution()
        return changed[user_id]

    for user_id, impression in sorted(impressions, key=lambda ui: ui[1].timestamp):
        for key, n in on_impression(state_of(user_id), impression).items():
            counts[key] = counts.get(key, 0) + n
    for user_id, watch in sorted(watches, key=lambda uw: uw[1].ts):
        for key, n in on_watch(state_of(user_id), watch).items():
            counts[key] = counts.get(key, 0) + n
    return changed, counts


def expired(viewers: Iterable[tuple[str, ViewerAttribution]], shown_until: int,
            watched_until: int) -> tuple[list[str], dict[str, ViewerAttribution]]:
    """Viewers with nothing left to credit (to remove), and the others trimmed (to write back);
    ``shown_until``/``watched_until``: the newest impression and watch times the shard has read."""
    gone, kept = [], {}
    for user_id, state in viewers:
        if expire(state, shown_until=shown_until, watched_until=watched_until):
            gone.append(user_id)
        else:
            kept[user_id] = state
    return gone, kept


def merged_counts(parts: Iterable[Mapping[CountKey, int]]) -> dict[CountKey, int]:
    """Count increments added up."""
    total: dict[CountKey, int] = {}
    for part in parts:
        for key, n in part.items():
            total[key] = total.get(key, 0) + n
    return total


HELD_GROUPS = 8  # held increment groups at most (a slow checkpoint must not make the state grow)


def hold_increments(pending: Pending, increments: Mapping[CountKey, int], limit: int = HELD_GROUPS) -> None:
    """Hold ``increments`` until a checkpoint covers them, in at most ``limit`` groups: when full,
    the newest group is merged into the new one, which takes the new time. Merging an earlier
    write into a later one only delays it (never releases anything early), and the older groups
    keep their times, so they are released by the next covering checkpoint; then new groups start
    again and the merged one stops moving."""
    if len(pending.groups) >= limit:
        _, newest = pending.groups.pop()
        increments = merged_counts([newest, increments])
    pending.add(dict(increments))


@dataclass
class ExperimentTotals:
    """One experiment's totals as this job has released them, and which count lists it has
    started from the store (a list this job has not touched yet starts from its stored value)."""

    totals: dict[CountKey, int] = field(default_factory=dict)
    loaded: set[ListKey] = field(default_factory=set)


class CountsWriter(StoreUser):
    """Adds released increments (those a completed checkpoint covers, ``pipelines.flink.core``) to
    an experiment's totals, each list started from the store the first time it is touched, and
    writes the lists they changed by value: the store never holds an effect of an event after the
    last completed checkpoint, so a job started afresh from the group's offsets may read its
    starting values from the store."""

    def add(self, held: ExperimentTotals, increments: Mapping[CountKey, int], now_ms: int) -> list[RankedList]:
        touched = {(k[0], k[1], k[2], k[3]) for k in increments}
        missing = [t for t in touched if t not in held.loaded]
        if missing:
            keys = [counts_key(*t) for t in missing]
            stored = self.call("get_lists", lambda store: store.get_lists(keys))
            for key, n in counts_from_lists(stored.values()).items():
                held.totals.setdefault(key, n)
            held.loaded.update(missing)
        for key, n in increments.items():
            held.totals[key] = held.totals.get(key, 0) + n
        return counts_lists(held.totals, touched, now_ms)

    def write(self, ready: Iterable[Sequence[RankedList]]) -> int:
        """The newest version of every list in ``ready`` (held batches, oldest first), by value."""
        newest: dict[str, RankedList] = {}
        for lists in ready:
            newest.update((r.key, r) for r in lists)
        if newest:
            self.call("put_lists", lambda store: store.put_lists(list(newest.values())))
        return len(newest)
