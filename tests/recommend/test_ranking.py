"""Top picks: known answers, a brute-force oracle for the optimised path, filters, diversity,
cold start and determinism."""

from __future__ import annotations

import math
import random

import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState
from streamrec.recommend import (
    RankingConfig,
    RankingInputs,
    blend,
    candidate_titles,
    diversify,
    seed_titles,
    source_scores,
    top_picks,
)
from streamrec.recommend.filters import title_allowed

COWATCH_ONLY = RankingConfig(weights={"cowatch": 1.0}, mmr_lambda=1.0, recency_half_life=1.0, alpha=0.5, beta=0.5)


def allowed_titles(user: UserState, candidates: list[str], inputs: RankingInputs) -> list[str]:
    """The oracle's filter, written plainly: not seen, not disliked, not in progress, not in the
    history, and the title filter (known, in the region, within the maturity cap)."""
    excluded = set(user.seen) | set(user.disliked) | set(user.in_progress) | {h.video_id for h in user.history}
    return [v for v in candidates
            if v not in excluded and title_allowed(inputs.items.get(v), inputs.region, inputs.max_maturity)]


def user_with(*history: str, **kw: object) -> UserState:
    entries = [HistoryEntry(v, 1000 - i, 1.0) for i, v in enumerate(history)]
    return UserState("u", history=entries, seen=list(history), **kw)  # type: ignore[arg-type]


def test_cowatch_score_known_answer() -> None:
    user = user_with("a", "b")  # a is newest: weight 1, b: weight 0.5 (half-life one position)
    inputs = RankingInputs(neighbours={"a": [("x", 2), ("y", 1)], "b": [("x", 4)]},
                           item_counts={"a": 4, "b": 16, "x": 1, "y": 4},
                           items={v: CatalogItem(v, v) for v in "abxy"})  # unknown titles are never shown
    scores = source_scores(user, inputs, COWATCH_ONLY)["cowatch"]
    # x: (1 * min(1, 2/(2*1)) + 0.5 * min(1, 4/(4*1))) / 1.5 = 1.0 ; y: 1 * 1/(2*2) / 1.5
    assert scores["x"] == pytest.approx(1.0)
    assert scores["y"] == pytest.approx(0.25 / 1.5)
    picks = top_picks(user, inputs, k=10, config=COWATCH_ONLY)
    assert [p.video_id for p in picks] == ["x", "y"]
    assert picks[0].score == pytest.approx(1 - math.exp(-1.0 / COWATCH_ONLY.match_scale))


def test_found_by_several_sources_scores_higher() -> None:
    config = RankingConfig(weights={"cowatch": 1.0, "trending": 0.5}, multi_source_bonus=0.1, mmr_lambda=1.0)
    user = user_with("a")
    inputs = RankingInputs(neighbours={"a": [("x", 1), ("y", 1)]}, item_counts={"a": 1, "x": 1, "y": 1},
                           trending=[ScoredItem("y", 10.0), ScoredItem("z", 5.0)])
    scores = blend(source_scores(user, inputs, config), config)
    assert scores["y"] > scores["x"] > 0
    assert scores["y"] == pytest.approx(1 - math.exp(-(1.0 + 0.5 + 0.1) / config.match_scale))


def test_filters_remove_seen_disliked_in_progress_region_and_maturity() -> None:
    items = {
        "ok": CatalogItem("ok", "ok", maturity_rating="PG"),
        "fr_only": CatalogItem("fr_only", "f", regions=("FR",), maturity_rating="G"),
        "adult": CatalogItem("adult", "a", maturity_rating="R"),
        "watching": CatalogItem("watching", "w", maturity_rating="G"),
        "hated": CatalogItem("hated", "h", maturity_rating="G"),
    }
    user = user_with("a", disliked=["hated"],
                     in_progress={"watching": Progress("watching", 10, 100, 5)})
    user.seen = ["a", "watching"]
    candidates = ["a", "ok", "fr_only", "adult", "watching", "hated", "unknown"]
    inputs = RankingInputs(items=items, region="US", max_maturity="PG")
    assert allowed_titles(user, candidates, inputs) == ["ok"]
    # A title the catalog does not know is never shown (streamrec.recommend.filters).
    assert allowed_titles(user, candidates, RankingInputs(items=items)) == ["ok", "fr_only", "adult"]
    trending = [ScoredItem(v, 1.0) for v in candidates]
    picks = top_picks(user, RankingInputs(items=items, region="US", max_maturity="PG", trending=trending), k=10)
    assert [p.video_id for p in picks] == ["ok"]


def _naive_mmr(ranked: list[ScoredItem], items: dict[str, CatalogItem], k: int, lam: float) -> list[ScoredItem]:
    chosen: list[ScoredItem] = []
    rest = list(ranked)
    top = max((s.score for s in ranked), default=1.0) or 1.0
    while rest and len(chosen) < k:
        def value(s: ScoredItem) -> tuple[float, float, str]:
            g = set(items[s.video_id].genres)
            pen = max((len(g & set(items[c.video_id].genres)) / len(g | set(items[c.video_id].genres))
                       for c in chosen if g | set(items[c.video_id].genres)), default=0.0)
            return (-(lam * s.score / top - (1 - lam) * pen), -s.score, s.video_id)
        best = min(rest, key=value)
        chosen.append(best)
        rest.remove(best)
    return chosen


def test_diversify_matches_a_brute_force_mmr() -> None:
    rng = random.Random(7)
    genres = ["Drama", "Comedy", "Horror", "Action", "Kids"]
    for _ in range(30):
        items = {f"v{i}": CatalogItem(f"v{i}", "t", genres=tuple(rng.sample(genres, rng.randint(0, 3))))
                 for i in range(25)}
        ranked = [ScoredItem(v, round(rng.random(), 2)) for v in items]
        for lam in (0.0, 0.5, 0.9, 0.97):  # 0.97: the default, where the early stop prunes most
            assert diversify(ranked, items, 10, lam) == _naive_mmr(ranked, items, 10, lam)


def test_diversity_breaks_up_a_single_genre_list() -> None:
    items = {f"d{i}": CatalogItem(f"d{i}", "t", genres=("Drama",)) for i in range(5)}
    items["c"] = CatalogItem("c", "t", genres=("Comedy",))
    ranked = [ScoredItem(f"d{i}", 0.9 - i * 0.01) for i in range(5)] + [ScoredItem("c", 0.7)]
    assert [s.video_id for s in diversify(ranked, items, 3, 1.0)] == ["d0", "d1", "d2"]
    assert [s.video_id for s in diversify(ranked, items, 3, 0.7)] == ["d0", "c", "d1"]


def _brute_force_top_picks(user: UserState, inputs: RankingInputs, k: int, config: RankingConfig) -> list[ScoredItem]:
    scores = blend(source_scores(user, inputs, config), config)
    allowed = allowed_titles(user, list(scores), inputs)
    ranked = sorted(allowed, key=lambda v: (-scores[v], v))[: max(config.pool, k)]
    return diversify([ScoredItem(v, scores[v]) for v in ranked], inputs.items, k, config.mmr_lambda)


def _random_case(rng: random.Random) -> tuple[UserState, RankingInputs]:
    titles = [f"t{i:02d}" for i in range(40)]
    items = {t: CatalogItem(t, t, genres=tuple(rng.sample(["A", "B", "C", "D"], rng.randint(1, 2))),
                            release_year=rng.randint(1980, 2020),
                            maturity_rating=rng.choice(["G", "PG", "R"]),
                            regions=rng.choice([(), ("US",), ("FR",)])) for t in titles}
    history = rng.sample(titles, rng.randint(0, 8))
    user = user_with(*history, disliked=rng.sample(titles, 3), preferred_genres=rng.sample(["A", "B", "C"], 1))
    user.top_picks = [ScoredItem(t, round(rng.random(), 1)) for t in rng.sample(titles, 5)]
    neighbours = {h: sorted(((t, rng.randint(1, 4)) for t in rng.sample(titles, 10) if t != h),
                            key=lambda kv: (-kv[1], kv[0])) for h in history}
    inputs = RankingInputs(
        neighbours=neighbours, items=items, item_counts={t: rng.randint(1, 9) for t in titles},
        trending=[ScoredItem(t, 1.0) for t in rng.sample(titles, 10)],
        genre_lists={g: [ScoredItem(t, 1.0) for t in rng.sample(titles, 6)] for g in "ABC"},
        region=rng.choice([None, "US"]), max_maturity=rng.choice([None, "PG"]))
    return user, inputs


def test_top_picks_matches_the_brute_force_path_and_is_deterministic() -> None:
    rng = random.Random(11)
    config = RankingConfig(pool=15, mmr_lambda=0.8)
    for _ in range(60):
        user, inputs = _random_case(rng)
        got = top_picks(user, inputs, k=10, config=config)
        assert got == _brute_force_top_picks(user, inputs, 10, config)
        assert got == top_picks(user, inputs, k=10, config=config)
        assert all(0.0 <= p.score <= 1.0 for p in got)
        assert len({p.video_id for p in got}) == len(got)


def test_candidate_titles_cover_every_scored_title() -> None:
    rng = random.Random(3)
    for _ in range(20):
        user, inputs = _random_case(rng)
        scored = set().union(*(set(s) for s in source_scores(user, inputs).values()))
        assert scored <= set(candidate_titles(user, inputs))
        assert seed_titles(user) == [h.video_id for h in user.history[:10]]


def test_new_user_gets_trending_and_stated_preferences() -> None:
    items = {"com": CatalogItem("com", "c", genres=("Comedy",)), "hor": CatalogItem("hor", "h", genres=("Horror",)),
             "pop": CatalogItem("pop", "p", genres=("Drama",))}
    inputs = RankingInputs(items=items, trending=[ScoredItem("pop", 9.0)],
                           genre_lists={"Comedy": [ScoredItem("com", 1.0)], "Horror": [ScoredItem("hor", 1.0)]})
    fresh = top_picks(UserState("new"), inputs, k=5)
    assert [p.video_id for p in fresh] == ["pop"]
    onboarded = top_picks(UserState("new", preferred_genres=["Comedy"]), inputs, k=5)
    assert onboarded[0].video_id == "com" and {p.video_id for p in onboarded} == {"com", "pop"}


def test_a_cold_title_surfaces_through_content_similarity() -> None:
    items = {"seen": CatalogItem("seen", "s", genres=("Sci-Fi", "Action"), release_year=2020),
             "new": CatalogItem("new", "n", genres=("Sci-Fi", "Action"), release_year=2021),
             "other": CatalogItem("other", "o", genres=("Romance",), release_year=1950)}
    user = user_with("seen")
    inputs = RankingInputs(items=items, new_releases=[ScoredItem("other", 2.0), ScoredItem("new", 1.0)])
    assert top_picks(user, inputs, k=1)[0].video_id == "new"


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="k"):
        top_picks(UserState("u"), RankingInputs(), k=-1)
    with pytest.raises(ValueError, match="weights"):
        RankingConfig(weights={"magic": 1.0})
    with pytest.raises(ValueError, match="mmr_lambda"):
        RankingConfig(mmr_lambda=2.0)
