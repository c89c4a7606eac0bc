"""The in-place hot path (:class:`streamrec.recommend.live.LiveUser`) against its oracle, the pure
:func:`streamrec.recommend.state.apply_event`: the same state and side effects after every event
of real rating logs (late events, replays, users past every count limit) and of hostile ids
(every byte budget cut)."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from streamrec import ratings as rating_logs
from streamrec.events.model import EventType, UserEvent
from streamrec.model import SEEN_LIMIT, HistoryEntry, UserState
from streamrec.recommend import live as live_module
from streamrec.recommend.live import LiveUser
from streamrec.recommend.live import apply_events as fast_apply_events
from streamrec.recommend.state import MAX_ID_BYTES, StateConfig, UserUpdate, apply_event
from streamrec.recommend.vectors import item_basis

FIELDS = ("user_id", "history", "in_progress", "seen", "disliked", "my_list", "top_picks", "top_picks_at",
          "preferred_genres", "recent_event_ids", "updated_at", "version")


def assert_same_state(fast: UserState, reference: UserState, where: str) -> None:
    for name in FIELDS:
        assert getattr(fast, name) == getattr(reference, name), f"{where}: {name} differs"
    assert list(fast.in_progress) == list(reference.in_progress), f"{where}: in_progress order differs"
    if reference.vector is None:
        assert fast.vector is None, f"{where}: vector differs"
    else:  # bit for bit: the same float32 operations in the same order
        assert fast.vector is not None and fast.vector.tobytes() == reference.vector.tobytes(), f"{where}: vector"


def assert_same_update(fast: UserUpdate, reference: UserUpdate, where: str) -> None:
    assert (fast.applied, fast.cowatch, fast.item_counts, fast.watched, fast.refresh_top_picks) == (
        reference.applied, reference.cowatch, reference.item_counts, reference.watched,
        reference.refresh_top_picks), f"{where}: side effects differ"
    assert_same_state(fast.state, reference.state, where)


DEFAULT = StateConfig()


def replay_both(user_id: str, events: list[UserEvent], config: StateConfig = DEFAULT) -> LiveUser:
    """Every event through both paths (with the title's basis as its item vector); compared after each."""
    reference = UserState(user_id)
    live = LiveUser(UserState(user_id))
    for i, event in enumerate(events):
        vec = item_basis(event.video_id) if event.video_id else None
        try:
            expected = apply_event(reference, event, item_vector=vec, config=config)
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc).split("(")[0]):
                live.apply(event, item_vector=vec, config=config)
            assert_same_state(live.state, reference, f"{user_id} event {i} (refused)")
            continue
        assert_same_update(live.apply(event, item_vector=vec, config=config), expected, f"{user_id} event {i}")
        # What the fast path keeps beside the state still describes it.
        keys = list(map(live_module._history_key, live.state.history))
        assert live._history_keys == keys, f"{user_id} event {i}: history keys differ"
        reference = expected.state
    return live


def log_users(dataset: Path, heavy: int, light: int) -> dict[str, list[UserEvent]]:
    """Each user's sessions in the log's own order (late events included), every 7th replayed later;
    the ``heavy`` users with the most ratings (past the count limits) and ``light`` others."""
    rows = rating_logs.load_ratings(dataset)
    by_user: dict[str, list[rating_logs.Rating]] = {}
    for row in rows:
        by_user.setdefault(row.user_id, []).append(row)
    ranked = sorted(by_user, key=lambda u: (-len(by_user[u]), u))
    chosen = ranked[:heavy] + random.Random(13).sample(ranked[heavy:], light)
    out = {}
    for user_id in chosen:
        events = list(rating_logs.history_events(by_user[user_id]))
        out[user_id] = events + events[::7]
    return out


@pytest.mark.parametrize("dataset", ["movielens_dir", "movietweetings_dir"])
def test_fast_path_equals_the_reference_on_the_shared_logs(dataset: str, request: pytest.FixtureRequest) -> None:
    users = log_users(request.getfixturevalue(dataset), heavy=2, light=40)
    kinds: Counter[EventType] = Counter()
    for user_id, events in users.items():
        live = replay_both(user_id, events)
        kinds.update(e.event_type for e in events)
        assert live.state.recent_event_ids  # the replay did something
    # The logs reached what the fast path keeps apart: late watches, repeats, dislikes, completions.
    assert {EventType.COMPLETE, EventType.PAUSE, EventType.RATE, EventType.DISLIKE} <= set(kinds)
    if dataset == "movielens_dir":  # its heaviest viewers rated more than SEEN_LIMIT titles
        assert max(len(e) for e in users.values()) > SEEN_LIMIT


def test_apply_events_equals_folding_apply_event_on_a_shared_log(movielens_dir: Path) -> None:
    """The batched form (the evaluation replay's) in batches of 1-20 events, input never changed."""
    rng = random.Random(7)
    for user_id, events in log_users(movielens_dir, heavy=1, light=10).items():
        fast = reference = UserState(user_id)
        at = 0
        while at < len(events):
            batch = events[at:at + rng.randrange(1, 21)]
            at += len(batch)
            vectors = {e.video_id: item_basis(e.video_id) for e in batch if e.video_id}
            expected = UserUpdate(reference, False)
            cowatch: Counter[tuple[str, str]] = Counter()
            counts: Counter[str] = Counter()
            watched: tuple[str, ...] = ()
            refresh = False
            for event in sorted(batch, key=lambda e: (e.timestamp, e.event_id)):
                one = apply_event(expected.state, event, item_vector=vectors.get(event.video_id or ""))
                cowatch.update(one.cowatch)
                counts.update(one.item_counts)
                watched += one.watched
                refresh |= one.refresh_top_picks
                expected = UserUpdate(one.state, expected.applied or one.applied)
            before = live_module.own_copy(fast)
            got = fast_apply_events(fast, batch, item_vectors=vectors)
            assert_same_state(fast, before, f"{user_id}: apply_events changed its input")
            assert (got.applied, got.cowatch, got.item_counts, got.watched, got.refresh_top_picks) == (
                expected.applied, dict(cowatch), dict(counts), watched, refresh), f"{user_id} at {at}"
            assert_same_state(got.state, expected.state, f"{user_id} at {at}")
            fast, reference = got.state, expected.state


def synthetic_events(seed: int, n: int) -> list[UserEvent]:
    """Every kind, ids from short to the longest allowed (every byte budget is reached), late
    timestamps, replays, positions around the completion ratio, preference changes."""
    rng = random.Random(seed)
    titles = [f"t{i}" for i in range(60)] + [f"{i}-" + "x" * rng.randrange(400, MAX_ID_BYTES - 8) for i in range(400)]
    events: list[UserEvent] = []
    for i in range(n):
        kind = rng.choice(list(EventType))
        video = None if kind in (EventType.SEARCH, EventType.SET_PREFERENCES) else rng.choice(titles)
        long_id = rng.random() < 0.8
        events.append(UserEvent(
            event_id=(f"{i}-" + "e" * 500) if long_id else f"e{i}", event_type=kind, user_id="u",
            timestamp=1_000_000 + i * 1000 - rng.choice([0, 0, 0, 5_000, 600_000]),
            video_id=video, position_sec=rng.choice([None, 10.0, 500.0, 960.0, 1000.0]),
            duration_sec=rng.choice([None, 0.0, 1000.0]),
            rating=rng.choice([1.0, 2.0, 3.5, 5.0]) if kind is EventType.RATE else None,
            genres=tuple("g" * rng.randrange(1, 400) + str(k) for k in range(rng.randrange(0, 40)))))
        if rng.random() < 0.05 and events:
            events.append(rng.choice(events))  # a replay
    return events


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_equals_the_reference_at_every_byte_budget(seed: int) -> None:
    live = replay_both("u", synthetic_events(seed, 3000))
    # The byte budgets cut the lists, not their count limits.
    assert len(live.state.history) < 200 and len(live.state.recent_event_ids) < 256


def test_a_refused_event_changes_nothing() -> None:
    live = LiveUser(UserState("u"))
    live.apply(UserEvent("e1", EventType.PLAY, "u", 1000, video_id="a"), item_vector=item_basis("a"))
    before = apply_event(UserState("u"), UserEvent("e1", EventType.PLAY, "u", 1000, video_id="a"),
                         item_vector=item_basis("a")).state
    bad = UserEvent("e2", EventType.COMPLETE, "u", 2000, video_id="b", position_sec=10.0, duration_sec=100.0)
    with pytest.raises(ValueError, match="dimension"):
        live.apply(bad, item_vector=np.ones(3, dtype=np.float32))  # a vector of the wrong size
    assert_same_state(live.state, before, "after a refused event")


@pytest.mark.parametrize("history", [
    [HistoryEntry("a", 1000), HistoryEntry("a", 500)],  # a title twice
    [HistoryEntry("a", 500), HistoryEntry("b", 1000)],  # oldest first
    [HistoryEntry("b", 1000), HistoryEntry("a", 1000)],  # a tie out of id order
], ids=["repeated", "unsorted", "tie-unsorted"])
def test_the_callers_state_is_never_changed_and_odd_states_use_the_reference(history: list[HistoryEntry]) -> None:
    odd = UserState("u", history=history, seen=["a"])
    assert not LiveUser(odd)._canonical
    snapshot = UserState("u", history=list(odd.history), seen=list(odd.seen))
    events = [UserEvent(f"e{i}", EventType.PLAY, "u", 2000 + i, video_id=v) for i, v in enumerate("aba")]
    reference = odd
    live = LiveUser(odd)
    for i, e in enumerate(events):
        expected = apply_event(reference, e)
        assert_same_update(live.apply(e), expected, f"odd state event {i}")
        reference = expected.state
    assert_same_state(odd, snapshot, "the caller's state")
    assert_same_state(fast_apply_events(snapshot, events).state, reference, "apply_events")


def test_the_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fast path one rule off (its history kept oldest first) is caught."""
    monkeypatch.setattr(live_module, "_history_key", lambda h: (h.ts, h.video_id))
    with pytest.raises(AssertionError, match="differ"):
        replay_both("u", synthetic_events(3, 300))
