"""apply_user_updates: users and the counters their events produced, in one write, applied once."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.model import UserState
from streamrec.store import RecordTooBig, Store
from streamrec.store.base import UserChange
from streamrec.store.sqlite import SqliteStore


def _change(user: str, ids: list[str], seen: list[str], pairs: dict, counts: dict) -> UserChange:  # type: ignore[type-arg]
    return UserChange(UserState(user, seen=seen, recent_event_ids=ids), pairs, counts, tuple(ids))


def test_users_and_their_counters_are_written_together(store: Store, key: Callable[[str], str]) -> None:
    a, b, u = key("a"), key("b"), key("u")
    store.apply_user_updates([_change(u, ["e1"], [a, b], {(a, b): 1, (b, a): 3}, {a: 1, b: 1})])
    assert store.get_user(u) is not None and store.get_user(u).seen == [a, b]  # type: ignore[union-attr]
    assert store.get_neighbours([b], 5) == {b: [(a, 3)]}
    assert store.get_item_counts([a, b]) == {a: 1, b: 1}


def test_a_change_whose_events_the_stored_user_knows_adds_nothing_again(store: Store, key: Callable[[str], str]) -> None:
    # A retried or re-run write (a bundle retried, a split bundle re-processed by the runner): the
    # stored state already holds the events, so their counters were already added with it.
    a, b, u = key("a"), key("b"), key("u")
    first = _change(u, ["e1", "e2"], [a, b], {(a, b): 1, (b, a): 1}, {a: 1, b: 1})
    store.apply_user_updates([first])
    store.apply_user_updates([first])
    later = UserChange(UserState(u, seen=[a, b], recent_event_ids=["e1", "e2", "e3"]), {(a, b): 2}, {a: 1}, ("e3",))
    store.apply_user_updates([later, later])
    assert store.get_item_counts([a, b]) == {a: 2, b: 1}  # `later` twice in one call: once, too
    assert store.get_neighbours([a], 5) == {a: [(b, 3)]}


def test_sqlite_writes_all_of_it_or_nothing(tmp_path: Path) -> None:
    # A crash or a refused record between the counters and the users must not leave counters whose
    # events the stored users do not know (a replay would count them again).
    store = SqliteStore(tmp_path / "state.db", max_record_bytes=2000)
    try:
        too_big = UserState("big", seen=[os.urandom(30).hex() for _ in range(500)])  # incompressible
        with pytest.raises(RecordTooBig):
            store.apply_user_updates([_change("ok", ["e1"], ["a"], {("a", "b"): 1}, {"a": 1}),
                                      UserChange(too_big, {}, {"b": 1}, ("e2",))])
        assert store.get_users(["ok", "big"]) == {}
        assert store.get_item_counts(["a", "b"]) == {} and store.get_neighbours(["a"], 5) == {}
        store.apply_user_updates([_change("ok", ["e1"], ["a"], {("a", "b"): 1}, {"a": 1})])
        assert store.get_item_counts(["a"]) == {"a": 1} and set(store.get_users(["ok"])) == {"ok"}
        # The refused call's co-watch increments, staged before the refusal, went with it.
        assert store.get_neighbours(["a"], 5) == {"a": [("b", 1)]}
    finally:
        store.close()
