"""The Flink job's users, without Flink: a batch of one partition's events applied to its users.

:class:`UserStateApplier` decodes a batch of Kafka records with the project's codec, applies
``streamrec.recommend.state.apply_event`` per user in event-time order and reports what changed
(:class:`UserBatch`); it reads the users this job has not seen yet from the store, writes the
released snapshots and runs the nearline top-picks refresh. Called by ``UserStateFn``
(:mod:`pipelines.flink.functions`); the exactly-once argument is :mod:`pipelines.flink.core`'s.
Nothing here imports PyFlink.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.flink.core import Pairs, Record, StoreUser, add_counts, dead_letter
from streamrec.events.codec import EventCodec, default_codec
from streamrec.events.errors import EventError
from streamrec.events.model import DeadLetter, UserEvent
from streamrec.model import UserState
from streamrec.nearline import Refresh, refresh
from streamrec.recommend.live import LiveUser
from streamrec.recommend.state import StateConfig
from streamrec.recommend.vectors import item_basis


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
