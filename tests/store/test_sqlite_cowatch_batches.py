"""SQLite co-watch writes in multi-row statements: known answers against a plain-Python model.

``SqliteStore.add_cowatch`` cuts a call's increments into upserts of ``_UPSERT_ROWS`` pairs each
(issue 13); these pin the answers of ``get_neighbours`` (top-k by count, ties by id; each item
trimmed to K, ties at the cut keeping the larger id) at and around the chunk boundaries, over
many calls, and the call's atomicity when a later chunk fails.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from streamrec.model import COWATCH_NEIGHBOURS_LIMIT as K
from streamrec.store import sqlite as sqlite_store
from streamrec.store.sqlite import SqliteStore

ROWS = sqlite_store._UPSERT_ROWS


class Model:
    """The contract in plain Python: counts per directed pair, each item cut to its top K."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = {}

    def add(self, increments: dict[tuple[str, str], int]) -> None:
        for (item, neighbour), n in increments.items():
            row = self.rows.setdefault(item, {})
            row[neighbour] = row.get(neighbour, 0) + n
        for item, row in self.rows.items():
            if len(row) > K:  # keep the top K by count, ties: the larger id stays
                kept = sorted(row.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:K]
                self.rows[item] = dict(kept)

    def neighbours(self, items: list[str], k: int) -> dict[str, list[tuple[str, int]]]:
        return {i: sorted(self.rows[i].items(), key=lambda kv: (-kv[1], kv[0]))[:k]
                for i in items if self.rows.get(i)}


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "cowatch.db")
    yield s  # type: ignore[misc]
    s.close()


@pytest.mark.parametrize("pairs", [1, ROWS - 1, ROWS, ROWS + 1, 2 * ROWS, 2 * ROWS + 7])
def test_one_call_at_the_chunk_boundaries(store: SqliteStore, pairs: int) -> None:
    items = [f"i{n}" for n in range(7)]
    increments = {}
    for n in range(pairs):
        increments[(items[n % 7], f"n{n:04d}")] = 1 + n % 5
    model = Model()
    model.add(increments)
    store.add_cowatch(increments)
    assert store.get_neighbours(items, 10 * K) == model.neighbours(items, 10 * K)
    assert store.get_neighbours(items, 3) == model.neighbours(items, 3)


def test_many_calls_with_trims_match_the_model(store: SqliteStore) -> None:
    rng = random.Random(13)
    items = [f"t{n}" for n in range(12)]
    titles = [f"t{n}" for n in range(400)]
    model = Model()
    for _ in range(25):
        increments: dict[tuple[str, str], int] = {}
        for _ in range(rng.randrange(0, 900)):
            item, neighbour = rng.choice(items), rng.choice(titles)
            if item != neighbour:
                increments[(item, neighbour)] = increments.get((item, neighbour), 0) + rng.choice((1, 1, 1, 2, 5))
        model.add(increments)
        store.add_cowatch(increments)
        for k in (1, 20, K, 10 * K):
            assert store.get_neighbours(items, k) == model.neighbours(items, k)
    assert max(len(r) for r in model.rows.values()) == K  # the trim was exercised


def test_a_failing_later_chunk_leaves_nothing_of_the_call(store: SqliteStore) -> None:
    store.add_cowatch({("a", "b"): 1})
    increments = {("a", f"n{n:04d}"): 1 for n in range(ROWS + 10)}
    increments[("a", "n9999")] = 2**70  # not an SQLite integer: the second statement fails
    with pytest.raises(OverflowError):
        store.add_cowatch(increments)
    assert store.get_neighbours(["a"], 10 * K) == {"a": [("b", 1)]}
    store.add_cowatch({("a", "b"): 1})  # the store still takes writes
    assert store.get_neighbours(["a"], 5) == {"a": [("b", 2)]}


def test_counts_of_one_zero_and_below_rank_as_the_contract_says(store: SqliteStore) -> None:
    # The rank index holds the pairs not counted exactly once; those are read apart, in between.
    store.add_cowatch({("a", "p"): 3, ("a", "q"): 1, ("a", "r"): 1, ("a", "s"): 2, ("a", "t"): 1})
    store.add_cowatch({("a", "u"): 0, ("a", "v"): -2, ("a", "w"): 2, ("a", "x"): 1})
    store.add_cowatch({("a", "x"): 1, ("a", "r"): -1})  # x: 1 -> 2 (into the index), r: 1 -> 0
    full = [("p", 3), ("s", 2), ("w", 2), ("x", 2), ("q", 1), ("t", 1), ("r", 0), ("u", 0), ("v", -2)]
    for k in range(1, 12):
        assert store.get_neighbours(["a"], k) == {"a": full[:k]}, k


def test_a_random_mix_with_decrements_matches_the_model(store: SqliteStore) -> None:
    rng = random.Random(7)
    items, titles = [f"m{n}" for n in range(4)], [f"m{n}" for n in range(60)]
    model = Model()
    for _ in range(40):
        increments = {(rng.choice(items), rng.choice(titles)): rng.choice((1, 1, 1, 2, -1, 0)) for _ in range(30)}
        increments = {p: n for p, n in increments.items() if p[0] != p[1]}
        model.add(increments)
        store.add_cowatch(increments)
        for k in (1, 2, 5, 30, 100):
            assert store.get_neighbours(items, k) == model.neighbours(items, k)


#: The co-watch schema of the stores made before issue 13 (a full rank index, a per-item
#: neighbour count kept by triggers).
OLD_COWATCH_SCHEMA = f"""
CREATE TABLE cowatch (
    video_id TEXT NOT NULL, neighbour TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (video_id, neighbour)) WITHOUT ROWID;
CREATE INDEX cowatch_rank ON cowatch(video_id, count DESC, neighbour);
CREATE TABLE cowatch_size (video_id TEXT PRIMARY KEY, neighbours INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX cowatch_over_limit ON cowatch_size(video_id) WHERE neighbours > {K};
CREATE TRIGGER cowatch_added AFTER INSERT ON cowatch BEGIN
    INSERT INTO cowatch_size VALUES (NEW.video_id, 1)
    ON CONFLICT (video_id) DO UPDATE SET neighbours = neighbours + 1;
END;
CREATE TRIGGER cowatch_removed AFTER DELETE ON cowatch BEGIN
    UPDATE cowatch_size SET neighbours = neighbours - 1 WHERE video_id = OLD.video_id;
END;
"""


def test_a_store_made_before_issue_13_is_migrated_and_answers_the_same(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(OLD_COWATCH_SCHEMA)
    old = {("x", f"n{n:03d}"): 1 + n % 3 for n in range(K)} | {("y", "x"): 1, ("y", "z"): 4}
    conn.executemany("INSERT INTO cowatch VALUES (?, ?, ?)", [(a, b, n) for (a, b), n in old.items()])
    conn.close()
    model = Model()
    model.add(old)
    store = SqliteStore(path)
    try:
        assert store.get_neighbours(["x", "y"], 10 * K) == model.neighbours(["x", "y"], 10 * K)
        assert store.get_neighbours(["x", "y"], 7) == model.neighbours(["x", "y"], 7)
        more = {("x", "new1"): 5, ("x", "new2"): 1, ("y", "x"): 1}  # x goes over K: trimmed
        model.add(more)
        store.add_cowatch(more)
        assert store.get_neighbours(["x", "y"], 10 * K) == model.neighbours(["x", "y"], 10 * K)
        assert len(store.get_neighbours(["x"], 10 * K)["x"]) == K
        schema = {name for (name,) in store._conn().execute("SELECT name FROM sqlite_master")}
        assert "cowatch_rank_multi" in schema
        assert not schema & {"cowatch_rank", "cowatch_size", "cowatch_added", "cowatch_removed"}
    finally:
        store.close()


def test_the_trim_sees_rows_another_connection_added(tmp_path: Path) -> None:
    # add_cowatch remembers at most how many rows each item has, until another connection commits.
    path = tmp_path / "two.db"
    first, second = SqliteStore(path), SqliteStore(path)
    try:
        first.add_cowatch({("x", f"a{n:03d}"): 2 for n in range(K - 1)})  # K - 1 rows, remembered
        second.add_cowatch({("x", f"b{n}"): 3 for n in range(3)})  # K + 2 rows: trimmed to K by second
        first.add_cowatch({("x", "c"): 9})  # K + 1 rows: first must count them, not trust K - 1 + 1
        kept = first.get_neighbours(["x"], 10 * K)["x"]
        assert len(kept) == K and kept[0] == ("c", 9)
        # ties at the cut: the larger id stays (second cut a000 and a001, first a002)
        assert ("a002", 2) not in kept and ("a003", 2) in kept
    finally:
        first.close()
        second.close()


def test_the_trim_after_a_rolled_back_outer_transaction(store: SqliteStore) -> None:
    store.add_cowatch({("x", f"a{n:03d}"): 1 for n in range(K - 3)})
    with pytest.raises(RuntimeError), store._write():  # an outer transaction (apply_user_updates')
        store.add_cowatch({("x", f"b{n}"): 1 for n in range(3)})  # K rows inside it, then undone
        raise RuntimeError("the rest of the outer write failed")
    store.add_cowatch({("x", f"c{n}"): 5 for n in range(4)})  # K + 1 rows: one trimmed
    model = Model()
    model.add({("x", f"a{n:03d}"): 1 for n in range(K - 3)})
    model.add({("x", f"c{n}"): 5 for n in range(4)})
    assert store.get_neighbours(["x"], 10 * K) == model.neighbours(["x"], 10 * K)
    assert len(model.rows["x"]) == K
