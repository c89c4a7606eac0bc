# ruff: noqa: B008  -- Beam declares DoFn state, timer and restriction parameters as defaults
"""UpdateUserState: the per-user state machine as a keyed stateful DoFn.

Each event is applied by :func:`streamrec.recommend.state.apply_event` (the same code the
evaluation replays); this module only keeps the state between events and routes the side effects:

    UserEvent --key by user--> UserStateFn --main--------> UserState snapshots (-> store)
                                           --cowatch-----> (pairs, item counts) increments
                                           --watches-----> (region, video_id) at event time
                                           --rejected----> DeadLetter (event the state refuses)

State per user (explicit coders): history, continue watching, seen, disliked, my list and
preferences, the user vector (float32 bytes), top picks, the recent event ids (dedup), and a
``loaded`` flag. On a user's first event since the runner started (or since the state expired)
the state is read from the store, which is the durable copy: a restarted pipeline continues from
what it last wrote and dedups replayed events against the stored ``recent_event_ids``.

Timers, both in event time:

- ``refresh_top_picks``: a change of taste schedules one recompute of the user's top picks at
  ``newest event + settle``; every later event of the burst pushes it out again, but never past
  ``first pending + max_delay``, so a burst costs one recompute and a busy user still gets one.
- ``expire_idle``: ``newest event + idle``; clears every state of the user (the store keeps the
  durable copy, so this only frees the runner's memory).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.coders import (
    BooleanCoder,
    BytesCoder,
    FloatCoder,
    ListCoder,
    StrUtf8Coder,
    TupleCoder,
    VarIntCoder,
)
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from streamrec.events.model import DeadLetter, UserEvent
from streamrec.recommend.ranking import (
    RankingInputs,
    candidate_titles,
    seed_titles,
    top_picks,
)
from streamrec.recommend.state import StateConfig, apply_event
from streamrec.recommend.vectors import item_basis
from streamrec.store import Store, open_store
from streamrec.store.base import (
    HistoryEntry,
    Progress,
    ScoredItem,
    UserState,
    trending_key,
)

TAG_COWATCH = "cowatch"
TAG_WATCHES = "watches"
TAG_REJECTED = "rejected"

_STR_LIST = ListCoder(StrUtf8Coder())
_TIME_MS = VarIntCoder()


def _ms(ts: Timestamp) -> int:
    return int(ts.micros // 1000)


class UserStateFn(beam.DoFn):
    """Keyed by user_id; see the module docstring."""

    HISTORY = ReadModifyWriteStateSpec("history", ListCoder(TupleCoder([StrUtf8Coder(), VarIntCoder(), FloatCoder()])))
    CONTINUE_WATCHING = ReadModifyWriteStateSpec(
        "continue_watching", ListCoder(TupleCoder([StrUtf8Coder(), FloatCoder(), FloatCoder(), VarIntCoder()])))
    SEEN = ReadModifyWriteStateSpec("seen", _STR_LIST)
    DISLIKED = ReadModifyWriteStateSpec("disliked", _STR_LIST)
    MY_LIST = ReadModifyWriteStateSpec("my_list", _STR_LIST)
    PREFERRED_GENRES = ReadModifyWriteStateSpec("preferred_genres", _STR_LIST)
    VECTOR = ReadModifyWriteStateSpec("vector", BytesCoder())  # float32, empty: none yet
    TOP_PICKS = ReadModifyWriteStateSpec("top_picks", ListCoder(TupleCoder([StrUtf8Coder(), FloatCoder()])))
    EVENT_IDS = ReadModifyWriteStateSpec("recent_event_ids", _STR_LIST)
    # updated_at, top_picks_at (epoch ms), region ("" unknown)
    META = ReadModifyWriteStateSpec("meta", TupleCoder([VarIntCoder(), VarIntCoder(), StrUtf8Coder()]))
    LOADED = ReadModifyWriteStateSpec("loaded", BooleanCoder())
    REFRESH_PENDING_SINCE = ReadModifyWriteStateSpec("refresh_pending_since", _TIME_MS)  # event time, ms

    REFRESH = TimerSpec("refresh_top_picks", TimeDomain.WATERMARK)
    EXPIRE = TimerSpec("expire_idle", TimeDomain.WATERMARK)

    _ALL_STATES = (HISTORY, CONTINUE_WATCHING, SEEN, DISLIKED, MY_LIST, PREFERRED_GENRES, VECTOR, TOP_PICKS,
                   EVENT_IDS, META, LOADED, REFRESH_PENDING_SINCE)

    def __init__(self, store_url: str, *, settle_s: float, max_delay_s: float, idle_s: float,
                 top_picks_k: int, item_cache_s: float = 60.0) -> None:
        if not 0 <= settle_s <= max_delay_s:
            raise ValueError(f"settle_s, max_delay_s: need 0 <= settle_s <= max_delay_s, got {settle_s}, {max_delay_s}")
        if idle_s <= max_delay_s:
            raise ValueError(f"idle_s: must exceed max_delay_s ({max_delay_s}), got {idle_s}")
        self.store_url = store_url
        self.settle_ms, self.max_delay_ms, self.idle_ms = int(settle_s * 1000), int(max_delay_s * 1000), int(idle_s * 1000)
        self.top_picks_k = top_picks_k
        self.item_cache_ms = int(item_cache_s * 1000)
        self.config = StateConfig()
        self.store: Store | None = None
        self.duplicates = Metrics.counter("update_user_state", "duplicate_events")
        self.rejected = Metrics.counter("update_user_state", "rejected_events")
        self.refreshes = Metrics.counter("update_user_state", "top_picks_refreshes")

    def setup(self) -> None:
        self.store = open_store(self.store_url)
        self._vectors: dict[str, tuple[np.ndarray, int]] = {}

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- state <-> UserState ------------------------------------------------------------------
    def _load(self, user_id: str, states: dict[str, Any]) -> UserState:
        if not states["loaded"].read():
            assert self.store is not None
            return self.store.get_user(user_id) or UserState(user_id=user_id)
        updated_at, top_picks_at, _region = states["meta"].read() or (0, 0, "")
        vector = states["vector"].read()
        return UserState(
            user_id=user_id,
            history=[HistoryEntry(v, ts, w) for v, ts, w in states["history"].read() or []],
            in_progress={v: Progress(v, p, d, t) for v, p, d, t in states["continue_watching"].read() or []},
            seen=states["seen"].read() or [], disliked=states["disliked"].read() or [],
            my_list=states["my_list"].read() or [], preferred_genres=states["preferred_genres"].read() or [],
            vector=np.frombuffer(vector, dtype=np.float32).copy() if vector else None,
            top_picks=[ScoredItem(v, s) for v, s in states["top_picks"].read() or []], top_picks_at=top_picks_at,
            recent_event_ids=states["recent_event_ids"].read() or [], updated_at=updated_at)

    @staticmethod
    def _save(user: UserState, region: str, states: dict[str, Any]) -> None:
        user = user.bounded()
        states["history"].write([(h.video_id, h.ts, h.weight) for h in user.history])
        states["continue_watching"].write(
            [(p.video_id, p.position_sec, p.duration_sec, p.updated_at) for p in user.in_progress.values()])
        states["seen"].write(user.seen)
        states["disliked"].write(user.disliked)
        states["my_list"].write(user.my_list)
        states["preferred_genres"].write(user.preferred_genres)
        states["vector"].write(b"" if user.vector is None else np.asarray(user.vector, np.float32).tobytes())
        states["top_picks"].write([(s.video_id, s.score) for s in user.top_picks])
        states["recent_event_ids"].write(user.recent_event_ids)
        states["meta"].write((user.updated_at, user.top_picks_at, region))
        states["loaded"].write(True)

    def _item_vector(self, video_id: str | None) -> np.ndarray | None:
        """The title's vector, cached for ``item_cache_s``; a title without one folds in its basis."""
        if not video_id:
            return None
        now = int(time.monotonic() * 1000)
        cached = self._vectors.get(video_id)
        if cached is not None and now - cached[1] < self.item_cache_ms:
            return cached[0]
        assert self.store is not None
        vector = self.store.get_item_vectors([video_id]).get(video_id)
        if vector is None:
            vector = item_basis(video_id)
        if len(self._vectors) > 100_000:
            self._vectors.clear()
        self._vectors[video_id] = (vector, now)
        return vector

    # -- events ---------------------------------------------------------------------------------
    def process(
        self,
        keyed: tuple[str, UserEvent],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        history: Any = beam.DoFn.StateParam(HISTORY),
        continue_watching: Any = beam.DoFn.StateParam(CONTINUE_WATCHING),
        seen: Any = beam.DoFn.StateParam(SEEN),
        disliked: Any = beam.DoFn.StateParam(DISLIKED),
        my_list: Any = beam.DoFn.StateParam(MY_LIST),
        preferred_genres: Any = beam.DoFn.StateParam(PREFERRED_GENRES),
        vector: Any = beam.DoFn.StateParam(VECTOR),
        top_picks_state: Any = beam.DoFn.StateParam(TOP_PICKS),
        recent_event_ids: Any = beam.DoFn.StateParam(EVENT_IDS),
        meta: Any = beam.DoFn.StateParam(META),
        loaded: Any = beam.DoFn.StateParam(LOADED),
        pending_since: Any = beam.DoFn.StateParam(REFRESH_PENDING_SINCE),
        refresh: Any = beam.DoFn.TimerParam(REFRESH),
        expire: Any = beam.DoFn.TimerParam(EXPIRE),
    ) -> Iterator[Any]:
        user_id, event = keyed
        states = {"history": history, "continue_watching": continue_watching, "seen": seen, "disliked": disliked,
                  "my_list": my_list, "preferred_genres": preferred_genres, "vector": vector,
                  "top_picks": top_picks_state, "recent_event_ids": recent_event_ids, "meta": meta,
                  "loaded": loaded}
        user = self._load(user_id, states)
        try:
            update = apply_event(user, event, item_vector=self._item_vector(event.video_id), config=self.config)
        except ValueError as exc:  # the event does not fit the state: a dead letter, not a crash
            self.rejected.inc()
            yield beam.pvalue.TaggedOutput(TAG_REJECTED, DeadLetter(
                original=repr(event).encode(), topic="", partition=-1, offset=-1, reason=str(exc),
                field=str(exc).partition(":")[0] or None, failed_at=int(time.time() * 1000), stage="update_user_state"))
            return
        if not update.applied:
            self.duplicates.inc()
            return
        region = event.region or (meta.read() or (0, 0, ""))[2]
        self._save(update.state, region, states)
        yield update.state
        if update.cowatch or update.item_counts:
            yield beam.pvalue.TaggedOutput(TAG_COWATCH, (update.cowatch, update.item_counts))
        for video_id in update.watched:
            yield beam.pvalue.TaggedOutput(TAG_WATCHES, TimestampedValue((region or "unknown", video_id), timestamp))

        newest_ms = update.state.updated_at
        if update.refresh_top_picks:
            since = pending_since.read()
            if since is None:
                since = event.timestamp
                pending_since.write(since)
            refresh.set(Timestamp(micros=min(newest_ms + self.settle_ms, since + self.max_delay_ms) * 1000))
        expire.set(Timestamp(micros=(newest_ms + self.idle_ms) * 1000))

    # -- timers ---------------------------------------------------------------------------------
    @on_timer(REFRESH)
    def refresh_top_picks(
        self,
        key: str = beam.DoFn.KeyParam,
        fire_ts: Timestamp = beam.DoFn.TimestampParam,
        history: Any = beam.DoFn.StateParam(HISTORY),
        continue_watching: Any = beam.DoFn.StateParam(CONTINUE_WATCHING),
        seen: Any = beam.DoFn.StateParam(SEEN),
        disliked: Any = beam.DoFn.StateParam(DISLIKED),
        my_list: Any = beam.DoFn.StateParam(MY_LIST),
        preferred_genres: Any = beam.DoFn.StateParam(PREFERRED_GENRES),
        vector: Any = beam.DoFn.StateParam(VECTOR),
        top_picks_state: Any = beam.DoFn.StateParam(TOP_PICKS),
        recent_event_ids: Any = beam.DoFn.StateParam(EVENT_IDS),
        meta: Any = beam.DoFn.StateParam(META),
        loaded: Any = beam.DoFn.StateParam(LOADED),
        pending_since: Any = beam.DoFn.StateParam(REFRESH_PENDING_SINCE),
    ) -> Iterator[UserState]:
        pending_since.clear()
        states = {"history": history, "continue_watching": continue_watching, "seen": seen, "disliked": disliked,
                  "my_list": my_list, "preferred_genres": preferred_genres, "vector": vector,
                  "top_picks": top_picks_state, "recent_event_ids": recent_event_ids, "meta": meta,
                  "loaded": loaded}
        if not loaded.read():
            return
        user = self._load(key, states)
        region = (meta.read() or (0, 0, ""))[2]
        user.top_picks = self._top_picks(user, region or None)
        user.top_picks_at = _ms(fire_ts)
        self.refreshes.inc()
        self._save(user, region, states)
        yield user

    def _top_picks(self, user: UserState, region: str | None) -> list[ScoredItem]:
        """The feed's own ranking (streamrec.recommend.ranking) over two batched store reads."""
        assert self.store is not None
        config_seeds = seed_titles(user)
        trending = self.store.get_lists([trending_key("1h", region or "global")])
        inputs = RankingInputs(
            neighbours=self.store.get_neighbours(config_seeds, 50),
            trending=next(iter(trending.values())).items if trending else (), region=region)
        ids = candidate_titles(user, inputs)
        both = self.store.get_items_with_vectors(ids)
        inputs = inputs.with_items(
            items={v: item for v, (item, _) in both.items() if item is not None},
            item_vectors={v: vec for v, (_, vec) in both.items() if vec is not None},
            item_counts=self.store.get_item_counts(ids + config_seeds))
        return top_picks(user, inputs, k=self.top_picks_k)

    @on_timer(EXPIRE)
    def expire_idle(
        self,
        fire_ts: Timestamp = beam.DoFn.TimestampParam,
        history: Any = beam.DoFn.StateParam(HISTORY),
        continue_watching: Any = beam.DoFn.StateParam(CONTINUE_WATCHING),
        seen: Any = beam.DoFn.StateParam(SEEN),
        disliked: Any = beam.DoFn.StateParam(DISLIKED),
        my_list: Any = beam.DoFn.StateParam(MY_LIST),
        preferred_genres: Any = beam.DoFn.StateParam(PREFERRED_GENRES),
        vector: Any = beam.DoFn.StateParam(VECTOR),
        top_picks_state: Any = beam.DoFn.StateParam(TOP_PICKS),
        recent_event_ids: Any = beam.DoFn.StateParam(EVENT_IDS),
        meta: Any = beam.DoFn.StateParam(META),
        loaded: Any = beam.DoFn.StateParam(LOADED),
        pending_since: Any = beam.DoFn.StateParam(REFRESH_PENDING_SINCE),
    ) -> None:
        updated_at = (meta.read() or (0, 0, ""))[0]
        if updated_at + self.idle_ms > _ms(fire_ts):
            return  # a late event moved the expiry on after this timer was set
        for state in (history, continue_watching, seen, disliked, my_list, preferred_genres, vector,
                      top_picks_state, recent_event_ids, meta, loaded, pending_since):
            state.clear()


class UpdateUserState(beam.PTransform):  # type: ignore[misc]
    """UserEvent -> tagged outputs ``users`` (main), ``cowatch``, ``watches``, ``rejected``."""

    def __init__(self, store_url: str, *, settle_s: float = 5.0, max_delay_s: float = 60.0,
                 idle_s: float = 24 * 3600.0, top_picks_k: int = 50) -> None:
        super().__init__()
        self.fn = UserStateFn(store_url, settle_s=settle_s, max_delay_s=max_delay_s, idle_s=idle_s,
                              top_picks_k=top_picks_k)

    def expand(self, events: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            events
            | "KeyByUser" >> beam.Map(lambda e: (e.user_id, e))
            | "ApplyEvents" >> beam.ParDo(self.fn).with_outputs(TAG_COWATCH, TAG_WATCHES, TAG_REJECTED, main="users")
        )
