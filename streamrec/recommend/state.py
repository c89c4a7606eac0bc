"""The per-user state machine: one event in, the new :class:`UserState` and the side effects out.

Pure: :func:`apply_event` never mutates its input and does no I/O. It is the readable rule and
the oracle: the pipelines' keyed stateful steps, the evaluation replay (:func:`apply_events`) and
the benches run the same rules in place (:class:`streamrec.recommend.live.LiveUser`, the hot path,
held equal to this code after every event of both shared rating logs by
tests/recommend/test_live.py), so the state the feed reads is what these rules say.

Rules, per event kind:

- **Idempotence.** An event whose ``event_id`` is among the user's ``recent_event_ids`` (the last
  ``EVENT_IDS_LIMIT``) changes nothing (``applied=False``): replays after a restart do not
  double-count. Older duplicates are the checkpointing layer's job.
- **History** (newest first by event time, one entry per title): watch events (play, pause,
  heartbeat, complete) and ratings put the title in history with a weight by kind
  (:data:`HISTORY_WEIGHTS`: complete > play > heartbeat; a rating weighs ``stars / 5``); a
  repeat keeps the newest time and the strongest weight.
- **Continue watching**: play/pause/heartbeat with a position store ``Progress``; ``complete``, or a
  position >= ``completion_ratio`` of the duration, removes it (and counts as a completion).
- **Seen**: every watched or rated title (the top-picks filter). **Disliked**: ``dislike`` or a
  rating <= ``dislike_stars``; ``like`` or a higher rating clears it. **My list**: add/remove.
  **Preferred genres**: replaced by ``set_preferences``. ``updated_at`` is the newest event time.
- **Co-watch** side effects: the *first* watch of a title pairs it with the user's recent window
  (the ``cowatch_window`` newest history titles within ``cowatch_window_ms`` of it). Each pair adds
  1 in both directions, and the direction *earlier -> later* gets ``next_bonus`` more when the
  earlier title is among the ``next_span`` titles watched just before: "watched next" is what
  the ranking reads from ``cowatch[(last_watched, candidate)]``. Titles with the same timestamp are
  simultaneous: no direction is preferred. The first watch also adds 1 to the title's count.
- **Late and out-of-order events** are applied by event time, not arrival: history is kept
  sorted by timestamp (a late watch lands at its place, not on top), a late progress report
  older than the stored one is ignored, "watched next" is decided by timestamps, and
  ``updated_at`` never moves back. There is no lateness cut-off here: a late fact (a watch, a
  dislike) is still a fact; the pipeline decides what windows it still reaches.
- **User vector**: folded in (:func:`streamrec.recommend.vectors.fold_in`) on a title's first
  watch, completion, rating, like, dislike or list add, when the caller passes the item vector.
- **Bounded by bytes as well as by count.** Ids (``event_id``, ``user_id``, ``video_id``, a genre)
  longer than :data:`MAX_ID_BYTES` (UTF-8) are refused (``ValueError`` naming the field), and every
  per-user list keeps its newest entries within a byte budget (:data:`LIST_BYTE_BUDGETS`, counted as
  the store's JSON spells them) besides its count limit, so the encoded user record never exceeds
  :data:`USER_RECORD_BUDGET` (< half the store's 1 MiB record limit) whatever ids arrive: one
  hostile user cannot make a record the store refuses (issue 11, defect 2). Ordinary ids never
  reach a byte budget (200 history entries of 40-character ids take ~12 KiB of 64).
"""

from __future__ import annotations

import bisect
import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from streamrec.events.model import TITLE_EVENTS, WATCH_EVENTS, EventType, UserEvent
from streamrec.model import (
    DISLIKED_LIMIT,
    EVENT_IDS_LIMIT,
    HISTORY_LIMIT,
    IN_PROGRESS_LIMIT,
    MY_LIST_LIMIT,
    SEEN_LIMIT,
    TOP_PICKS_LIMIT,
    HistoryEntry,
    Progress,
    UserState,
)
from streamrec.recommend.vectors import USER_DECAY, fold_in

#: Longest id (event, user, video, genre) the state machine accepts, in UTF-8 bytes.
MAX_ID_BYTES = 512
#: Most preferred genres kept (newest preference first).
GENRES_LIMIT = 50
_KIB = 1024
#: Byte budget of each per-user list as the store encodes it (JSON before compression): the
#: newest entries that fit are kept. Sized so ordinary users are never cut.
LIST_BYTE_BUDGETS: Mapping[str, int] = {
    "history": 64 * _KIB,
    "in_progress": 32 * _KIB,
    "seen": 192 * _KIB,
    "disliked": 32 * _KIB,
    "my_list": 32 * _KIB,
    "top_picks": 32 * _KIB,
    "preferred_genres": 8 * _KIB,
    "recent_event_ids": 64 * _KIB,
}
#: JSON bytes of one entry besides its id: history ``[id,ts,weight],`` and continue watching
#: ``[id,pos,dur,ts],`` (numbers at their longest repr), top picks ``[id,score],``, plain ids ``id,``.
_ENTRY_OVERHEAD = {"history": 50, "in_progress": 75, "top_picks": 30}
#: The encoded user record never exceeds this: the lists' budgets, the 64-float vector, the fixed
#: fields and the format's own keys (zlib never adds more than 0.1% + a few bytes).
USER_RECORD_BUDGET = sum(LIST_BYTE_BUDGETS.values()) + 4 * _KIB

#: How strongly a kind of watch says "I like this" (history weight, positive).
HISTORY_WEIGHTS: Mapping[EventType, float] = {
    EventType.COMPLETE: 1.0,
    EventType.PLAY: 0.6,
    EventType.PAUSE: 0.3,
    EventType.HEARTBEAT: 0.3,
}
#: Signed weight of each kind in the user-vector fold-in (ratings: see :func:`vector_weight`).
EVENT_WEIGHTS: Mapping[EventType, float] = {
    **HISTORY_WEIGHTS,
    EventType.LIKE: 0.8,
    EventType.ADD_TO_LIST: 0.5,
    EventType.DISLIKE: -1.0,
}


@dataclass(frozen=True, slots=True)
class StateConfig:
    """Knobs of the state machine (defaults are the ones evaluated in docs/quality.md)."""

    cowatch_window: int = 20  # recent titles a new watch is paired with
    cowatch_window_ms: int = 30 * 24 * 3600 * 1000  # ... if watched within this time of it
    next_bonus: int = 2  # extra count on the "watched next" direction
    next_span: int = 3  # titles watched just before that get the bonus
    completion_ratio: float = 0.95  # a position this far in counts as complete
    dislike_stars: float = 2.0  # ratings at or below this are dislikes
    vector_decay: float = USER_DECAY

    def __post_init__(self) -> None:
        if self.cowatch_window < 0 or self.next_bonus < 0 or self.next_span < 0:
            raise ValueError("cowatch_window, next_bonus, next_span: must be >= 0")
        if not 0.0 < self.completion_ratio <= 1.0:
            raise ValueError(f"completion_ratio: must be in (0, 1], got {self.completion_ratio}")


@dataclass(slots=True)  # not frozen: one per event on the hot path, where frozen's __init__ costs twice as much
class UserUpdate:
    """The result of one event: the new state and what the pipeline must write besides it
    (made once, never changed)."""

    state: UserState
    applied: bool  # False: a duplicate event_id, nothing changed
    cowatch: dict[tuple[str, str], int] = field(default_factory=dict)  # directed pair -> increment
    item_counts: dict[str, int] = field(default_factory=dict)  # title -> increment
    watched: tuple[str, ...] = ()  # titles counted as new watches (trending counts them)
    refresh_top_picks: bool = False  # the user's taste changed: recompute top picks (nearline)


def vector_weight(event: UserEvent, dislike_stars: float = 2.0) -> float:
    """Signed fold-in weight: by kind, or for ratings ``(stars - 3) / 2`` (dislikes at most -0.5)."""
    if event.event_type is EventType.RATE and event.rating is not None:
        weight = (event.rating - 3.0) / 2.0
        return min(weight, -0.5) if event.rating <= dislike_stars else weight
    return EVENT_WEIGHTS.get(event.event_type, 0.0)


def _json_len(text: str) -> int:
    """Bytes of ``text`` as a JSON string (quotes included), as the store's codec writes it."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return len(text) + 2
    return len(json.dumps(text, ensure_ascii=False).encode())


def _fit_newest(ids: list[str], budget: int, overhead: int = 1) -> int:
    """How many of ``ids`` (newest first) fit in ``budget`` bytes, ``overhead`` more per entry."""
    if 6 * sum(map(len, ids)) + (overhead + 2) * len(ids) <= budget:  # 6: the longest JSON per char
        return len(ids)
    used = 0
    for n, text in enumerate(ids):
        used += _json_len(text) + overhead
        if used > budget:
            return n
    return len(ids)


def _cut(state: UserState, name: str) -> object | None:
    """List ``name`` of ``state`` cut to its count limit and byte budget, or None if it fits."""
    budget = LIST_BYTE_BUDGETS[name]
    if name == "history":
        n = _fit_newest([h.video_id for h in state.history[:HISTORY_LIMIT]], budget, _ENTRY_OVERHEAD[name])
        return state.history[:n] if n < len(state.history) else None
    if name == "top_picks":
        n = _fit_newest([t.video_id for t in state.top_picks[:TOP_PICKS_LIMIT]], budget, _ENTRY_OVERHEAD[name])
        return state.top_picks[:n] if n < len(state.top_picks) else None
    if name == "in_progress":
        progress = sorted(state.in_progress.values(), key=lambda p: (-p.updated_at, p.video_id))
        n = _fit_newest([p.video_id for p in progress[:IN_PROGRESS_LIMIT]], budget, _ENTRY_OVERHEAD[name])
        return {p.video_id: p for p in progress[:n]} if n < len(progress) else None
    if name == "recent_event_ids":  # newest last
        ids = state.recent_event_ids
        n = _fit_newest(ids[::-1][:EVENT_IDS_LIMIT], budget)
        return ids[len(ids) - n:] if n < len(ids) else None
    ids = getattr(state, name)
    n = _fit_newest(ids[:_COUNT_LIMITS[name]], budget)
    return ids[:n] if n < len(ids) else None


_COUNT_LIMITS = {"seen": SEEN_LIMIT, "disliked": DISLIKED_LIMIT, "my_list": MY_LIST_LIMIT,
                 "preferred_genres": GENRES_LIMIT}


def bound_state(state: UserState, names: Iterable[str] = LIST_BYTE_BUDGETS) -> UserState:
    """``state`` with its lists (``names``: all by default) cut to their count limits and byte
    budgets, newest entries kept (recent event ids are newest last); ``state`` itself when nothing
    is cut."""
    changes = {name: cut for name in names if (cut := _cut(state, name)) is not None}
    return dataclasses.replace(state, **changes) if changes else state  # type: ignore[arg-type]


def _bounded(old: UserState, new: UserState) -> UserState:
    """:func:`bound_state` over the lists an event replaced (the others are already bounded)."""
    return bound_state(new, [name for name in LIST_BYTE_BUDGETS if getattr(new, name) is not getattr(old, name)])


def _check_id(name: str, value: str | None) -> None:
    # UTF-8 (with surrogatepass) spends at most 4 bytes per character: short ids need no encoding.
    if value is not None and 4 * len(value) > MAX_ID_BYTES and len(value.encode(errors="surrogatepass")) > MAX_ID_BYTES:
        raise ValueError(f"{name}: longer than {MAX_ID_BYTES} bytes ({len(value.encode(errors='surrogatepass'))})")


def _validate(state: UserState, event: UserEvent) -> None:
    _check_id("event_id", event.event_id)
    _check_id("user_id", event.user_id)
    _check_id("video_id", event.video_id)
    for genre in event.genres:
        _check_id("genres", genre)
    if event.user_id != state.user_id:
        raise ValueError(f"user_id: event is for {event.user_id!r}, state is for {state.user_id!r}")
    if event.event_type in TITLE_EVENTS and not event.video_id:
        raise ValueError(f"video_id: required for event_type {event.event_type.value}")
    if event.event_type is EventType.RATE and event.rating is None:
        raise ValueError("rating: required for event_type rate")
    if event.rating is not None and not 0.0 <= event.rating <= 5.0:
        raise ValueError(f"rating: must be in [0, 5] stars, got {event.rating}")


def _cowatch_window(history: list[HistoryEntry], video_id: str, ts: int, config: StateConfig) -> list[HistoryEntry]:
    return [h for h in history[: config.cowatch_window]
            if h.video_id != video_id and abs(h.ts - ts) <= config.cowatch_window_ms]


def _pairs(history: list[HistoryEntry], video_id: str, ts: int, config: StateConfig) -> dict[tuple[str, str], int]:
    window = _cowatch_window(history, video_id, ts, config)
    earlier = sorted((h for h in window if h.ts < ts), key=lambda h: (-h.ts, h.video_id))
    later = sorted((h for h in window if h.ts > ts), key=lambda h: (h.ts, h.video_id))
    bonus_before = {h.video_id for h in earlier[: config.next_span]}
    bonus_after = {h.video_id for h in later[: config.next_span]}
    return _pairs_in(window, video_id, bonus_before, bonus_after, config)


def _pairs_in(window: list[HistoryEntry], video_id: str, bonus_before: set[str], bonus_after: set[str],
              config: StateConfig) -> dict[tuple[str, str], int]:
    """Both directions of each pair (``video_id``, a title of the window), "watched next" bonus included."""
    pairs: dict[tuple[str, str], int] = {}
    for h in window:
        forward = backward = 1  # forward: h -> new title
        if h.video_id in bonus_before:
            forward += config.next_bonus
        elif h.video_id in bonus_after:
            backward += config.next_bonus
        pairs[(h.video_id, video_id)] = forward
        pairs[(video_id, h.video_id)] = backward
    return pairs


def _put_history(history: list[HistoryEntry], video_id: str, ts: int, weight: float) -> list[HistoryEntry]:
    """One entry per title, sorted newest first (ties by id), at its event-time place."""
    old = next((h for h in history if h.video_id == video_id), None)
    rest = [h for h in history if h.video_id != video_id] if old else list(history)
    entry = HistoryEntry(video_id, max(ts, old.ts) if old else ts, max(weight, old.weight) if old else weight)
    keys = [(-h.ts, h.video_id) for h in rest]
    rest.insert(bisect.bisect_left(keys, (-entry.ts, entry.video_id)), entry)
    return rest[:HISTORY_LIMIT]


def apply_event(state: UserState, event: UserEvent, *, item_vector: np.ndarray | None = None,
                config: StateConfig = StateConfig()) -> UserUpdate:
    """Apply one event to one user's state (see the module docstring for the rules).

    ``item_vector`` is the vector of ``event.video_id`` if the caller has one (for the user-vector
    fold-in). Raises ``ValueError`` naming the field for an event that does not fit the state.
    """
    _validate(state, event)
    if event.event_id in state.recent_event_ids:
        return UserUpdate(state=state, applied=False)
    kind, video_id, ts = event.event_type, event.video_id, event.timestamp
    new = dataclasses.replace(
        state,
        recent_event_ids=(state.recent_event_ids + [event.event_id])[-EVENT_IDS_LIMIT:],
        updated_at=max(state.updated_at, ts),
    )
    if kind is EventType.SET_PREFERENCES:
        new.preferred_genres = list(dict.fromkeys(event.genres))
        return UserUpdate(state=_bounded(state, new), applied=True, refresh_top_picks=True)
    if video_id is None:  # search and other title-less kinds only mark the user active
        return UserUpdate(state=_bounded(state, new), applied=True)

    completed = _apply_progress(state, new, event, video_id, config)
    watch = _apply_watch(state, new, event, video_id, completed, config)
    taste_changed = _apply_opinions(state, new, event, video_id, config) or watch.taste_changed
    folds = watch.first or completed or kind in (EventType.RATE, EventType.LIKE, EventType.DISLIKE,
                                                 EventType.ADD_TO_LIST)
    if item_vector is not None and folds:
        weight = vector_weight(event, config.dislike_stars)
        if completed and kind is not EventType.RATE:
            weight = HISTORY_WEIGHTS[EventType.COMPLETE]
        if weight != 0.0:
            new.vector = fold_in(state.vector, item_vector, weight, config.vector_decay)
    return UserUpdate(state=_bounded(state, new), applied=True, cowatch=watch.cowatch, item_counts=watch.counts,
                      watched=watch.watched, refresh_top_picks=taste_changed)


def _apply_progress(state: UserState, new: UserState, event: UserEvent, video_id: str, config: StateConfig) -> bool:
    """Continue watching: a position moves the title's progress (a newer report wins); near the
    end, or a ``complete``, takes it out. Returns whether the title is now completed."""
    kind, ts = event.event_type, event.timestamp
    completed = kind is EventType.COMPLETE
    if kind in WATCH_EVENTS and not completed and event.position_sec is not None:
        current = state.in_progress.get(video_id)
        if current is None or current.updated_at <= ts:
            duration = event.duration_sec or (current.duration_sec if current else 0.0)
            in_progress = dict(state.in_progress)
            if duration > 0 and event.position_sec >= config.completion_ratio * duration:
                in_progress.pop(video_id, None)
                completed = True
            else:
                in_progress[video_id] = Progress(video_id, float(event.position_sec), float(duration), ts)
            new.in_progress = in_progress
    if completed and video_id in new.in_progress:
        new.in_progress = {k: v for k, v in new.in_progress.items() if k != video_id}
    return completed


@dataclasses.dataclass(frozen=True, slots=True)
class _Watch:
    first: bool = False  # the user's first watch of the title
    cowatch: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    watched: tuple[str, ...] = ()
    taste_changed: bool = False


def _apply_watch(state: UserState, new: UserState, event: UserEvent, video_id: str, completed: bool,
                 config: StateConfig) -> _Watch:
    """History, seen and the co-watch/item-count side effects of a watch (or a rating)."""
    kind, ts = event.event_type, event.timestamp
    if not (kind in WATCH_EVENTS or kind is EventType.RATE):
        return _Watch()
    first = video_id not in state.seen
    if kind is EventType.RATE:
        weight = max(0.1, float(event.rating or 0.0) / 5.0)
    else:
        weight = HISTORY_WEIGHTS[EventType.COMPLETE if completed else kind]
    new.history = _put_history(state.history, video_id, ts, weight)
    taste_changed = first or completed or kind is EventType.RATE
    if not first:
        return _Watch(taste_changed=taste_changed)
    new.seen = ([video_id] + state.seen)[:SEEN_LIMIT]
    return _Watch(True, _pairs(state.history, video_id, ts, config), {video_id: 1}, (video_id,), taste_changed)


def _apply_opinions(state: UserState, new: UserState, event: UserEvent, video_id: str, config: StateConfig) -> bool:
    """Dislikes (a dislike, or a low rating), likes and a good rating lifting a dislike, my list.
    Returns whether the user's taste changed."""
    kind = event.event_type
    changed = kind is EventType.LIKE
    disliked = kind is EventType.DISLIKE or (
        kind is EventType.RATE and event.rating is not None and event.rating <= config.dislike_stars)
    if disliked and video_id not in state.disliked:
        new.disliked = ([video_id] + state.disliked)[:DISLIKED_LIMIT]
        changed = True
    elif (kind is EventType.LIKE or kind is EventType.RATE) and not disliked and video_id in state.disliked:
        new.disliked = [v for v in state.disliked if v != video_id]
        changed = True
    if kind is EventType.ADD_TO_LIST and video_id not in state.my_list:
        new.my_list = ([video_id] + state.my_list)[:MY_LIST_LIMIT]
        changed = True
    elif kind is EventType.REMOVE_FROM_LIST and video_id in state.my_list:
        new.my_list = [v for v in state.my_list if v != video_id]
        changed = True
    return changed


def apply_events(state: UserState, events: Iterable[UserEvent], *,
                 item_vectors: Mapping[str, np.ndarray] | None = None,
                 config: StateConfig = StateConfig()) -> UserUpdate:
    """Apply a batch of one user's events in event-time order (ties by ``event_id``) and merge
    their side effects: the pipeline's batched form of :func:`apply_event`. Runs on the in-place
    hot path (:func:`streamrec.recommend.live.apply_events`: ``state`` is copied once, never
    changed), which tests/recommend/test_live.py holds equal to folding :func:`apply_event`."""
    from streamrec.recommend import live  # live builds on this module's rules

    return live.apply_events(state, events, item_vectors=item_vectors, config=config)
