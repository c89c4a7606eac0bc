"""The evaluation adapter: the product's state machine and top picks under the replay protocol."""

from __future__ import annotations

import random
from pathlib import Path

from evaluation.methods import EvalContext, Method
from evaluation.protocol import build_schedule, run_method
from evaluation.streamrec_method import StreamrecMethod, create
from streamrec.events.model import CatalogItem, EventType, UserEvent
from streamrec.ratings import LogFormat, Rating, RatingLog


def rate(user: str, item: str, ts_s: int, stars: float = 4.0) -> UserEvent:
    return UserEvent(f"{user}:{item}:{ts_s}", EventType.RATE, user, ts_s * 1000, video_id=item, rating=stars)


def test_factory_builds_a_method() -> None:
    method = create(EvalContext(dataset="tiny"))
    assert isinstance(method, Method) and method.name == "streamrec"


def test_learns_what_is_watched_next() -> None:
    method = StreamrecMethod(EvalContext(dataset="tiny"))
    # Many users watch a then b; one user watches a then c.
    for i in range(5):
        method.learn([rate(f"u{i}", "a", 100 + i)])
        method.learn([rate(f"u{i}", "b", 200 + i)])
    method.learn([rate("w", "a", 300)])
    method.learn([rate("w", "c", 301)])
    method.learn([rate("new", "a", 400)])
    assert method.recommend("new", 401_000, 2, {"a"}) == ["b", "c"]
    assert method.recommend("new", 401_000, 2, {"a", "b"}) == ["c"]


def test_cowatch_rows_match_a_brute_force_count() -> None:
    rng = random.Random(5)
    method = StreamrecMethod(EvalContext(dataset="tiny"))
    for ts in range(300):
        user, item = f"u{rng.randint(0, 9)}", f"t{rng.randint(0, 30)}"
        update_before = dict(method.counts)
        method.learn([rate(user, item, ts)])
        assert sum(method.counts.values()) - sum(update_before.values()) in (0, 1)
    for item, row in method.cowatch.items():
        expected = sorted(row.items(), key=lambda kv: (-kv[1], kv[0]))[:7]
        assert method._neighbours([item], 7)[item] == expected


def test_replay_is_deterministic_and_never_serves_watched_titles(tmp_path: Path) -> None:
    rng = random.Random(1)
    ratings = [Rating(f"u{rng.randint(0, 15)}", f"m{int(rng.expovariate(0.1))}", float(rng.randint(1, 5)), t * 60)
               for t in range(600)]
    catalog = {f"m{i}": CatalogItem(f"m{i}", f"Movie {i}", genres=(rng.choice(["Drama", "Comedy", "Horror"]),))
               for i in range(80)}
    log = RatingLog("tiny", tmp_path / "ratings.csv", LogFormat.CSV, ratings, catalog)
    schedule = build_schedule(log)
    context = EvalContext(dataset="tiny", catalog=catalog)
    first = run_method(schedule, create, context, progress=False)  # the replay raises on a watched title
    second = run_method(schedule, create, context, progress=False)
    assert first.ranks.tolist() == second.ranks.tolist()
    assert len(first.ranks) > 100
    assert first.summary(schedule.n_items)["hr@10"] > 0.0
