"""The ranking's fast paths against their readable references: the diversity re-rank on
generated pools, and the whole evaluation replay of the real logs unchanged (every list, every
example, the learned model) when the references rank and learn instead."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from evaluation.methods import EvalContext
from evaluation.protocol import MethodResult, build_schedule, run_method
from evaluation.streamrec_method import StreamrecMethod
from streamrec import ratings as rating_logs
from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem, UserState
from streamrec.recommend import learned, ranking
from streamrec.recommend.learned import Candidates, Example, LearningConfig, RankerModel
from streamrec.recommend.ranking import (
    RankingConfig,
    RankingInputs,
    diversify,
    diversify_reference,
)

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


class ReferenceMethod(StreamrecMethod):
    """The adapter with every fast path swapped for its reference (see the test below)."""

    def _could_learn(self, state: UserState, inputs: RankingInputs, watched: Sequence[str]) -> bool:
        return True  # features and examples_for for every group, as before the check

    def _neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        self.rows.clear()  # every row rebuilt from the ranked counts, as before the cache
        return super()._neighbours(video_ids, k)


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
