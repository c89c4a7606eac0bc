"""What the Flink job's functions do, without Flink: thin adapters over the core's rules.

The Flink functions (:mod:`pipelines.flink.job`) only keep these objects in keyed state and call
them; the rules are :mod:`streamrec.recommend`'s (``apply_event``, ``item_vector_increments``,
``top_n``/``top_per_genre``, ``ReleasePool``) and every write goes through the store contract.
Nothing here imports PyFlink, so it runs (and is unit-tested) in the project's virtualenv too.

**Exactly once on Flink: state and offsets move together, store writes follow completed checkpoints.**
Flink's checkpoint holds the keyed state and the Kafka offsets of one consistent cut (the Kafka
source also commits those offsets to the consumer group when the checkpoint *completes*). PyFlink
gives Python functions no checkpoint hook, so the functions ask the JobManager
(:class:`CheckpointWatch`): a write is held (:class:`Pending`, itself in keyed state) until a
checkpoint triggered after the write was made has completed, i.e. until a completed checkpoint
contains the state change that made it. (The consumer group's committed offsets are not enough:
records waiting in the batching window at a barrier are before the committed offset, yet their
effects are in the *next* checkpoint.) Hence:

- the store never holds an effect of an event after the last completed checkpoint, so after a
  crash (restore from that checkpoint, replay from its offsets) nothing in the store was made by
  the replayed events, and a key this job has never written (absent from keyed state) can be
  read from the store as its starting value;
- held writes are in the checkpoint: after a restore they are written (again); every write is
  idempotent: user states, item vectors and lists are replaced by value; co-watch and item counts
  (the contract only adds) are written as ``target - stored`` where ``target`` is the total the
  keyed state holds (:class:`ItemTotals`), so writing twice adds nothing.

Ranked lists (trending, genre rows, new releases) are replaced by value from the window state and
are written at once (a replay recomputes the same lists; the newest window wins), and the catalog
is upserted at once (replacement). Dead letters go to the DLQ topic at once (at least once).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamrec.events.codec import EventCodec, default_codec
from streamrec.events.errors import EventError
from streamrec.events.model import CatalogItem, DeadLetter, UserEvent
from streamrec.model import (
    RankedList,
    ScoredItem,
    UserState,
    genre_key,
    new_releases_key,
    trending_key,
)
from streamrec.nearline import Refresh, refresh
from streamrec.recommend.live import LiveUser
from streamrec.recommend.releases import DAY_MS, GLOBAL, ReleasePool, release_regions
from streamrec.recommend.state import StateConfig, bound_state
from streamrec.recommend.trending import top_n, top_per_genre
from streamrec.recommend.vectors import item_basis, item_vector_increments
from streamrec.store import Store, StoreUnavailable
from streamrec.store.cache import ReadThrough
from streamrec.store.retry import RetryingStore

#: A Kafka record as the job's SQL source hands it over: (offset, key, value).
Record = tuple[int, bytes | None, bytes | None]
Pairs = dict[tuple[str, str], int]

#: Trending windows as the Beam pipeline has them: (label, size, period) in minutes.
WINDOWS: tuple[tuple[str, int, int], ...] = (("1h", 60, 5), ("24h", 1440, 60))
GENRE_WINDOW = "24h"
BUCKET_MS = 300_000  # every window family is aligned to 5 minutes
LIST_N = 100


def add_counts(total: dict[Any, int], more: Mapping[Any, int]) -> dict[Any, int]:
    for key, n in more.items():
        total[key] = total.get(key, 0) + n
    return total


class StoreUser(RetryingStore):
    """Opens the store on first use; every call retried with backoff while it is unavailable
    (:class:`streamrec.store.retry.RetryingStore`, what the Beam DoFns hold)."""

    def __init__(self, store_url: str) -> None:
        super().__init__(store_url, type(self).__name__)


class CheckpointWatch:
    """The job's newest completed checkpoint as the JobManager's REST API reports it, by the time
    it was *triggered*. A write made before that time is in that checkpoint: its barriers were
    injected at the sources after the trigger, so they reached the function after the write's
    input. Polled at most every ``min_interval_s``; a cached (older) answer only delays a release.
    ``clock_margin_ms`` covers clock skew between a TaskManager and the JobManager (the same
    clock locally; NTP-synchronised nodes in production)."""

    def __init__(self, rest_url: str, job_name: str, min_interval_s: float = 0.05, clock_margin_ms: int = 50) -> None:
        self.rest_url, self.job_name, self.min_interval_s = rest_url.rstrip("/"), job_name, min_interval_s
        self.clock_margin_ms = clock_margin_ms
        self.completed_trigger_ms = 0  # trigger time (epoch ms) of the newest completed checkpoint
        self._job_id: str | None = None
        self._polled_at = 0.0

    def _get(self, path: str) -> Any:
        import json
        import urllib.request

        with urllib.request.urlopen(self.rest_url + path, timeout=5) as response:
            return json.loads(response.read())

    def poll(self) -> None:
        """Refresh if due."""
        if time.monotonic() - self._polled_at < self.min_interval_s:
            return
        try:
            if self._job_id is None:
                jobs = self._get("/jobs/overview")["jobs"]
                running = [j for j in jobs if j["name"] == self.job_name and j["state"] not in ("FAILED", "CANCELED", "FINISHED")]
                if not running:
                    return
                self._job_id = running[0]["jid"]
            stats = self._get(f"/jobs/{self._job_id}/checkpoints")
        except (OSError, ValueError, KeyError):
            self._job_id = None
            return
        self._polled_at = time.monotonic()
        completed = (stats.get("latest") or {}).get("completed") or {}
        self.completed_trigger_ms = max(self.completed_trigger_ms, int(completed.get("trigger_timestamp") or 0))

    def covers(self, made_at_ms: int) -> bool:
        """A completed checkpoint contains what was done at ``made_at_ms`` (wall clock)."""
        return made_at_ms + self.clock_margin_ms < self.completed_trigger_ms

    def close(self) -> None:
        pass


@dataclass
class Pending:
    """Writes held until a completed checkpoint contains the state change that made them (kept in
    keyed state, so a restore holds them again)."""

    groups: list[tuple[int, Any]] = field(default_factory=list)  # (made at: epoch ms, payload)

    def add(self, payload: Any) -> None:
        self.groups.append((int(time.time() * 1000), payload))

    def pop_ready(self, watch: CheckpointWatch) -> list[Any]:
        """The released payloads, in arrival order."""
        if not self.groups:
            return []
        watch.poll()
        ready = [payload for made_at, payload in self.groups if watch.covers(made_at)]
        self.groups = [(made_at, payload) for made_at, payload in self.groups if not watch.covers(made_at)]
        return ready


# -- dead letters -----------------------------------------------------------------------------
def dead_letter(original: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                exc: Exception, stage: str) -> DeadLetter:
    """A record the job cannot use, with the field at fault when the error names one."""
    text = str(exc)
    field_name, _, reason = text.partition(": ") if ": " in text else (None, "", text)
    return DeadLetter(original=original or b"", original_key=key, topic=topic, partition=partition, offset=offset,
                      reason=f"{type(exc).__name__}: {reason}", field=field_name,
                      failed_at=int(time.time() * 1000), stage=stage)


# -- users ------------------------------------------------------------------------------------------
@dataclass
class UserBatch:
    """What one batch of events did: the users it changed (state and last known region), the
    co-watch and item-count increments of the events the state machine applied, the titles newly
    watched ``(region, video_id, event time)``, and the dead letters (undecodable or refused)."""

    users: dict[str, tuple[UserState, str]] = field(default_factory=dict)
    pairs: Pairs = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    watches: list[tuple[str, str, int]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    taste_changed: dict[str, int] = field(default_factory=dict)  # user -> event time of the first change


class UserStateApplier(StoreUser):
    """The per-user state machine over a batch of Kafka records of one partition: decode with the
    project's codec, group by user, apply ``streamrec.recommend.state.apply_event`` in event-time
    order (what UpdateUserState does per pane in the Beam pipeline)."""

    STAGE = "update_user_state"

    def __init__(self, store_url: str, topic: str, config: StateConfig | None = None) -> None:
        super().__init__(store_url)
        self.topic, self.config = topic, config or StateConfig()
        self.codec: EventCodec = default_codec()

    def decode(self, partition: int, records: Iterable[Record], out: UserBatch) -> list[tuple[UserEvent, int]]:
        events = []
        for offset, key, value in records:
            try:
                if value is None:
                    raise EventError("body", "empty record")
                events.append((self.codec.decode_event(value), offset))
            except EventError as exc:
                out.dead_letters.append(dead_letter(value, key, self.topic, partition, offset, exc, "decode_events"))
        return events

    def item_vectors(self, video_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The batch's titles' stored vectors in one read; a title without one folds in its basis."""
        ids = list(dict.fromkeys(video_ids))
        stored = self.call("get_item_vectors", lambda store: store.get_item_vectors(ids)) if ids else {}
        return {v: stored[v] if v in stored else item_basis(v) for v in ids}

    def apply(self, partition: int, records: Iterable[Record],
              load: Callable[[Sequence[str]], dict[str, tuple[UserState, str]]]) -> UserBatch:
        """Apply a batch; ``load(user_ids)`` gives the users' current (state, region): the job's
        keyed state, else the store (see :meth:`load_from_store`)."""
        out = UserBatch()
        events = self.decode(partition, records, out)
        by_user: dict[str, list[tuple[UserEvent, int]]] = {}
        for event, offset in events:
            by_user.setdefault(event.user_id, []).append((event, offset))
        if not by_user:
            return out
        current = load(list(by_user))
        vectors = self.item_vectors(e.video_id for e, _ in events if e.video_id)
        for user_id, user_events in by_user.items():
            state, region = current.get(user_id) or (UserState(user_id=user_id), "")
            # The batch's own copy, changed in place: a snapshot held for a checkpoint is never touched.
            live = LiveUser(state)
            changed = False
            for event, offset in sorted(user_events, key=lambda eo: (eo[0].timestamp, eo[0].event_id)):
                try:
                    update = live.apply(event, config=self.config,
                                        item_vector=vectors.get(event.video_id) if event.video_id else None)
                except ValueError as exc:  # the event does not fit the state: a dead letter, not a crash
                    out.dead_letters.append(dead_letter(self.codec.encode(event), event.user_id.encode(), self.topic,
                                                        partition, offset, exc, self.STAGE))
                    continue
                if not update.applied:
                    out.duplicates += 1
                    continue
                state, changed = update.state, True
                region = event.region or region
                add_counts(out.pairs, update.cowatch)
                add_counts(out.counts, update.item_counts)
                out.watches.extend((region or "unknown", video_id, event.timestamp) for video_id in update.watched)
                if update.refresh_top_picks:
                    out.taste_changed.setdefault(user_id, event.timestamp)
            if changed:
                out.users[user_id] = (state, region)
        return out

    def refresh(self, state: UserState, region: str, k: int) -> Refresh:
        """The feed's own ranking over batched store reads, and the learned ranker's examples
        from the watches since the last refresh (``streamrec.nearline.refresh``)."""
        return self.call("top_picks", lambda store: refresh(store, state, region or None, k))

    def load_from_store(self, user_ids: Sequence[str]) -> dict[str, tuple[UserState, str]]:
        """Users this job has not seen yet start from the store (a backfill, an earlier job)."""
        stored = self.call("get_users", lambda store: store.get_users(list(user_ids)))
        return {user_id: (state, "") for user_id, state in stored.items()}

    def write_users(self, snapshots: Iterable[Mapping[str, UserState]]) -> int:
        """Replace the users (newest snapshot per user wins); returns how many were written."""
        newest: dict[str, UserState] = {}
        for snapshot in snapshots:
            newest.update(snapshot)
        if newest:
            self.call("put_users", lambda store: store.put_users(list(newest.values())))
        return len(newest)


# -- items: co-watch counts, item counts, item vectors ---------------------------------------------------
@dataclass
class ItemTotal:
    """One title's totals as this job has written them (or will, once held writes are released):
    its watch count, its co-watch counts per neighbour (uncut: the store keeps the top K) and its
    raw vector (``basis + sum count * basis(neighbour)``, :mod:`streamrec.recommend.vectors`)."""

    count: int
    neighbours: dict[str, int]
    vector: np.ndarray


def shard_of(video_id: str, shards: int) -> int:
    import zlib

    return zlib.crc32(video_id.encode()) % shards


def split_increments(pairs: Mapping[tuple[str, str], int], counts: Mapping[str, int],
                     shards: int) -> dict[int, tuple[Pairs, dict[str, int]]]:
    """Increments routed by the title they belong to (a pair ``(a, b)`` is ``a``'s: its count row
    and its vector), so one title has one writer."""
    parts: dict[int, tuple[Pairs, dict[str, int]]] = {}
    for (a, b), n in pairs.items():
        parts.setdefault(shard_of(a, shards), ({}, {}))[0][(a, b)] = n
    for video_id, n in counts.items():
        parts.setdefault(shard_of(video_id, shards), ({}, {}))[1][video_id] = n
    return parts


class ItemTotalsWriter(StoreUser):
    """Keeps each title's totals and writes them idempotently (see the module docstring)."""

    def initial(self, video_ids: Sequence[str]) -> dict[str, ItemTotal]:
        """Titles this job has not written yet start from the store."""
        ids = list(video_ids)

        def read(store: Store) -> dict[str, ItemTotal]:
            counts = store.get_item_counts(ids)
            neighbours = store.get_neighbours(ids, 1_000_000)
            vectors = store.get_item_vectors(ids)
            return {v: ItemTotal(counts.get(v, 0), dict(neighbours.get(v, [])),
                                 np.asarray(vectors[v] if v in vectors else item_basis(v), dtype=np.float32).copy())
                    for v in ids}
        result: dict[str, ItemTotal] = self.call("initial", read)
        return result

    def put_missing_vectors(self, initial: Mapping[str, ItemTotal]) -> None:
        """New catalog titles without a stored vector get their starting one (the basis)."""
        ids = list(initial)

        def put(store: Store) -> None:
            have = store.get_item_vectors(ids)
            missing = {v: initial[v].vector for v in ids if v not in have}
            if missing:
                store.put_item_vectors(missing)
        self.call("put_missing_vectors", put)

    def write(self, totals: dict[str, ItemTotal], pairs: Mapping[tuple[str, str], int],
              counts: Mapping[str, int]) -> dict[str, ItemTotal]:
        """Add the released increments to ``totals`` (changed in place, returned: the titles touched)
        and bring the store to them: counts and pairs as ``total - stored``, vectors replaced."""
        touched: dict[str, ItemTotal] = {}
        for video_id, n in counts.items():
            total = touched[video_id] = totals[video_id]
            total.count += n
        for (a, b), n in pairs.items():
            total = touched[a] = totals[a]
            total.neighbours[b] = total.neighbours.get(b, 0) + n
        for video_id, delta in item_vector_increments(pairs).items():
            totals[video_id].vector = (totals[video_id].vector + delta).astype(np.float32)
        ids = list(touched)

        def write(store: Store) -> None:
            stored_counts = store.get_item_counts([v for v in ids if v in counts])
            stored_rows = {a: dict(row) for a, row in
                           store.get_neighbours(list({a for a, _ in pairs}), 1_000_000).items()}
            count_deltas = {v: totals[v].count - stored_counts.get(v, 0) for v in counts}
            pair_deltas = {(a, b): totals[a].neighbours[b] - stored_rows.get(a, {}).get(b, 0) for a, b in pairs}
            count_deltas = {v: n for v, n in count_deltas.items() if n}
            pair_deltas = {p: n for p, n in pair_deltas.items() if n}
            if pair_deltas:
                store.add_cowatch(pair_deltas)
            if count_deltas:
                store.add_item_counts(count_deltas)
            vectors = {a: totals[a].vector for a in {a for a, _ in pairs}}
            if vectors:
                store.put_item_vectors(vectors)
        self.call("write_items", write)
        return touched


# -- ranked lists: trending, genre rows, new releases -------------------------------------------------------
@dataclass
class RegionLists:
    """One region's (or ``global``'s) watch counts per 5-minute bucket and its new-releases pool."""

    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    newest_ms: int | None = None
    pool: ReleasePool | None = None


def window_lists(region: str, lists: RegionLists, genres: Mapping[str, Sequence[str]],
                 now_ms: int) -> list[RankedList]:
    """The newest window of each family (the one the store keeps: newest window wins), as the Beam
    pipeline's sliding windows cut it: ``[start, start + size)`` with ``start`` the newest watch's
    time floored to the period; top ``LIST_N`` by count, and per genre for the ``24h`` family."""
    if lists.newest_ms is None:
        return []
    out = []
    for label, size_min, period_min in WINDOWS:
        size, period = size_min * 60_000, period_min * 60_000
        start = lists.newest_ms // period * period
        counts: dict[str, int] = {}
        for bucket, bucket_counts in lists.buckets.items():
            if start <= bucket * BUCKET_MS < start + size:
                add_counts(counts, bucket_counts)
        end = start + size
        out.append(RankedList(trending_key(label, region), top_n(counts, LIST_N), now_ms, end))
        if label == GENRE_WINDOW:
            for genre, items in sorted(top_per_genre(counts, genres, LIST_N).items()):
                out.append(RankedList(genre_key(genre, region), items, now_ms, end))
    return out


def add_watches(lists: RegionLists, watches: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Count ``(video_id, event time)`` watches in their buckets; drop buckets no window reaches any more.
    Returns the watches per title (the new-releases pool's momentum)."""
    per_title: dict[str, int] = {}
    for video_id, ts in watches:
        bucket = lists.buckets.setdefault(ts // BUCKET_MS, {})
        bucket[video_id] = bucket.get(video_id, 0) + 1
        per_title[video_id] = per_title.get(video_id, 0) + 1
        lists.newest_ms = ts if lists.newest_ms is None else max(lists.newest_ms, ts)
    if lists.newest_ms is not None:
        oldest = (lists.newest_ms - max(size for _, size, _ in WINDOWS) * 60_000) // BUCKET_MS
        for old in [b for b in lists.buckets if b < oldest]:
            del lists.buckets[old]
    return per_title


def route_watches(watches: Iterable[tuple[str, str, int]]) -> dict[str, list[tuple[str, int]]]:
    """Every watch counts for its region and for ``global``."""
    routed: dict[str, list[tuple[str, int]]] = {}
    for region, video_id, ts in watches:
        for key in {region, GLOBAL}:
            routed.setdefault(key, []).append((video_id, ts))
    return routed


def route_catalog(items: Iterable[CatalogItem]) -> dict[str, dict[str, int | None]]:
    """Catalog records per new-releases list (``streamrec.recommend.releases.release_regions``)."""
    routed: dict[str, dict[str, int | None]] = {}
    for item in items:
        for region in release_regions(item):
            routed.setdefault(region, {})[item.video_id] = item.added_at
    return routed


class ListsWriter(StoreUser):
    """Writes a region's lists: newest window wins against the store (as WriteRankedLists does);
    reads the catalog's genres (cached ``ttl_s``) and recovers a release pool from its stored list."""

    def __init__(self, store_url: str, max_age_days: float = 30.0, n: int = LIST_N, ttl_s: float = 600.0) -> None:
        super().__init__(store_url)
        self.max_age_ms, self.n, self.ttl_s = int(max_age_days * DAY_MS), n, ttl_s
        self._genres: ReadThrough[tuple[str, ...]] = ReadThrough(ttl_s, 200_000)

    def genres(self, video_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Each title's genres from the catalog in the store, read through a per-worker cache."""
        return self._genres.get(video_ids, lambda missing: {
            v: item.genres for v, item in self.call("get_items", lambda store: store.get_items(missing)).items()},
            lambda _: ())

    def pool(self, region: str, lists: RegionLists) -> ReleasePool:
        if lists.pool is None:
            key = new_releases_key(region)
            stored = self.call("get_lists", lambda store: store.get_lists([key])).get(key)
            lists.pool = ReleasePool.from_list(stored.items) if stored else ReleasePool()
        return lists.pool

    def on_watches(self, region: str, lists: RegionLists, watches: Sequence[tuple[str, int]]) -> list[RankedList]:
        per_title = add_watches(lists, watches)
        pool = self.pool(region, lists)
        pool.advance(max(ts for _, ts in watches), self.max_age_ms)
        pool.watched(per_title)
        titles = {v for bucket in lists.buckets.values() for v in bucket}
        now_ms = int(time.time() * 1000)
        return [*window_lists(region, lists, self.genres(titles), now_ms), self.releases(region, pool, now_ms)]

    def on_catalog(self, region: str, lists: RegionLists, added: Mapping[str, int | None]) -> list[RankedList]:
        pool = self.pool(region, lists)
        for video_id, added_at in added.items():
            pool.add(video_id, added_at, self.max_age_ms)
        return [self.releases(region, pool, int(time.time() * 1000))]

    def releases(self, region: str, pool: ReleasePool, now_ms: int) -> RankedList:
        return RankedList(key=new_releases_key(region), items=pool.ranked(self.n), updated_at=now_ms)

    def write(self, lists: Sequence[RankedList]) -> None:
        def put(store: Store) -> None:
            stored = store.get_lists([r.key for r in lists])
            newer = [r for r in lists if r.key not in stored or (r.window_end or 0) >= (stored[r.key].window_end or 0)]
            if newer:
                store.put_lists(newer)
        if lists:
            self.call("put_lists", put)


# -- catalog ----------------------------------------------------------------------------------------------
class CatalogWriter(StoreUser):
    """Decodes catalog records and upserts them (a replacement). A title without a vector gets its
    basis vector, as the Beam pipeline's CatalogUpsert does, from the one writer of item vectors
    (:meth:`ItemTotalsWriter.put_missing_vectors`), so the two never overwrite each other."""

    def __init__(self, store_url: str, topic: str) -> None:
        super().__init__(store_url)
        self.topic = topic
        self.codec = default_codec()

    def apply(self, partition: int, records: Iterable[Record]) -> tuple[list[CatalogItem], list[DeadLetter]]:
        items: dict[str, CatalogItem] = {}
        dead = []
        for offset, key, value in sorted(records, key=lambda r: r[0]):
            try:
                if value is None:
                    raise EventError("body", "empty record")
                decoded = self.codec.decode(value)
                if not isinstance(decoded, CatalogItem):
                    raise EventError("header", f"expected a CatalogItem, found a {type(decoded).__name__}")
                items[decoded.video_id] = decoded
            except EventError as exc:
                dead.append(dead_letter(value, key, self.topic, partition, offset, exc, "decode_catalog"))
        if items:
            self.call("upsert_items", lambda store: store.upsert_items(list(items.values())))
        return list(items.values()), dead


class DeadLetterProducer:
    """Dead letters to the DLQ topic (Avro, keyed as the original), flushed after every batch."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._producer: Any = None
        self.codec = default_codec()

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                                       "log_level": 3})
        for letter in letters:
            self._producer.produce(self.topic, key=letter.original_key, value=self.codec.encode(letter))
        if self._producer.flush(30) > 0:
            raise StoreUnavailable(f"dead letters not acknowledged by {self.bootstrap} within 30 s")


# -- nearline top picks --------------------------------------------------------------------------------------
def idle_users(users: Iterable[tuple[str, int]], clock_ms: int, idle_ms: int, held: Iterable[str],
               waiting: Iterable[str]) -> list[str]:
    """The users a partition's keyed state can let go (the Beam pipeline's ``expire_idle`` rule):
    their newest event is more than ``idle_ms`` before the partition's clock (the newest event it
    applied), none of their writes is still held (so the store has their last state, and a later
    event reloads exactly it) and no top-picks refresh waits for them. ``users``: (id, updated_at)."""
    keep = set(held) | set(waiting)
    return [user_id for user_id, updated_at in users if user_id not in keep and updated_at < clock_ms - idle_ms]


@dataclass
class RefreshPlan:
    """Users whose taste changed, waiting for their top-picks refresh: one recompute ``settle_ms``
    after the user's last change (processing time), never later than ``max_delay_ms`` after the
    first one, so a burst costs one recompute and a busy user still gets one (the Beam pipeline's
    rule, on the processing-time clock). ``waiting``: user -> (first change's event time, due, deadline)."""

    waiting: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def changed(self, changes: Mapping[str, int], now_ms: int, settle_ms: int, max_delay_ms: int) -> None:
        for user_id, first_ts in changes.items():
            first, _, deadline = self.waiting.get(user_id, (first_ts, 0, now_ms + max_delay_ms))
            self.waiting[user_id] = (first, min(now_ms + settle_ms, deadline), deadline)

    def due(self, now_ms: int) -> dict[str, int]:
        """The users due now (removed from the plan) -> their first change's event time."""
        ready = {u: first for u, (first, due, _) in self.waiting.items() if due <= now_ms}
        for user_id in ready:
            del self.waiting[user_id]
        return ready


def refreshed(state: UserState, picks: list[ScoredItem], first_change_ts: int, settle_ms: int,
              max_delay_ms: int) -> UserState:
    """The state with fresh top picks, stamped with the event time the refresh was due at."""
    due = min(state.updated_at + settle_ms, first_change_ts + max_delay_ms)
    return bound_state(dataclasses.replace(state, top_picks=picks, top_picks_at=due), ["top_picks"])
