"""End to end over the whole demo stack: ``streamrec demo`` with a short live replay, then a
replayed viewer's feed read over HTTP shows what they watched."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from streamrec.ratings import (
    DEFAULT_POLICY,
    Rating,
    load_ratings,
    region_for,
    split_history,
)
from streamrec.store import open_store
from tests.fixtures.demo import BOOTSTRAP_FRACTION, REPLAY_LIMIT, DemoStack

pytestmark = pytest.mark.e2e
CATCH_UP_S = 60.0


def replayed(movielens_dir: Path) -> list[Rating]:
    _, live = split_history(load_ratings(movielens_dir), BOOTSTRAP_FRACTION)
    return list(live[:REPLAY_LIMIT])


def last_session_per_user(ratings: list[Rating]) -> dict[str, Rating]:
    last: dict[str, Rating] = {}
    for rating in ratings:
        last[rating.user_id] = rating
    return last


def wait_for_replay(stack: DemoStack) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = stack.stats()
        if stats.get("replay_total") and stats.get("replayed_sessions") == stats["replay_total"]:
            return stats
        time.sleep(0.5)
    pytest.fail(f"the live replay did not finish: {stack.stats()}")


def row_ids(feed: dict[str, Any], row_type: str) -> list[str]:
    return [i["video_id"] for r in feed["rows"] if r["type"] == row_type for i in r["items"]]


def test_replayed_viewers_feeds_show_what_they_watched(demo_stack: DemoStack, movielens_dir: Path) -> None:
    stats = wait_for_replay(demo_stack)
    assert stats["replay_total"] == REPLAY_LIMIT
    assert stats["replayed_events"] >= REPLAY_LIMIT * 5  # play, heartbeats, complete/pause, rate per rating
    ratings = replayed(movielens_dir)
    last = last_session_per_user(ratings)
    finished = [r for r in last.values() if r.stars >= DEFAULT_POLICY.complete_at]
    disliked = [r for r in ratings if r.stars <= DEFAULT_POLICY.dislike_at]
    assert finished and disliked, "the replayed slice should hold both kinds of session"

    # A title a viewer stopped halfway and disliked is shown to them nowhere.
    hater = disliked[-1]
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        user = demo_stack.get_json(f"/v1/users/{hater.user_id}/feed", user=hater.user_id)
        shown = {i["video_id"] for r in user["rows"] for i in r["items"]}
        if (user["rows"] and hater.video_id not in shown) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert user["rows"] and hater.video_id not in shown, user
    with open_store(f"sqlite:///{demo_stack.demo_dir / 'streamrec.db'}") as store:
        state = store.get_user(hater.user_id)
    assert state is not None and hater.video_id in state.disliked

    # A viewer who watched to the end: the title seeds "because you watched" (their newest watch).
    watcher = finished[-1]
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        feed = demo_stack.get_json(f"/v1/users/{watcher.user_id}/feed", user=watcher.user_id)
        seeds = [r.get("seed_video_id") for r in feed["rows"] if r["type"] == "because_you_watched"]
        if watcher.video_id in seeds or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seeds == [watcher.video_id], feed
    assert watcher.video_id not in row_ids(feed, "top_picks")
    assert watcher.video_id not in row_ids(feed, "continue_watching")


def busiest_backfilled_viewer(movielens_dir: Path) -> str:
    history, _ = split_history(load_ratings(movielens_dir), BOOTSTRAP_FRACTION)
    return Counter(r.user_id for r in history).most_common(1)[0][0]


def test_a_warm_viewers_home_page_has_every_row_of_the_seed(demo_stack: DemoStack, movielens_dir: Path) -> None:
    """Every row type is written by the running system (no row the pipeline does not keep)."""
    wait_for_replay(demo_stack)
    viewer = busiest_backfilled_viewer(movielens_dir)
    region = region_for(viewer)
    feed = demo_stack.get_json(f"/v1/users/{viewer}/feed?region={region}", user=viewer)
    # Something in progress: the viewer stops their first top pick (unseen by definition) half-way.
    assert row_ids(feed, "top_picks"), feed
    halfway = row_ids(feed, "top_picks")[0]
    now = time.time()
    demo_stack.post_json("/v1/events", {"events": [
        {"event_id": str(uuid.uuid4()), "user_id": viewer, "event_type": kind, "video_id": halfway, "region": region,
         "timestamp": now - 1 + 0.5 * n, "position_sec": position, "duration_sec": 5400}
        for n, (kind, position) in enumerate([("play", 0), ("pause", 2700)])]}, user=viewer)
    wanted = {"continue_watching", "top_picks", "because_you_watched", "trending_now", "new_releases", "genre"}
    deadline = time.monotonic() + CATCH_UP_S
    while True:
        feed = demo_stack.get_json(f"/v1/users/{viewer}/feed?region={region}", user=viewer)
        present = {r["type"] for r in feed["rows"] if r["items"]}
        # A loaded machine may answer degraded (the last feed built): wait for a fresh one.
        fresh = not feed["degraded"] and halfway in row_ids(feed, "continue_watching")
        if (wanted <= present and fresh) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted <= present, (sorted(wanted - present), feed)
    assert halfway in row_ids(feed, "continue_watching")
    genre_rows = [r for r in feed["rows"] if r["type"] == "genre"]
    assert all(r["title"].startswith(("Popular in ", "Because You Like ")) for r in genre_rows)
    # New releases are titles the replay released (first rated live), not the backfilled past.
    released_live = {r.video_id for r in replayed(movielens_dir)} - {
        r.video_id for r in split_history(load_ratings(movielens_dir), BOOTSTRAP_FRACTION)[0]}
    assert set(row_ids(feed, "new_releases")) <= released_live
    # Every thumbnail answers 200.
    for url in {i["thumbnail"] for r in feed["rows"] for i in r["items"]}:
        with urllib.request.urlopen(demo_stack.base_url + url, timeout=10) as response:
            assert response.status == 200 and response.headers["Content-Type"].startswith("image/")


def test_demo_panel_counters(demo_stack: DemoStack) -> None:
    stats = wait_for_replay(demo_stack)
    assert stats["last_event_ms"] > (time.time() - 600) * 1000  # replayed events carry today's time
    assert stats["pipeline_lag_ms"] is not None and stats["pipeline_lag_ms"] < 30_000
