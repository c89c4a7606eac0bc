"""The pipeline peers' per-event work (bench/peers/rules.py, run by Quix Streams and Faust in their
own virtualenvs, never in CI) is the plain-loop ceiling's: the same events through ``Batch`` as a
peer drives it (the user's state pickled into and out of a state store at every event, a flush
per commit) leave the store as the ceiling leaves it. The peers' columns of ``make bench-pipeline``
went stale once, unnoticed, when the ceiling's ``_flush`` changed and this module did not."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from streamrec import ratings as rating_logs
from streamrec.events.codec import default_codec
from streamrec.store import open_store

REPO = Path(__file__).resolve().parents[2]


def test_the_peers_rules_leave_the_store_as_the_ceiling_does(movielens_dir: Path, tmp_path: Path) -> None:
    paths = [str(REPO / "bench" / "peers"), str(REPO / "bench")]  # as the peers' workers import them
    sys.path[:0] = paths
    try:
        # the ceiling as rules imports it: one module, not a second copy under bench.
        from pipeline_ceiling import ceiling
        from rules import Batch
    finally:
        for path in paths:
            sys.path.remove(path)
    codec = default_codec()
    events = list(rating_logs.history_events(rating_logs.load_ratings(movielens_dir)[:3000]))
    payloads = [codec.encode(e) for e in events]

    ceiling_url = f"sqlite:///{tmp_path / 'ceiling.db'}"
    _, ceiling_counts = ceiling(payloads, ceiling_url)

    peer_url = f"sqlite:///{tmp_path / 'peer.db'}"
    store, batch, state_store = open_store(peer_url), Batch(), {}
    try:
        for n, payload in enumerate(payloads, 1):
            batch.through_pickles(state_store, codec.decode_event(payload))
            if n % 500 == 0:  # a commit, where the ceiling flushes (item vectors move at each flush)
                batch.flush(store)
        batch.flush(store)
    finally:
        store.close()

    a, b = open_store(ceiling_url), open_store(peer_url)
    try:
        titles = sorted(ceiling_counts)
        assert len(titles) > 100
        assert b.get_item_counts(titles) == a.get_item_counts(titles) == {t: n for t, n in ceiling_counts.items() if n}
        users = sorted({e.user_id for e in events})
        peer_users, ceiling_users = b.get_users(users), a.get_users(users)
        assert len(peer_users) == len(ceiling_users) == len(users)
        for user_id in users:  # every field but the store's write counter (one per flush)
            peer, plain = peer_users[user_id], ceiling_users[user_id]
            for f in dataclasses.fields(plain):
                if f.name == "vector":
                    assert np.array_equal(getattr(peer, f.name), getattr(plain, f.name)), user_id
                elif f.name != "version":
                    assert getattr(peer, f.name) == getattr(plain, f.name), (user_id, f.name)
        assert b.get_neighbours(titles[:50], 20) == a.get_neighbours(titles[:50], 20)
    finally:
        a.close()
        b.close()
