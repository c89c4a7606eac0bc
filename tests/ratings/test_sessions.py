"""The dataset -> catalog + watch events conversion (pure functions, real shared data)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from streamrec.events.model import EventType
from streamrec.ratings import (
    REGIONS,
    DatasetError,
    Rating,
    SessionPolicy,
    history_events,
    load_catalog,
    load_ratings,
    parse_title,
    region_for,
    session_events,
    split_history,
    to_stars,
)


def kinds(events: list) -> list[str]:
    return [e.event_type.value for e in events]


def test_a_loved_title_is_watched_to_the_end_rated_and_liked() -> None:
    policy = SessionPolicy(heartbeats=2, session_ms=1000)
    events = session_events(Rating("1", "318", 5.0, 964982703), start_ms=10_000, duration_sec=6000.0, policy=policy)
    assert kinds(events) == ["play", "heartbeat", "heartbeat", "complete", "rate", "like"]
    assert [e.position_sec for e in events[:4]] == [0.0, 2000.0, 4000.0, 6000.0]
    assert events[0].timestamp == 10_000 and events[-1].timestamp == 11_000
    assert [e.timestamp for e in events] == sorted(e.timestamp for e in events)
    assert events[4].rating == 5.0
    assert {e.user_id for e in events} == {"1"} and {e.video_id for e in events} == {"318"}


def test_a_poor_title_is_stopped_halfway_and_disliked() -> None:
    events = session_events(Rating("7", "2", 1.5, 1), start_ms=0, duration_sec=5000.0)
    assert kinds(events) == ["play", "heartbeat", "heartbeat", "heartbeat", "pause", "rate", "dislike"]
    assert events[4].position_sec == 2500.0
    assert all(e.position_sec is None or e.position_sec <= 2500.0 for e in events)


def test_a_middling_title_gets_no_like_or_dislike() -> None:
    assert kinds(session_events(Rating("7", "2", 3.5, 1), start_ms=0))[-2:] == ["complete", "rate"]
    assert kinds(session_events(Rating("7", "2", 2.5, 1), start_ms=0))[-2:] == ["pause", "rate"]


def test_event_ids_are_unique_and_the_same_on_every_replay() -> None:
    rating = Rating("1", "318", 4.0, 964982703)
    first = session_events(rating, start_ms=0)
    again = session_events(rating, start_ms=99_999)  # a later replay of the same rating
    assert [e.event_id for e in first] == [e.event_id for e in again]
    other = session_events(Rating("1", "318", 4.0, 964982704), start_ms=0)
    assert not {e.event_id for e in first} & {e.event_id for e in other}
    assert len({e.event_id for e in first}) == len(first)


def test_regions_are_fixed_per_user_and_spread() -> None:
    users = [str(i) for i in range(1, 611)]
    assert [region_for(u) for u in users] == [region_for(u) for u in users]
    spread = Counter(region_for(u) for u in users)
    assert set(spread) == set(REGIONS)
    assert min(spread.values()) > len(users) / len(REGIONS) / 2


def test_titles_and_stars() -> None:
    assert parse_title("Shawshank Redemption, The (1994)") == ("The Shawshank Redemption", 1994)
    assert parse_title("Babylon 5") == ("Babylon 5", None)
    assert parse_title("Postman, The (Postino, Il) (1994)") == ("The Postman (Postino, Il)", 1994)
    assert parse_title("Ready Player One") == ("Ready Player One", None)
    assert to_stars(0.5, 5.0) == 1.0 and to_stars(4.5, 5.0) == 4.5
    assert to_stars(7, 10.0) == 3.5 and to_stars(10, 10.0) == 5.0 and to_stars(0, 10.0) == 1.0


def test_policy_rejects_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError, match="complete_at"):
        SessionPolicy(complete_at=5.0, like_at=4.0)


def test_movielens_catalog_and_ratings(movielens_dir: Path) -> None:
    catalog = {item.video_id: item for item in load_catalog(movielens_dir)}
    shawshank = catalog["318"]
    assert (shawshank.title, shawshank.release_year, shawshank.genres) == (
        "The Shawshank Redemption",
        1994,
        ("Crime", "Drama"),
    )
    assert all("(no genres listed)" not in item.genres for item in catalog.values())
    ratings = load_ratings(movielens_dir)
    assert [r.timestamp for r in ratings] == sorted(r.timestamp for r in ratings)
    assert any(r.user_id == "1" and r.video_id == "1" for r in ratings)
    assert all(1.0 <= r.stars <= 5.0 for r in ratings)
    assert {r.video_id for r in ratings} <= set(catalog)


def test_movietweetings_keeps_imdb_ids(movietweetings_dir: Path) -> None:
    catalog = {item.video_id: item for item in load_catalog(movietweetings_dir)}
    assert catalog["0104257"].title == "A Few Good Men" and catalog["0104257"].release_year == 1992
    ratings = load_ratings(movietweetings_dir)
    assert len(ratings) == 100_000
    assert all(1.0 <= r.stars <= 5.0 for r in ratings)


def test_history_sessions_end_when_the_rating_was_given(movielens_dir: Path) -> None:
    ratings = load_ratings(movielens_dir)[:50]
    history, live = split_history(ratings, 0.6)
    assert len(history) == 30 and list(history) + list(live) == ratings
    events = list(history_events(history))
    by_rating = Counter((e.user_id, e.video_id) for e in events if e.event_type is EventType.RATE)
    assert sum(by_rating.values()) == len(history)
    last = {(e.user_id, e.video_id): e.timestamp for e in events}
    assert all(last[(r.user_id, r.video_id)] == r.timestamp * 1000 for r in history)


def test_bad_dataset_folder_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="neither ratings.csv"):
        load_catalog(tmp_path)
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,X (2000),Drama\n")
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,four,5\n")
    with pytest.raises(DatasetError, match=r"ratings.csv:2: field .rating. is not a number"):
        load_ratings(tmp_path)
