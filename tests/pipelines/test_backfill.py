"""The batch backfill over a slice of the shared MovieLens ratings, checked against the pure state
machine applied in a plain loop (the oracle) and against the online item-vector rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.main import run
from streamrec import ratings as rating_logs
from streamrec.model import UserState, genre_key, new_releases_key
from streamrec.recommend.releases import DAY_MS
from streamrec.recommend.state import apply_event
from streamrec.recommend.vectors import item_basis
from streamrec.store import open_store
from tests.pipelines.helpers import store_url

pytestmark = pytest.mark.pipeline
RATINGS = 300


def test_backfill_builds_the_state_the_state_machine_defines(movielens_dir: Path, tmp_path: Path) -> None:
    url = store_url(tmp_path)
    run(["--history", str(movielens_dir), "--history_limit", str(RATINGS), "--store", url,
         "--runner", "DirectRunner"])

    ratings = rating_logs.load_ratings(movielens_dir)[:RATINGS]
    expected: dict[str, UserState] = {}
    counts: dict[str, int] = {}
    for e in sorted(rating_logs.history_events(ratings), key=lambda e: (e.timestamp, e.event_id)):
        update = apply_event(expected.get(e.user_id) or UserState(user_id=e.user_id), e)
        expected[e.user_id] = update.state
        for video_id, n in update.item_counts.items():
            counts[video_id] = counts.get(video_id, 0) + n

    store = open_store(url)
    users = store.get_users(list(expected))
    assert set(users) == set(expected)
    for user_id, want in expected.items():
        got = users[user_id]
        assert {(h.video_id, h.ts) for h in got.history} == {(h.video_id, h.ts) for h in want.history}
        assert set(got.seen) == set(want.seen) and set(got.disliked) == set(want.disliked)
        assert set(got.in_progress) == set(want.in_progress)
        assert got.vector is not None and got.top_picks  # folded in, and refreshed by the timer
    assert store.get_item_counts(list(counts)) == counts

    # The catalog came along, and every raw item vector is basis + sum of count * neighbour basis.
    titles = {r.video_id for r in ratings}
    assert set(store.get_items(list(titles))) == titles
    neighbours = store.get_neighbours(list(titles), 1000)
    vectors = store.get_item_vectors(list(titles))
    checked = 0
    for video_id, row in neighbours.items():
        if not row:
            continue
        want_vector = item_basis(video_id) + sum(np.float32(n) * item_basis(b) for b, n in row)
        np.testing.assert_allclose(vectors[video_id], want_vector, rtol=1e-4, atol=1e-4)
        checked += 1
    assert checked > 10


def test_backfill_writes_new_releases_and_genre_rows_the_feed_reads(movielens_dir: Path, tmp_path: Path) -> None:
    url = store_url(tmp_path)
    run(["--history", str(movielens_dir), "--history_limit", str(RATINGS), "--store", url,
         "--runner", "DirectRunner"])
    ratings = rating_logs.load_ratings(movielens_dir)[:RATINGS]
    clock = max(e.timestamp for e in rating_logs.history_events(ratings))
    added = {i.video_id: i.added_at for i in rating_logs.with_added_at(rating_logs.load_catalog(movielens_dir), ratings)}
    store = open_store(url)
    releases = store.get_lists([new_releases_key()])[new_releases_key()].items
    # Exactly the titles first rated within the 30 days before the log's clock, newest day first.
    want = {v for v, at in added.items() if at is not None and clock - 30 * DAY_MS <= at <= clock}
    assert want and releases and {s.video_id for s in releases} <= want and len(releases) == min(100, len(want))
    days = [s.score // 1 for s in releases]
    assert days == sorted(days, reverse=True)
    # Genre rows: every title on "Drama" is a drama that was watched.
    items = store.get_items([r.video_id for r in ratings])
    drama = store.get_lists([genre_key("Drama")])[genre_key("Drama")].items
    assert drama and all("Drama" in items[s.video_id].genres for s in drama)
