"""The Flink job's adapters without Flink: held writes are released only after a checkpoint that
contains them, and released writes are idempotent."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.flink.core import CheckpointWatch, Pending
from pipelines.flink.items import ItemTotalsWriter
from streamrec.recommend.vectors import item_basis
from streamrec.store import open_store


class FakeWatch(CheckpointWatch):
    """Answers polls with a completed checkpoint's trigger time instead of the REST API."""

    def __init__(self) -> None:
        super().__init__("http://unused", "job", min_interval_s=0.0, clock_margin_ms=50)
        self.trigger_ms = 0

    def _get(self, path: str) -> Any:
        if path == "/jobs/overview":
            return {"jobs": [{"jid": "j", "name": "job", "state": "RUNNING"}]}
        return {"latest": {"completed": {"id": 7, "trigger_timestamp": self.trigger_ms}}}


def test_a_write_waits_for_a_checkpoint_triggered_after_it() -> None:
    watch, pending = FakeWatch(), Pending()
    pending.add("w")
    made_at = pending.groups[0][0]
    watch.trigger_ms = made_at - 1  # completed, but triggered before the write: it does not hold it
    assert pending.pop_ready(watch) == []
    watch.trigger_ms = made_at + 10  # within the clock margin: not yet
    assert pending.pop_ready(watch) == []
    watch.trigger_ms = made_at + 60
    assert pending.pop_ready(watch) == ["w"] and pending.groups == []


def test_released_item_totals_add_nothing_when_written_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    writer = ItemTotalsWriter(url)
    pairs, counts = {("a", "b"): 3, ("b", "a"): 1}, {"a": 1, "b": 1}
    checkpointed = writer.initial(["a", "b"])  # the keyed state a checkpoint holds
    writer.write(copy.deepcopy(checkpointed), pairs, counts)
    store = open_store(url)
    first = (store.get_item_counts(["a", "b"]), store.get_neighbours(["a", "b"], 10), store.get_item_vectors(["a"]))
    # A crash after the write, before the next checkpoint: restored, the same write is released again.
    writer.write(copy.deepcopy(checkpointed), pairs, counts)
    again = (store.get_item_counts(["a", "b"]), store.get_neighbours(["a", "b"], 10), store.get_item_vectors(["a"]))
    assert first[0] == again[0] == {"a": 1, "b": 1}
    assert first[1] == again[1] == {"a": [("b", 3)], "b": [("a", 1)]}
    assert np.allclose(first[2]["a"], again[2]["a"])
    assert np.allclose(first[2]["a"], item_basis("a") + 3 * item_basis("b"))


def test_an_idle_user_leaves_keyed_state_only_once_the_store_has_its_last_state() -> None:
    from pipelines.flink.core import idle_users

    users = [("old", 1_000), ("recent", 9_500), ("old_but_held", 1_000), ("old_waiting", 1_000), ("edge", 5_000)]
    gone = idle_users(users, clock_ms=10_000, idle_ms=5_000, held={"old_but_held"}, waiting={"old_waiting"})
    assert gone == ["old"]  # "edge" is exactly idle_ms old: it stays, as Beam's timer fires after
