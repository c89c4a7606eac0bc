"""The state machine's hot path: one user's state updated in place, with the reference's answers.

:func:`streamrec.recommend.state.apply_event` is the readable rule and the test oracle: pure, it
copies the state and re-measures every list it replaced on each event (``dataclasses.replace``,
the 256 recent event ids and the 200 history entries copied, their bytes summed, the history
re-keyed for the insertion). :class:`LiveUser` owns one copy of a user's state and applies the
same rules to it in place, keeping what the reference recomputes: the set of recent event ids, the
history by title, the seen titles, and the characters in each list its byte budget is checked on.
The pipelines (Beam panes, Flink batches), the evaluation replay (:func:`apply_events`) and the
bench's plain loop run it; ``tests/recommend/test_live.py`` replays both shared rating logs
through both paths and asserts the same state and side effects after every event.

    live = LiveUser(state)                       # copies the state's lists once
    update = live.apply(event, item_vector=vec)  # update.state is live.state, changed in place

A state the fast path cannot vouch for (duplicate titles in history or seen, an unsorted history,
lists over their count limits: never written by these rules) is driven through the reference.
"""

from __future__ import annotations

import bisect
import dataclasses
import operator
from collections.abc import Iterable, Mapping

import numpy as np

from streamrec.events.model import WATCH_EVENTS, EventType, UserEvent
from streamrec.model import (
    EVENT_IDS_LIMIT,
    HISTORY_LIMIT,
    SEEN_LIMIT,
    HistoryEntry,
    Progress,
    UserState,
)
from streamrec.recommend.state import (
    _ENTRY_OVERHEAD,
    HISTORY_WEIGHTS,
    IN_PROGRESS_LIMIT,
    LIST_BYTE_BUDGETS,
    StateConfig,
    UserUpdate,
    _apply_opinions,
    _cowatch_window,
    _cut,
    _pairs_in,
    _validate,
    apply_event,
    vector_weight,
)
from streamrec.recommend.vectors import fold_in

_DEFAULT = StateConfig()
_FOLDING_KINDS = frozenset({EventType.RATE, EventType.LIKE, EventType.DISLIKE, EventType.ADD_TO_LIST})
# The kinds state._apply_opinions acts on (for the others it changes nothing and returns False).
_OPINION_KINDS = _FOLDING_KINDS | {EventType.REMOVE_FROM_LIST}
# The kinds apply compares with, as module names: an enum member read off its class costs ~0.1 µs
# on Python 3.11 (the metaclass's lookup), several times per event.
_COMPLETE, _RATE, _SET_PREFERENCES = EventType.COMPLETE, EventType.RATE, EventType.SET_PREFERENCES
_COMPLETE_WEIGHT = HISTORY_WEIGHTS[EventType.COMPLETE]
# Per list: the byte budget and the JSON bytes per entry besides its id's characters, as
# state._fit_newest's first check counts them (6 bytes per character at worst, 2 quotes, overhead).
_HISTORY_CHECK = (LIST_BYTE_BUDGETS["history"], _ENTRY_OVERHEAD["history"] + 2)
_PROGRESS_CHECK = (LIST_BYTE_BUDGETS["in_progress"], _ENTRY_OVERHEAD["in_progress"] + 2)
_SEEN_CHECK = (LIST_BYTE_BUDGETS["seen"], 3)
_EVENT_IDS_CHECK = (LIST_BYTE_BUDGETS["recent_event_ids"], 3)


def _history_key(entry: HistoryEntry) -> tuple[int, str]:
    return -entry.ts, entry.video_id


_TS = operator.attrgetter("ts")
_EVENT_ORDER = operator.attrgetter("timestamp", "event_id")


def _newest_first(times: list[int], ids: list[str]) -> bool:
    """Whether history keys (-ts, id) strictly increase: times never rise, ids rise within a time."""
    if not all(map(operator.ge, times, times[1:])):
        return False
    return all(map(operator.gt, times, times[1:])) or all(
        a < b for ta, tb, a, b in zip(times, times[1:], ids, ids[1:], strict=False) if ta == tb)


def _sorted_pairs(history: list[HistoryEntry], video_id: str, ts: int, config: StateConfig) -> dict[tuple[str, str], int]:
    """``state._pairs`` over a history sorted by (-ts, id), as a LiveUser's is: the window keeps
    that order, which is the order the rule ranks the earlier titles in, so only the titles
    later than the new watch (a late event's) need sorting."""
    window = _cowatch_window(history, video_id, ts, config)
    bonus_before = {h.video_id for h in [h for h in window if h.ts < ts][: config.next_span]}
    later = sorted((h for h in window if h.ts > ts), key=lambda h: (h.ts, h.video_id))
    return _pairs_in(window, video_id, bonus_before, {h.video_id for h in later[: config.next_span]}, config)


def own_copy(state: UserState) -> UserState:
    """``state`` with its own lists and dicts (the entries, ids and vector are shared: immutable)."""
    return UserState(
        user_id=state.user_id, history=list(state.history), in_progress=dict(state.in_progress),
        seen=list(state.seen), disliked=list(state.disliked), my_list=list(state.my_list), vector=state.vector,
        top_picks=list(state.top_picks), top_picks_at=state.top_picks_at,
        preferred_genres=list(state.preferred_genres), recent_event_ids=list(state.recent_event_ids),
        updated_at=state.updated_at, version=state.version)


class LiveUser:
    """One user's state, owned and updated in place (see the module docstring)."""

    __slots__ = (
        "_canonical",
        "_event_id_chars",
        "_event_ids",
        "_history",
        "_history_chars",
        "_history_keys",
        "_progress_chars",
        "_seen",
        "_seen_chars",
        "state",
    )

    def __init__(self, state: UserState, *, copy: bool = True) -> None:
        """``copy=False`` adopts ``state`` itself (the caller keeps no other reference to it)."""
        self.state = own_copy(state) if copy else state
        self._index()

    def _index(self) -> None:
        # Once per batch of a user's events (a Beam pane, a Flink batch): C loops where it can.
        s = self.state
        self._history = {h.video_id: h for h in s.history}
        ids, times = list(self._history), list(map(_TS, s.history))  # aligned unless ids repeat (not canonical)
        # The history's sort keys (-ts, id) beside it, so a put bisects without a key function.
        self._history_keys = list(map(_history_key, s.history))
        self._event_ids = set(s.recent_event_ids)
        self._seen = set(s.seen)
        self._event_id_chars = sum(map(len, s.recent_event_ids))
        self._history_chars = sum(map(len, ids))
        self._seen_chars = sum(map(len, s.seen))
        self._progress_chars = sum(map(len, s.in_progress))
        self._canonical = (
            len(self._event_ids) == len(s.recent_event_ids) <= EVENT_IDS_LIMIT
            and len(self._history) == len(s.history) <= HISTORY_LIMIT
            and len(self._seen) == len(s.seen) <= SEEN_LIMIT
            and _newest_first(times, ids)
        )

    def _bound(self, name: str) -> None:
        """The reference's cut of list ``name`` (when its cheap check failed); re-index if cut."""
        cut = _cut(self.state, name)
        if cut is not None:
            setattr(self.state, name, cut)
            self._index()

    def apply(self, event: UserEvent, *, item_vector: np.ndarray | None = None,
              config: StateConfig = _DEFAULT) -> UserUpdate:
        """:func:`streamrec.recommend.state.apply_event` on the owned state, in place: the same
        rules, checks and errors (a refused event changes nothing), the same side effects."""
        s = self.state
        if not self._canonical:
            update = apply_event(s, event, item_vector=item_vector, config=config)
            if update.state is not s:  # a new state sharing lists only with the old one, ours
                self.state = update.state
                self._index()
            return update
        _validate(s, event)
        if event.event_id in self._event_ids:
            return UserUpdate(state=s, applied=False)
        kind, video_id, ts = event.event_type, event.video_id, event.timestamp

        # Everything that can refuse the event is decided before the first change.
        progress: Progress | None = None
        drop_progress = replace_progress = False
        completed = kind is _COMPLETE
        watch = first = False
        vector = s.vector
        if video_id is not None and kind is not _SET_PREFERENCES:
            if kind in WATCH_EVENTS and not completed and event.position_sec is not None:
                current = s.in_progress.get(video_id)
                if current is None or current.updated_at <= ts:
                    replace_progress = True
                    duration = event.duration_sec or (current.duration_sec if current else 0.0)
                    if duration > 0 and event.position_sec >= config.completion_ratio * duration:
                        drop_progress = completed = True
                    else:
                        progress = Progress(video_id, float(event.position_sec), float(duration), ts)
            if completed and video_id in s.in_progress:
                drop_progress = replace_progress = True
            watch = kind in WATCH_EVENTS or kind is _RATE
            first = watch and video_id not in self._seen
            if item_vector is not None and (first or completed or kind in _FOLDING_KINDS):
                weight = vector_weight(event, config.dislike_stars)
                if completed and kind is not _RATE:
                    weight = _COMPLETE_WEIGHT
                if weight != 0.0:
                    vector = fold_in(s.vector, item_vector, weight, config.vector_decay)

        self._add_event_id(event.event_id)
        s.updated_at = max(s.updated_at, ts)
        if kind is _SET_PREFERENCES:
            s.preferred_genres = list(dict.fromkeys(event.genres))
            self._bound("preferred_genres")
            return UserUpdate(state=s, applied=True, refresh_top_picks=True)
        if video_id is None:  # search and other title-less kinds only mark the user active
            return UserUpdate(state=s, applied=True)

        if replace_progress:
            self._put_progress(video_id, progress, drop_progress)
        cowatch: dict[tuple[str, str], int] = {}
        counts: dict[str, int] = {}
        watched: tuple[str, ...] = ()
        taste_changed = False
        if watch:
            if kind is _RATE:
                weight = max(0.1, float(event.rating or 0.0) / 5.0)
            else:
                weight = _COMPLETE_WEIGHT if completed else HISTORY_WEIGHTS[kind]
            if first:  # paired with the history as it was before this watch
                cowatch, counts, watched = _sorted_pairs(s.history, video_id, ts, config), {video_id: 1}, (video_id,)
            self._put_history(video_id, ts, weight)
            if first:
                self._add_seen(video_id)
            taste_changed = first or completed or kind is _RATE
        if kind in _OPINION_KINDS:
            disliked, my_list = s.disliked, s.my_list
            taste_changed = _apply_opinions(s, s, event, video_id, config) or taste_changed
            if s.disliked is not disliked:
                self._bound("disliked")
            if s.my_list is not my_list:
                self._bound("my_list")
        s.vector = vector
        # Positional, in UserUpdate's field order (state, applied, cowatch, item_counts, watched,
        # refresh_top_picks): once per event, keywords cost ~0.2 µs more.
        return UserUpdate(s, True, cowatch, counts, watched, taste_changed)

    def apply_events(self, events: Iterable[UserEvent], *, item_vectors: Mapping[str, np.ndarray] | None = None,
                     config: StateConfig = _DEFAULT) -> UserUpdate:
        """``events`` applied in event-time order (ties by ``event_id``), their side effects merged
        (the batched form of :meth:`apply`); the update's state is :attr:`state`. A caller that
        keeps the LiveUser between batches (the evaluation replay) never copies nor re-indexes."""
        cowatch: dict[tuple[str, str], int] = {}
        counts: dict[str, int] = {}
        applied = refresh = False
        watched: tuple[str, ...] = ()
        for event in sorted(events, key=_EVENT_ORDER):
            vec = item_vectors.get(event.video_id) if item_vectors is not None and event.video_id else None
            update = self.apply(event, item_vector=vec, config=config)
            applied |= update.applied
            refresh |= update.refresh_top_picks
            watched += update.watched
            for pair, n in update.cowatch.items():
                cowatch[pair] = cowatch.get(pair, 0) + n
            for video_id, n in update.item_counts.items():
                counts[video_id] = counts.get(video_id, 0) + n
        return UserUpdate(state=self.state, applied=applied, cowatch=cowatch, item_counts=counts, watched=watched,
                          refresh_top_picks=refresh)

    # -- the in-place forms of the reference's list updates, each followed by its bound check --
    def _add_event_id(self, event_id: str) -> None:
        ids = self.state.recent_event_ids
        ids.append(event_id)
        self._event_ids.add(event_id)
        self._event_id_chars += len(event_id)
        if len(ids) > EVENT_IDS_LIMIT:
            gone = ids.pop(0)
            self._event_ids.discard(gone)
            self._event_id_chars -= len(gone)
        budget, per_entry = _EVENT_IDS_CHECK
        if 6 * self._event_id_chars + per_entry * len(ids) > budget:
            self._bound("recent_event_ids")

    def _put_progress(self, video_id: str, progress: Progress | None, drop: bool) -> None:
        in_progress = self.state.in_progress
        had = video_id in in_progress
        if drop:
            in_progress.pop(video_id, None)
        elif progress is not None:
            in_progress[video_id] = progress
        if had and video_id not in in_progress:
            self._progress_chars -= len(video_id)
        elif not had and video_id in in_progress:
            self._progress_chars += len(video_id)
        budget, per_entry = _PROGRESS_CHECK
        if len(in_progress) > IN_PROGRESS_LIMIT or 6 * self._progress_chars + per_entry * len(in_progress) > budget:
            self._bound("in_progress")

    def _put_history(self, video_id: str, ts: int, weight: float) -> None:
        """``state._put_history`` in place: one entry per title, newest first (ties by id)."""
        history, keys = self.state.history, self._history_keys
        old = self._history.get(video_id)
        if old is not None:  # most often the newest entry (a session's heartbeats)
            at = 0 if history[0] is old else bisect.bisect_left(keys, _history_key(old))
            del history[at], keys[at]
            entry = HistoryEntry(video_id, max(ts, old.ts), max(weight, old.weight))
        else:
            entry = HistoryEntry(video_id, ts, weight)
            self._history_chars += len(video_id)
        key = _history_key(entry)
        at = 0 if not keys or key <= keys[0] else bisect.bisect_left(keys, key)
        history.insert(at, entry)
        keys.insert(at, key)
        self._history[video_id] = entry
        if len(history) > HISTORY_LIMIT:
            gone = history.pop()
            keys.pop()
            del self._history[gone.video_id]
            self._history_chars -= len(gone.video_id)
        budget, per_entry = _HISTORY_CHECK
        if 6 * self._history_chars + per_entry * len(history) > budget:
            self._bound("history")

    def _add_seen(self, video_id: str) -> None:
        seen = self.state.seen
        seen.insert(0, video_id)
        self._seen.add(video_id)
        self._seen_chars += len(video_id)
        if len(seen) > SEEN_LIMIT:
            gone = seen.pop()
            self._seen.discard(gone)
            self._seen_chars -= len(gone)
        budget, per_entry = _SEEN_CHECK
        if 6 * self._seen_chars + per_entry * len(seen) > budget:
            self._bound("seen")


def apply_events(state: UserState, events: Iterable[UserEvent], *,
                 item_vectors: Mapping[str, np.ndarray] | None = None,
                 config: StateConfig = _DEFAULT) -> UserUpdate:
    """:func:`streamrec.recommend.state.apply_events` on the hot path: ``state`` is copied once
    (never changed), then every event is applied to the copy in place."""
    ordered = sorted(events, key=_EVENT_ORDER)
    if not ordered:
        return UserUpdate(state=state, applied=False)
    update = LiveUser(state).apply_events(ordered, item_vectors=item_vectors, config=config)
    return update if update.applied else dataclasses.replace(update, state=state)
