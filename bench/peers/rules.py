"""The per-event work every pipeline peer does: the plain-loop ceiling's, in pieces an engine can call.

``bench/pipeline_ceiling.py``'s ceiling decodes each event, runs ``apply_event``'s rules in place
(``LiveUser``) with the title's item vector, accumulates co-watch pairs, item counts, item vectors
and watches per 5-minute trending bucket, and flushes users, pairs, counts and vectors to the store
with its ``_flush`` every 500 events. A stream engine splits that in two: ``step`` runs per event
inside the engine, with the user's state from the engine's own state store (a fresh object each
time, so ``LiveUser`` adopts it, as the Beam and Flink jobs do with a pane's or batch's copy);
``Batch`` gathers the updates and ``Batch.flush`` writes them with the ceiling's own ``_flush``
when the engine commits (its checkpoint or batch).
Item vectors are per title, not per user, so like the ceiling each worker process keeps them in
one dict (the peers run one worker process each).
"""

from __future__ import annotations

import argparse
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline_ceiling import BUCKET_MS, _flush

from streamrec.events.model import UserEvent
from streamrec.model import UserState
from streamrec.recommend.live import LiveUser
from streamrec.recommend.state import UserUpdate
from streamrec.recommend.vectors import item_basis
from streamrec.store.base import Store


@dataclass
class Batch:
    """Updates since the last commit, merged the way the ceiling merges them, and the item vectors."""

    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    dirty: dict[str, UserState] = field(default_factory=dict)
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    trending: dict[tuple[str, str, int], int] = field(default_factory=dict)
    events: int = 0

    def step(self, state: UserState | None, e: UserEvent) -> UserUpdate:
        """``apply_event``'s rules on the user's state (adopted: the caller's copy, from the engine's
        state store) with the title's current item vector."""
        vec = self.vectors.get(e.video_id) if e.video_id else None
        if e.video_id and vec is None:
            vec = self.vectors[e.video_id] = item_basis(e.video_id).copy()
        return LiveUser(state or UserState(user_id=e.user_id), copy=False).apply(e, item_vector=vec)

    def add(self, e: UserEvent, update: UserUpdate) -> None:
        """One applied update into the batch (the ceiling's accumulation, trending buckets included)."""
        self.events += 1
        self.dirty[e.user_id] = update.state
        for pair, n in update.cowatch.items():
            self.pairs[pair] = self.pairs.get(pair, 0) + n
        for video_id, n in update.item_counts.items():
            self.counts[video_id] = self.counts.get(video_id, 0) + n
        for video_id in update.watched:  # per 5-minute bucket, as the ceiling and both engines count them
            key = (e.region or "", video_id, e.timestamp // BUCKET_MS)
            self.trending[key] = self.trending.get(key, 0) + 1

    def through_pickles(self, states: dict[str, bytes], e: UserEvent) -> UserUpdate:
        """``step`` and ``add`` with the user's state kept pickled in ``states``, as a peer's state
        store keeps it (unpickled before the event, pickled after it)."""
        raw = states.get(e.user_id)
        update = self.step(pickle.loads(raw) if raw is not None else None, e)
        if update.applied:
            states[e.user_id] = pickle.dumps(update.state, pickle.HIGHEST_PROTOCOL)
            self.add(e, update)
        return update

    def flush(self, store: Store) -> None:
        """The ceiling's store writes: users, co-watch pairs (+ item vectors), item counts."""
        _flush(store, self.dirty, self.pairs, self.counts, self.vectors, None)
        self.events = 0


def worker_parser(doc: str) -> argparse.ArgumentParser:
    """The options every peer worker takes from ``pipeline_peers.run_peer``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name in ("--bootstrap", "--topic", "--store", "--group", "--state_dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--commit_s", type=float, default=0.25, help="seconds between commits (store writes)")
    parser.add_argument("--partitions", type=int, default=3)
    return parser
