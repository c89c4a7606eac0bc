"""The per-user state machine: known answers, idempotence, late events, side effects."""

from __future__ import annotations

import numpy as np
import pytest

from streamrec.events.model import EventType, UserEvent
from streamrec.model import UserState
from streamrec.recommend import StateConfig, apply_event, apply_events, item_basis

U = "u1"


def ev(n: int, kind: EventType, video: str | None = None, ts: int | None = None, **kw: object) -> UserEvent:
    return UserEvent(event_id=f"e{n}", event_type=kind, user_id=U, timestamp=ts if ts is not None else n * 1000,
                     video_id=video, **kw)  # type: ignore[arg-type]


DEFAULT = StateConfig()


def run(*events: UserEvent, config: StateConfig = DEFAULT) -> UserState:
    state = UserState(U)
    for e in events:
        state = apply_event(state, e, config=config).state
    return state


def test_history_is_newest_first_one_entry_per_title_with_kind_weights() -> None:
    state = run(ev(1, EventType.HEARTBEAT, "a", position_sec=10, duration_sec=100),
                ev(2, EventType.COMPLETE, "b"), ev(3, EventType.PLAY, "c"), ev(4, EventType.PLAY, "b"))
    assert [(h.video_id, h.ts) for h in state.history] == [("b", 4000), ("c", 3000), ("a", 1000)]
    weights = {h.video_id: h.weight for h in state.history}
    assert weights["b"] > weights["c"] > weights["a"]  # complete kept over the later play
    assert state.seen == ["c", "b", "a"]
    assert state.updated_at == 4000


def test_continue_watching_updates_and_completion_removes() -> None:
    state = run(ev(1, EventType.PLAY, "a", position_sec=0, duration_sec=100),
                ev(2, EventType.HEARTBEAT, "a", position_sec=40, duration_sec=100),
                ev(3, EventType.PAUSE, "b", position_sec=5, duration_sec=50))
    assert state.in_progress["a"].position_sec == 40
    assert set(state.in_progress) == {"a", "b"}
    state = apply_event(state, ev(4, EventType.COMPLETE, "b")).state
    assert set(state.in_progress) == {"a"}
    near_end = apply_event(state, ev(5, EventType.HEARTBEAT, "a", position_sec=96, duration_sec=100)).state
    assert near_end.in_progress == {}
    assert near_end.history[0].weight == 1.0  # counted as a completion


def test_late_heartbeat_does_not_move_progress_back() -> None:
    state = run(ev(1, EventType.HEARTBEAT, "a", ts=5000, position_sec=300, duration_sec=1000),
                ev(2, EventType.HEARTBEAT, "a", ts=4000, position_sec=100, duration_sec=1000))
    assert state.in_progress["a"].position_sec == 300
    assert state.updated_at == 5000


def test_late_watch_lands_at_its_event_time_place() -> None:
    state = run(ev(1, EventType.COMPLETE, "a", ts=1000), ev(2, EventType.COMPLETE, "c", ts=3000),
                ev(3, EventType.COMPLETE, "b", ts=2000))
    assert [h.video_id for h in state.history] == ["c", "b", "a"]


def test_duplicate_event_id_changes_nothing() -> None:
    state = run(ev(1, EventType.COMPLETE, "a"))
    again = apply_event(state, ev(1, EventType.COMPLETE, "a"))
    assert not again.applied
    assert again.state is state
    assert again.cowatch == {} and again.item_counts == {}


def test_input_state_is_not_mutated() -> None:
    state = run(ev(1, EventType.COMPLETE, "a"))
    before = (list(state.history), list(state.seen), list(state.recent_event_ids))
    apply_event(state, ev(2, EventType.COMPLETE, "b"))
    assert (state.history, state.seen, state.recent_event_ids) == before


def test_first_watch_pairs_with_window_and_prefers_the_watched_next_direction() -> None:
    config = StateConfig(cowatch_window=2, next_bonus=2, next_span=1)
    state = run(ev(1, EventType.COMPLETE, "a"), ev(2, EventType.COMPLETE, "b"), config=config)
    update = apply_event(state, ev(3, EventType.COMPLETE, "c"), config=config)
    # b was watched just before c: b -> c carries the bonus; a is in the window, no bonus.
    assert update.cowatch == {("b", "c"): 3, ("c", "b"): 1, ("a", "c"): 1, ("c", "a"): 1}
    assert update.item_counts == {"c": 1}
    assert update.watched == ("c",)
    assert update.refresh_top_picks
    # A repeat watch is not a new co-watch.
    repeat = apply_event(update.state, ev(4, EventType.PLAY, "a"), config=config)
    assert repeat.cowatch == {} and repeat.item_counts == {} and repeat.watched == ()


def test_window_is_bounded_by_count_and_time() -> None:
    config = StateConfig(cowatch_window=2, cowatch_window_ms=10_000, next_bonus=0)
    state = run(ev(1, EventType.COMPLETE, "old", ts=0), ev(2, EventType.COMPLETE, "a", ts=95_000),
                ev(3, EventType.COMPLETE, "b", ts=96_000), ev(4, EventType.COMPLETE, "c", ts=97_000),
                config=config)
    update = apply_event(state, ev(5, EventType.COMPLETE, "d", ts=100_000), config=config)
    assert {p for p in update.cowatch if p[0] == "d"} == {("d", "c"), ("d", "b")}


def test_simultaneous_watches_pair_without_direction() -> None:
    config = StateConfig(next_bonus=5)
    state = run(ev(1, EventType.COMPLETE, "a", ts=1000), config=config)
    update = apply_event(state, ev(2, EventType.COMPLETE, "b", ts=1000), config=config)
    assert update.cowatch == {("a", "b"): 1, ("b", "a"): 1}


def test_late_watch_gets_the_direction_of_event_time() -> None:
    config = StateConfig(next_bonus=2, next_span=1)
    state = run(ev(1, EventType.COMPLETE, "b", ts=5000), config=config)
    update = apply_event(state, ev(2, EventType.COMPLETE, "a", ts=1000), config=config)
    assert update.cowatch == {("a", "b"): 3, ("b", "a"): 1}  # a was watched first: a -> b is "next"


def test_dislikes_likes_ratings_and_my_list() -> None:
    state = run(ev(1, EventType.DISLIKE, "a"), ev(2, EventType.RATE, "b", rating=1.5),
                ev(3, EventType.RATE, "c", rating=4.0), ev(4, EventType.ADD_TO_LIST, "d"),
                ev(5, EventType.ADD_TO_LIST, "e"), ev(6, EventType.REMOVE_FROM_LIST, "d"))
    assert state.disliked == ["b", "a"]
    assert state.my_list == ["e"]
    assert set(state.seen) == {"b", "c"}  # a rating is a watch; a dislike alone is not
    state = apply_event(state, ev(7, EventType.LIKE, "a")).state
    assert state.disliked == ["b"]


def test_set_preferences_replaces_genres_and_asks_for_refresh() -> None:
    state = run(ev(1, EventType.SET_PREFERENCES, genres=("Drama", "Comedy", "Drama")))
    update = apply_event(state, ev(2, EventType.SET_PREFERENCES, genres=("Horror",)))
    assert state.preferred_genres == ["Drama", "Comedy"]
    assert update.state.preferred_genres == ["Horror"] and update.refresh_top_picks


def test_progress_only_update_does_not_refresh_top_picks() -> None:
    state = run(ev(1, EventType.PLAY, "a", position_sec=0, duration_sec=100))
    update = apply_event(state, ev(2, EventType.HEARTBEAT, "a", position_sec=30, duration_sec=100))
    assert update.applied and not update.refresh_top_picks


@pytest.mark.parametrize(("event", "field"), [
    (UserEvent("x", EventType.PLAY, U, 1), "video_id"),
    (UserEvent("x", EventType.RATE, U, 1, video_id="a"), "rating"),
    (UserEvent("x", EventType.RATE, U, 1, video_id="a", rating=9.0), "rating"),
    (UserEvent("x", EventType.PLAY, "someone-else", 1, video_id="a"), "user_id"),
])
def test_bad_events_name_the_field(event: UserEvent, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        apply_event(UserState(U), event)


def test_vector_moves_towards_watched_and_away_from_disliked() -> None:
    a, b = item_basis("a"), item_basis("b")
    state = apply_event(UserState(U), ev(1, EventType.COMPLETE, "a"), item_vector=a).state
    assert state.vector is not None and float(state.vector @ a) == pytest.approx(1.0, abs=1e-5)
    liked = apply_event(state, ev(2, EventType.COMPLETE, "b"), item_vector=b).state
    disliked = apply_event(state, ev(2, EventType.DISLIKE, "b"), item_vector=b).state
    assert liked.vector is not None and disliked.vector is not None
    assert float(liked.vector @ b) > float(state.vector @ b) > float(disliked.vector @ b)
    assert np.linalg.norm(liked.vector) == pytest.approx(1.0, abs=1e-5)


def test_apply_events_is_order_independent_and_merges_side_effects() -> None:
    events = [ev(1, EventType.COMPLETE, "a", ts=1000), ev(2, EventType.COMPLETE, "b", ts=2000),
              ev(3, EventType.COMPLETE, "c", ts=3000)]
    forward = apply_events(UserState(U), events)
    backward = apply_events(UserState(U), list(reversed(events)))
    assert forward.state == backward.state
    assert forward.cowatch == backward.cowatch
    assert forward.item_counts == {"a": 1, "b": 1, "c": 1}
    assert forward.watched == ("a", "b", "c")
    one_by_one: dict[tuple[str, str], int] = {}
    state = UserState(U)
    for e in events:
        update = apply_event(state, e)
        state = update.state
        for pair, n in update.cowatch.items():
            one_by_one[pair] = one_by_one.get(pair, 0) + n
    assert forward.cowatch == one_by_one
