"""The ranking's fast paths against their readable references: the diversity re-rank, the
sources' scores, the candidates' features and content similarity on generated requests, and the
whole evaluation replay of the real logs unchanged (every list, every example, the learned model)
when the references rank and learn instead."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from itertools import repeat
from pathlib import Path

import numpy as np
import pytest

from evaluation.methods import EvalContext
from evaluation.protocol import MethodResult, build_schedule, run_method
from evaluation.streamrec_method import StreamrecMethod
from streamrec import ratings as rating_logs
from streamrec.events.model import CatalogItem, UserEvent
from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState
from streamrec.recommend import learned, ranking, similarity
from streamrec.recommend.learned import (
    ACTIVITY_SCALE,
    FEATURES,
    SOURCE_FEATURES,
    YEAR_MS,
    Candidates,
    Example,
    LearningConfig,
    RankerModel,
)
from streamrec.recommend.ranking import (
    RankingConfig,
    RankingInputs,
    diversify,
    diversify_reference,
    excluded_titles,
    user_genres,
)
from streamrec.recommend.similarity import (
    content_scorer,
    content_scores,
    content_similarity,
)
from streamrec.recommend.state import UserUpdate, apply_events

GENRES = ["Drama", "Comedy", "Action", "Horror", "Kids", "Sci-Fi", "Romance"]


def test_diversify_equals_the_reference_on_generated_pools() -> None:
    rng = random.Random(3)
    for n in range(300):
        items = {f"t{i}": CatalogItem(f"t{i}", "", genres=tuple(rng.sample(GENRES, rng.randrange(0, 3)))) for i in range(40)}
        pool = [ScoredItem(v, rng.choice([0.5, 0.25, rng.random()])) for v in rng.sample(sorted(items) + ["unknown"], 30)]
        k, lam = rng.randrange(0, 25), rng.choice([0.0, 0.5, 0.9, 0.97, 1.0])
        assert diversify(pool, items, k, lam) == diversify_reference(pool, items, k, lam), f"pool {n}"


def test_rank_scores_equals_rank_raw_with_ties() -> None:
    rng = random.Random(5)
    for n in range(300):
        ids = sorted(rng.sample([f"t{i}" for i in range(200)], rng.randrange(0, 120)))
        items = {v: CatalogItem(v, "", genres=(rng.choice(GENRES),), maturity_rating=rng.choice([None, "PG", "R"])) for v in ids}
        scores = np.array([rng.choice([0.0, 0.5, 1.0, rng.random()]) for _ in ids])  # many equal scores
        user = UserState("u", seen=rng.sample(ids, min(len(ids), 5)))
        inputs = RankingInputs(items=items, max_maturity=rng.choice([None, "PG"]))
        k = rng.randrange(0, 30)
        assert ranking.rank_scores(user, inputs, ids, scores, k) == ranking.rank_raw(
            user, inputs, dict(zip(ids, scores.tolist(), strict=True)), k), f"request {n}"


def test_examples_equal_the_reference_with_ties() -> None:
    rng = random.Random(9)
    for n in range(300):
        ids = [f"t{i:03d}" for i in range(rng.randrange(1, 90))]
        x = np.array([[rng.choice([0.0, 0.0, 0.5, 1.0, rng.random()]) for _ in range(11)] for _ in ids]).reshape(len(ids), 11)
        candidates = Candidates(ids, x)
        watched = rng.sample(ids, min(len(ids), rng.randrange(0, 3))) + ["unknown"]
        model = RankerModel(np.array([rng.choice([0.0, 1.0, 0.3]) for _ in range(11)]))
        config = LearningConfig(negatives=rng.randrange(1, 40), per_feature=rng.randrange(0, 20))
        fast, reference = learned.examples_for(candidates, watched, model, config), examples_for_reference(
            candidates, watched, model, config)
        assert [e.matrix.tobytes() for e in fast] == [e.matrix.tobytes() for e in reference], f"request {n}"


def examples_for_reference(candidates: Candidates, watched: Sequence[str], model: RankerModel,
                           config: LearningConfig) -> list[Example]:
    """``examples_for`` written plainly, as before its array form: a sort per feature column."""
    ids, x = candidates.ids, candidates.matrix
    positives = [ids.index(v) for v in dict.fromkeys(watched) if v in ids]
    if not positives or len(ids) < 2:
        return []
    by_score = np.lexsort((np.arange(len(ids)), -(x @ model.weights)))
    shown = [int(i) for i in by_score[: config.negatives + len(positives)] if int(i) not in positives][: config.negatives]
    keep = dict.fromkeys(shown)
    for j in range(x.shape[1]):
        column = x[:, j]
        if column.any():
            for i in np.argsort(-column, kind="stable")[: config.per_feature + len(positives)]:
                if int(i) not in positives and column[i] > 0:
                    keep[int(i)] = None
    return [Example(np.ascontiguousarray(x[[p, *keep]], dtype=np.float32)) for p in positives]


def source_scores_reference(user: UserState, inputs: RankingInputs,
                            config: RankingConfig = ranking.DEFAULT_CONFIG) -> dict[str, dict[str, float]]:
    """``ranking.source_scores`` with its array forms written plainly, as before them: the
    co-watch source one neighbour at a time, content similarity one title at a time (the other
    sources are the function's own)."""
    out = ranking.source_scores(user, inputs, config)
    out.pop("cowatch", None)
    out.pop("content", None)
    counts = inputs.item_counts
    if config.weights.get("cowatch", 0.0) > 0 and user.history:
        cowatch: dict[str, float] = {}
        norms: dict[str, float] = {}
        total = 0.0
        for position, entry in enumerate(user.history[: config.seeds]):
            w = entry.weight * 0.5 ** (position / config.recency_half_life)
            total += w
            seed_w = w / max(counts.get(entry.video_id, 0), 1) ** config.alpha
            for neighbour, count in inputs.neighbours.get(entry.video_id, ())[: config.neighbours_per_seed]:
                norm = norms.get(neighbour)
                if norm is None:
                    norm = norms[neighbour] = max(counts.get(neighbour, 0), 1) ** config.beta
                contribution = seed_w * count / norm
                cowatch[neighbour] = cowatch.get(neighbour, 0.0) + min(contribution, w)
        if total > 0:
            out["cowatch"] = {v: s / total for v, s in cowatch.items()}
    last = inputs.items.get(user.history[0].video_id) if user.history else None
    if config.weights.get("content", 0.0) > 0 and last is not None:
        pool = [s.video_id for s in inputs.trending[: config.source_limit]]
        pool += [s.video_id for s in inputs.new_releases[: config.source_limit]]
        for genre in user_genres(user, inputs.items):
            pool += [s.video_id for s in inputs.genre_lists.get(genre, ())[: config.source_limit]]
        out["content"] = {v: content_similarity(last, inputs.items[v]) for v in dict.fromkeys(pool) if v in inputs.items}
    return out


def candidate_features_reference(user: UserState, inputs: RankingInputs, now_ms: int | None = None,
                                 config: RankingConfig = ranking.DEFAULT_CONFIG,
                                 with_vectors: bool = False) -> Candidates:
    """``learned.candidate_features`` as it was before its array forms: the reference sources,
    a Python expression per candidate for the recency and genre columns."""
    scores = source_scores_reference(user, inputs, learned._feature_config(config, with_vectors))
    excluded = excluded_titles(user)
    ids = sorted({v for per_item in scores.values() for v in per_item if v not in excluded})
    n = len(ids)
    columns = np.zeros((len(FEATURES), n))
    if not n:
        return Candidates(ids, columns.T)
    for column, source in enumerate(SOURCE_FEATURES):
        per_item = scores.get(source)
        if per_item:
            columns[column] = np.fromiter(map(per_item.get, ids, repeat(0.0, n)), np.float64, n)
    named = {name: i for i, name in enumerate(FEATURES)}
    columns[named["sources"]] = np.clip((np.count_nonzero(columns[: len(SOURCE_FEATURES)], axis=0) - 1) / 4.0, 0.0, 1.0)
    counts = np.log1p(np.maximum(np.fromiter(map(inputs.item_counts.get, ids, repeat(0, n)), np.float64, n), 0.0))
    top = counts.max()
    if top > 0:
        columns[named["popularity"]] = counts / top
    catalog = list(map(inputs.items.get, ids))
    if now_ms is not None:
        year_now = 1970 + now_ms / YEAR_MS
        columns[named["recency"]] = [
            1.0 / (1.0 + max(0.0, year_now - item.release_year - 0.5)) if item is not None and item.release_year else 0.0
            for item in catalog]
    genres = set(user_genres(user, inputs.items))
    if genres:
        overlap = genres.intersection
        columns[named["genre_match"]] = [
            len(overlap(item.genres)) / len(item.genres) if item is not None and item.genres else 0.0
            for item in catalog]
    activity = min(1.0, math.log1p(len(user.history)) / ACTIVITY_SCALE)
    columns[named["cowatch_heavy"]] = columns[named["cowatch"]] * activity
    columns[named["trending_light"]] = columns[named["trending"]] * (1.0 - activity)
    return Candidates(ids, np.ascontiguousarray(columns.T))


def generated_request(rng: random.Random) -> tuple[UserState, RankingInputs]:
    """A request with what the store can hand the ranking: repeated neighbours, missing and zero
    counts, titles the catalog lacks, unknown and zero years, no or repeated genres, lists."""
    titles = [f"t{i:03d}" for i in range(rng.randrange(5, 160))]

    def entry(v: str) -> CatalogItem:
        return CatalogItem(v, "", genres=tuple(rng.choice(GENRES) for _ in range(rng.randrange(0, 4))),
                           release_year=rng.choice([None, 0, 1931, 1995, 2003, rng.randrange(1900, 2030)]),
                           content_type=rng.choice(["movie", "series"]), language=rng.choice([None, "en", "fr"]))

    items = {v: entry(v) for v in titles if rng.random() < 0.95}
    history = [HistoryEntry(v, 10_000 - i, rng.choice([0.1, 0.5, 1.0, rng.random()]))
               for i, v in enumerate(rng.sample(titles, rng.randrange(0, min(25, len(titles)))))]
    neighbours = {h.video_id: [(rng.choice(titles), rng.choice([1, 2, 3, rng.randrange(1, 400)]))
                               for _ in range(rng.randrange(0, 70))] for h in history if rng.random() < 0.9}
    counts = {v: rng.choice([0, 1, 2, rng.randrange(0, 5000)]) for v in titles if rng.random() < 0.9}
    listed = [ScoredItem(v, 1.0) for v in rng.sample(titles, rng.randrange(0, len(titles)))]
    watched = [h.video_id for h in history]
    user = UserState("u", history=history, seen=watched[: rng.randrange(0, len(watched) + 1)],
                     disliked=rng.sample(titles, rng.randrange(0, 3)),
                     in_progress={v: Progress(v, 10.0, 100.0, 1) for v in rng.sample(titles, rng.randrange(0, 3))},
                     preferred_genres=rng.sample(GENRES, rng.randrange(0, 3)),
                     top_picks=[ScoredItem(v, rng.uniform(-0.5, 1.5)) for v in rng.sample(titles, rng.randrange(0, 5))])
    inputs = RankingInputs(neighbours=neighbours, item_counts=counts, items=items, trending=listed[: rng.randrange(0, 120)],
                           new_releases=listed[-rng.randrange(0, 30):],
                           genre_lists={g: rng.sample(listed, min(len(listed), 20)) for g in rng.sample(GENRES, 3)})
    return user, inputs


def test_source_scores_equal_the_reference_on_generated_requests() -> None:
    rng = random.Random(11)
    configs = [ranking.DEFAULT_CONFIG, RankingConfig(seeds=3, neighbours_per_seed=7, alpha=0.9, beta=0.1),
               RankingConfig(weights={s: 1.0 for s in ranking.SOURCES if s != "vector"}, recency_half_life=0.7)]
    for n in range(400):
        user, inputs = generated_request(rng)
        config = rng.choice(configs)
        fast, reference = ranking.source_scores(user, inputs, config), source_scores_reference(user, inputs, config)
        # the same sources, titles in the same order, floats bit for bit
        assert {s: list(v.items()) for s, v in fast.items()} == {s: list(v.items()) for s, v in reference.items()}, f"request {n}"


def test_candidate_features_equal_the_reference_on_generated_requests() -> None:
    rng = random.Random(13)
    for n in range(400):
        user, inputs = generated_request(rng)
        now = rng.choice([None, 1_000_000_000_000, 1_700_000_000_000])
        fast, reference = learned.candidate_features(user, inputs, now), candidate_features_reference(user, inputs, now)
        assert fast.ids == reference.ids and fast.matrix.tobytes() == reference.matrix.tobytes(), f"request {n}"
        assert fast.excluded == excluded_titles(user)


def test_content_scores_equal_content_similarity_for_new_and_held_pools() -> None:
    rng = random.Random(17)
    pools: list[list[CatalogItem]] = []
    for n in range(600):
        if pools and rng.random() < 0.5:
            pool = rng.choice(pools)  # the same entries again: the laid-out pool is reused
        else:
            pool = list(generated_request(rng)[1].items.values())
            pools.append(pool)
        a = rng.choice(pool) if pool and rng.random() < 0.5 else CatalogItem(
            "a", "", genres=tuple(rng.sample(GENRES, rng.randrange(0, 3))), release_year=rng.choice([None, 1990, 2020]),
            language=rng.choice([None, "en"]))
        expected = [content_similarity(a, b) for b in pool]
        assert content_scores(a, pool) == expected == list(map(content_scorer(a), pool)), f"pool {n}"


def test_content_scores_take_the_scalar_path_for_what_an_array_cannot_hold() -> None:
    pool = [CatalogItem("b", "", genres=("Drama",), release_year=10**30), CatalogItem("c", "", release_year=1999)]
    a = CatalogItem("a", "", genres=("Drama",), release_year=2000)
    assert content_scores(a, pool) == [content_similarity(a, b) for b in pool]
    huge = CatalogItem("h", "", release_year=-(10**30))
    assert content_scores(huge, pool[1:]) == [content_similarity(huge, pool[1])]
    beyond = CatalogItem("x", "", genres=tuple(f"genre beyond {i}" for i in range(70)))  # past a 64-bit mask
    assert content_scores(beyond, pool[1:]) == [content_similarity(beyond, pool[1])]
    assert similarity.content_scores(a, []) == []


def test_genre_shares_equal_the_plain_share_with_repeats_and_past_64_genres() -> None:
    rng = random.Random(19)
    many = [f"genre {i}" for i in range(80)]
    for n in range(300):
        universe = GENRES if n < 150 else GENRES + many  # past 64 genres a mask cannot hold them: the plain path
        wanted = rng.sample(universe, rng.randrange(1, 4))
        tuples = [tuple(rng.choice(universe) for _ in range(rng.randrange(0, 4))) for _ in range(rng.randrange(0, 50))]
        expected = [len(set(wanted) & set(g)) / len(g) if g else 0.0 for g in tuples]
        assert similarity.genre_shares(wanted, tuples).tolist() == expected, f"request {n}"


class ReferenceMethod(StreamrecMethod):
    """The adapter with every fast path swapped for its reference (see the test below)."""

    def _could_learn(self, state: UserState, inputs: RankingInputs, watched: Sequence[str]) -> bool:
        return True  # features and examples_for for every group, as before the check

    def _neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        self.rows.clear()  # every row rebuilt from the ranked counts, as before the cache
        return super()._neighbours(video_ids, k)

    def _apply(self, user_id: str, events: Sequence[UserEvent], vectors: Mapping[str, np.ndarray] | None) -> UserUpdate:
        # the pure batched rule on the held state, copied per batch, as before the LiveUser was kept
        return apply_events(self.users.get(user_id) or UserState(user_id), events, item_vectors=vectors,
                            config=self.state_config)


def replay(log: rating_logs.RatingLog, factory: type[StreamrecMethod]) -> tuple[MethodResult, StreamrecMethod]:
    schedule = build_schedule(log)
    made: list[StreamrecMethod] = []

    def create(context: EvalContext) -> StreamrecMethod:
        made.append(factory(context))
        return made[0]

    result = run_method(schedule, create, EvalContext(dataset=log.name, catalog=log.catalog), progress=False)
    return result, made[0]


@pytest.mark.parametrize("dataset", ["movielens_dir", "movietweetings_dir"])
def test_the_replay_of_the_real_logs_is_unchanged_by_the_fast_paths(dataset: str, request: pytest.FixtureRequest,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The first 6,000 ratings of each log, replayed twice: with the fast paths, then with the
    references alone. The same hits at the same ranks, the same titles served, the same model."""
    path: Path = request.getfixturevalue(dataset)
    log = rating_logs.load_log(path)
    log.ratings[:] = sorted(log.ratings, key=lambda r: (r.timestamp, r.user_id, r.video_id))[:6000]
    fast, fast_method = replay(log, StreamrecMethod)

    def reference_top_picks(user: UserState, inputs: RankingInputs, model: RankerModel, k: int = 10,
                            now_ms: int | None = None, config: RankingConfig = ranking.DEFAULT_CONFIG,
                            candidates: Candidates | None = None) -> list[ScoredItem]:
        assert candidates is not None
        return ranking.rank_raw(user, inputs, learned.learned_raw(candidates, model), k, config)

    monkeypatch.setattr("evaluation.streamrec_method.learned_top_picks", reference_top_picks)
    monkeypatch.setattr("evaluation.streamrec_method.candidate_features", candidate_features_reference)
    monkeypatch.setattr("evaluation.streamrec_method.examples_for", examples_for_reference)
    monkeypatch.setattr(ranking, "diversify", diversify_reference)
    reference, reference_method = replay(log, ReferenceMethod)
    assert fast.ranks.tolist() == reference.ranks.tolist() and fast.cold_ranks.tolist() == reference.cold_ranks.tolist()
    assert fast.served == reference.served
    assert (fast.ranks > 0).sum() > 50  # the replay ranked something
    fast_model, reference_model = fast_method.trainer.model, reference_method.trainer.model
    assert (fast_model.version, fast_model.examples) == (reference_model.version, reference_model.examples)
    assert fast_model.examples > 1000 and fast_model.weights.tobytes() == reference_model.weights.tobytes()
    window, reference_window = fast_method.trainer.window, reference_method.trainer.window
    assert [e.matrix.tobytes() for e in window] == [e.matrix.tobytes() for e in reference_window]
