# ruff: noqa: B008  -- Beam declares DoFn state, timer and restriction parameters as defaults
"""UpdateUserState: the per-user state machine as a keyed stateful DoFn.

Each event is applied by :func:`streamrec.recommend.state.apply_event`'s rules (in place, on the
pane's copy of the state: :class:`streamrec.recommend.live.LiveUser`, the code the evaluation
replays); this module only keeps the state between events and routes the side effects:

    UserEvent --key by user--> UserStateFn --main--------> UserWrite: the state snapshot, the co-watch
               (or Sourced:                                and item-count increments of its events,
                event + offset)                            their Kafka offsets (-> WriteUserUpdates)
                                           --watches-----> (region, video_id) at event time
                                           --rejected----> DeadLetter (event the state refuses: its
                                                           Avro bytes, topic/partition/offset, the field)

State per user: one ``profile`` cell (explicit :class:`ProfileCoder`) holding the whole user
state - history, continue watching, seen, disliked, my list, preferences, the user vector, top
picks, the recent event ids (dedup) - with the region and the two timers' bookkeeping. On a
user's first event since the runner started (or since the state expired) it is read from the
store, which is the durable copy: a restarted pipeline continues from what it last wrote and
dedups replayed events against the stored ``recent_event_ids``. Store reads are retried with
backoff while the store is unavailable (:mod:`streamrec.store.retry`).

Timers, both in event time:

- ``refresh_top_picks``: a change of taste schedules one recompute of the user's top picks at
  ``newest event + settle``; every later event of the burst pushes it out again, but never past
  ``first pending + max_delay``, so a burst costs one recompute and a busy user still gets one.
- ``expire_idle``: ``newest event + idle``; clears the user's state cell (the store keeps the
  durable copy, so this only frees the runner's memory). Set only when it moves later.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.coders import BytesCoder, Coder, StrUtf8Coder, TupleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    ReadModifyWriteStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp

from pipelines.offsets import Position, unwrap
from pipelines.sinks import UserWrite
from streamrec.events.codec import EventCodec, default_codec
from streamrec.events.model import DeadLetter, UserEvent
from streamrec.model import UserState
from streamrec.nearline import Refresh, refresh
from streamrec.recommend.learned import Example
from streamrec.recommend.live import LiveUser
from streamrec.recommend.state import StateConfig, bound_state
from streamrec.recommend.vectors import item_basis
from streamrec.store.cache import ReadThrough
from streamrec.store.codec import decode_user, encode_user
from streamrec.store.retry import RetryingStore

TAG_WATCHES = "watches"
TAG_REJECTED = "rejected"
TAG_EXAMPLES = "examples"  # the learned ranker's, from each refresh (pipelines/ranker.py)
STAGE = "update_user_state"

class Profile(NamedTuple):
    """What the DoFn keeps per user between events."""

    state: UserState  # history, continue watching, seen, disliked, my list, vector, top picks, event ids
    region: str  # the user's last known region ("" unknown): trending and top picks read it
    refresh_pending_since: int  # event time (ms) of the first change a refresh waits for; -1: none
    expire_at: int  # event time (ms) the expiry timer is set for


class ProfileCoder(Coder):  # type: ignore[misc]
    """Explicit, deterministic coder of :class:`Profile`: the user state as the store packs it
    (:func:`streamrec.store.codec.encode_user`) plus three small fields."""

    _FIELDS = TupleCoder([StrUtf8Coder(), BytesCoder(), StrUtf8Coder(), VarIntCoder(), VarIntCoder()])

    def encode(self, profile: Profile) -> bytes:
        state = profile.state.bounded()
        return self._FIELDS.encode((state.user_id, encode_user(state), profile.region,
                                    profile.refresh_pending_since, profile.expire_at))

    def decode(self, encoded: bytes) -> Profile:
        user_id, blob, region, pending, expire_at = self._FIELDS.decode(encoded)
        return Profile(decode_user(user_id, blob, 0), region, pending, expire_at)

    def is_deterministic(self) -> bool:
        return True


def _ms(ts: Timestamp) -> int:
    return int(ts.micros // 1000)


def _at(ms: int) -> Timestamp:
    return Timestamp(micros=ms * 1000)


class UserStateFn(beam.DoFn):
    """Keyed by user_id; see the module docstring."""

    # One state cell per user: on a portable runner every cell read or write is a round trip to
    # the runner (Prism keeps no SDK-side state cache), so one cell costs 1 read + 1 write per event
    # where one cell per field cost 12 + 11 (measured: 3x slower end to end).
    PROFILE = ReadModifyWriteStateSpec("profile", ProfileCoder())
    REFRESH = TimerSpec("refresh_top_picks", TimeDomain.WATERMARK)
    EXPIRE = TimerSpec("expire_idle", TimeDomain.WATERMARK)

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
        self.duplicates = Metrics.counter("update_user_state", "duplicate_events")
        self.rejected = Metrics.counter("update_user_state", "rejected_events")
        self.refreshes = Metrics.counter("update_user_state", "top_picks_refreshes")

    def setup(self) -> None:
        self.store = RetryingStore(self.store_url, "UserStateFn")  # opened on first use, calls retried
        self.codec: EventCodec = default_codec()
        self._vectors: ReadThrough[np.ndarray] = ReadThrough(self.item_cache_ms / 1000, 100_000)

    def _read(self, what: str, fn: Any) -> Any:
        """``fn(store)``, retried with backoff while the store is unavailable."""
        return self.store.call(what, fn)

    def _rejected(self, event: UserEvent, where: tuple[Position, ...], exc: ValueError) -> DeadLetter:
        """A refused event as a replayable dead letter: its Avro bytes (re-encoded: the decoded
        event is all this stage has), where it was read, and the field at fault."""
        topic, partition, offset = where[0] if where else ("", -1, -1)
        text = str(exc)
        field = text.partition(":")[0] if ": " in text else None
        return DeadLetter(original=self.codec.encode(event), original_key=event.user_id.encode(), topic=topic,
                          partition=partition, offset=offset, reason=f"refused by the state machine: {text}",
                          field=field, failed_at=int(time.time() * 1000), stage=STAGE)

    def teardown(self) -> None:
        self.store.close()

    def _item_vectors(self, video_ids: Iterable[str | None]) -> dict[str, np.ndarray]:
        """The pane's titles' vectors, cached for ``item_cache_s``; the titles not cached are read
        in one batched call, and a title without a stored vector folds in its basis."""
        return self._vectors.get((v for v in video_ids if v), lambda missing: self._read(
            "get_item_vectors", lambda store: store.get_item_vectors(missing)), item_basis)

    # -- events ---------------------------------------------------------------------------------
    def process(
        self,
        user_events: tuple[str, Iterable[Any]],
        profile_state: Any = beam.DoFn.StateParam(PROFILE),
        refresh: Any = beam.DoFn.TimerParam(REFRESH),
        expire: Any = beam.DoFn.TimerParam(EXPIRE),
    ) -> Iterator[Any]:
        user_id, inputs = user_events
        profile: Profile | None = profile_state.read()
        if profile is None:  # first event since start or expiry: the store holds the durable copy
            stored = self._read("get_user", lambda store: store.get_user(user_id)) or UserState(user_id=user_id)
            profile = Profile(stored, "", -1, -1)
        state, region, pending = profile.state, profile.region, profile.refresh_pending_since
        pairs: dict[tuple[str, str], int] = {}
        counts: dict[str, int] = {}
        changed = False
        # A pane holds whatever arrived for this user since the last one: applied in event-time
        # order, one state read and one write for all of them (the state's coding dominates).
        # Events read from Kafka come as Sourced (with their offsets), others (backfill) bare.
        ordered = sorted(map(unwrap, inputs), key=lambda ep: (ep[0].timestamp, ep[0].event_id))
        positions: list[Position] = []  # offsets whose effect is this pane's write
        applied: list[str] = []  # ids of the events this pane applied (the store adds their counters once)
        vectors = self._item_vectors(e.video_id for e, _ in ordered)
        live = LiveUser(state)  # the pane's own copy, changed in place (apply_event's rules)
        for event, where in ordered:
            try:
                item_vector = vectors.get(event.video_id) if event.video_id else None
                update = live.apply(event, item_vector=item_vector, config=self.config)
            except ValueError as exc:  # the event does not fit the state: a dead letter, not a crash
                self.rejected.inc()
                yield beam.pvalue.TaggedOutput(TAG_REJECTED, self._rejected(event, where, exc))
                continue
            positions.extend(where)
            if not update.applied:
                self.duplicates.inc()
                continue
            state, changed = update.state, True
            applied.append(event.event_id)
            region = event.region or region
            for pair, n in update.cowatch.items():
                pairs[pair] = pairs.get(pair, 0) + n
            for video_id, n in update.item_counts.items():
                counts[video_id] = counts.get(video_id, 0) + n
            for video_id in update.watched:
                yield beam.pvalue.TaggedOutput(
                    TAG_WATCHES, TimestampedValue((region or "unknown", video_id), event.timestamp / 1000.0))
            if update.refresh_top_picks:
                pending = event.timestamp if pending < 0 else pending
        if not changed:
            if positions:  # replays only: acknowledged once what the sink holds before them is written
                yield UserWrite(None, {}, {}, tuple(positions))
            return
        yield UserWrite(state, pairs, counts, tuple(positions), tuple(applied))
        newest_ms = state.updated_at
        if pending >= 0:
            refresh.set(_at(min(newest_ms + self.settle_ms, pending + self.max_delay_ms)))
        expire_at = profile.expire_at
        if newest_ms + self.idle_ms > expire_at:  # the expiry only ever moves later
            expire_at = newest_ms + self.idle_ms
            expire.set(_at(expire_at))
        profile_state.write(Profile(state, region, pending, expire_at))

    # -- timers ---------------------------------------------------------------------------------
    @on_timer(REFRESH)
    def refresh_top_picks(
        self,
        profile_state: Any = beam.DoFn.StateParam(PROFILE),
    ) -> Iterator[Any]:
        profile: Profile | None = profile_state.read()
        if profile is None or profile.refresh_pending_since < 0:
            return  # already refreshed (by the expiry below) or expired
        user, examples = self._refreshed(profile)
        profile_state.write(profile._replace(state=user, refresh_pending_since=-1))
        yield UserWrite(user, {}, {})
        if examples:
            yield beam.pvalue.TaggedOutput(TAG_EXAMPLES, examples)

    def _refreshed(self, profile: Profile) -> tuple[UserState, list[Example]]:
        """The state with fresh top picks, stamped with the event time the refresh was due at,
        and the ranker's examples from the watches since the last refresh."""
        self.refreshes.inc()
        due = min(profile.state.updated_at + self.settle_ms, profile.refresh_pending_since + self.max_delay_ms)
        done = self._refresh(profile.state, profile.region or None)
        return bound_state(dataclasses.replace(profile.state, top_picks=done.picks, top_picks_at=due),
                           ["top_picks"]), done.examples

    def _refresh(self, user: UserState, region: str | None) -> Refresh:
        """The feed's own ranking over batched store reads (:mod:`streamrec.nearline`)."""
        return self._read("top_picks", lambda store: refresh(store, user, region, self.top_picks_k))

    @on_timer(EXPIRE)
    def expire_idle(
        self,
        fire_ts: Any = beam.DoFn.TimestampParam,
        profile_state: Any = beam.DoFn.StateParam(PROFILE),
    ) -> Iterator[Any]:
        profile: Profile | None = profile_state.read()
        if profile is None or profile.expire_at > _ms(fire_ts):
            return
        # Timers due together (a batch run ends with the watermark at infinity) fire in no set
        # order: a refresh still pending is done here, before its state goes.
        if profile.refresh_pending_since >= 0:
            user, examples = self._refreshed(profile)
            yield UserWrite(user, {}, {})
            if examples:
                yield beam.pvalue.TaggedOutput(TAG_EXAMPLES, examples)
        profile_state.clear()


class UpdateUserState(beam.PTransform):  # type: ignore[misc]
    """UserEvent or Sourced(UserEvent) -> tagged outputs ``users`` (main: UserWrite), ``watches``,
    ``rejected``."""

    def __init__(self, store_url: str, *, settle_s: float = 5.0, max_delay_s: float = 60.0,
                 idle_s: float = 24 * 3600.0, top_picks_k: int = 50, bounded: bool = False) -> None:
        super().__init__()
        self.bounded = bounded
        self.fn = UserStateFn(store_url, settle_s=settle_s, max_delay_s=max_delay_s, idle_s=idle_s,
                              top_picks_k=top_picks_k)

    def expand(self, events: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return (
            events
            | "KeyByUser" >> beam.Map(lambda e: (e.user_id, e))  # Sourced has the event's user_id
            # Batch each user's events per pane: every pane of whatever has arrived, stamped with
            # its earliest event so the event-time timers and the watermark stay right.
            # (A bounded input is one pane per user; the batch runner then fires the timers.)
            | "PerPane" >> beam.WindowInto(
                window.GlobalWindows(),
                trigger=trigger.DefaultTrigger() if self.bounded else trigger.Repeatedly(trigger.AfterCount(1)),
                accumulation_mode=trigger.AccumulationMode.DISCARDING,
                timestamp_combiner=window.TimestampCombiner.OUTPUT_AT_EARLIEST)
            | "GroupByUser" >> beam.GroupByKey()
            | "ApplyEvents" >> beam.ParDo(self.fn).with_outputs(TAG_WATCHES, TAG_REJECTED, TAG_EXAMPLES, main="users")
        )
