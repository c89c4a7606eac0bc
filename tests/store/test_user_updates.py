"""apply_user_updates: users and the counters their events produced, in one write."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from streamrec.store import RecordTooBig, Store
from streamrec.store.base import UserState
from streamrec.store.sqlite import SqliteStore


def test_users_and_their_counters_are_written_together(store: Store, key: Callable[[str], str]) -> None:
    a, b, u = key("a"), key("b"), key("u")
    store.apply_user_updates([UserState(u, seen=[a, b])], {(a, b): 1, (b, a): 3}, {a: 1, b: 1})
    assert store.get_user(u) is not None and store.get_user(u).seen == [a, b]  # type: ignore[union-attr]
    assert store.get_neighbours([b], 5) == {b: [(a, 3)]}
    assert store.get_item_counts([a, b]) == {a: 1, b: 1}


def test_sqlite_writes_all_of_it_or_nothing(tmp_path: Path) -> None:
    # A crash or a refused record between the counters and the users must not leave counters whose
    # events the stored users do not know (a replay would count them again).
    store = SqliteStore(tmp_path / "state.db", max_record_bytes=2000)
    try:
        too_big = UserState("big", seen=[os.urandom(30).hex() for _ in range(500)])  # incompressible
        with pytest.raises(RecordTooBig):
            store.apply_user_updates([UserState("ok", seen=["a"]), too_big], {("a", "b"): 1}, {"a": 1})
        assert store.get_users(["ok", "big"]) == {}
        assert store.get_item_counts(["a"]) == {} and store.get_neighbours(["a"], 5) == {}
        store.apply_user_updates([UserState("ok", seen=["a"])], {("a", "b"): 1}, {"a": 1})
        assert store.get_item_counts(["a"]) == {"a": 1} and set(store.get_users(["ok"])) == {"ok"}
    finally:
        store.close()
