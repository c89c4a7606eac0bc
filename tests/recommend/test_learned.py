"""The learned ranker: features, the update rule (known answers), the stored model, the trainer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import HistoryEntry, RankedList, ScoredItem, UserState
from streamrec.nearline import refresh
from streamrec.recommend import RankingConfig, RankingInputs, top_picks
from streamrec.recommend.learned import (
    FEATURES,
    MODEL_KEY,
    Candidates,
    Example,
    LearningConfig,
    OnlineRanker,
    RankerModel,
    RankerTrainer,
    WindowMetric,
    candidate_features,
    coordinate_ascent,
    examples_for,
    initial_weights,
    learned_top_picks,
    model_from_list,
    model_to_list,
    without_own_increments,
    without_watches,
)
from streamrec.store import open_store

COWATCH, TRENDING = FEATURES.index("cowatch"), FEATURES.index("trending")


def row(**values: float) -> np.ndarray:
    x = np.zeros(len(FEATURES))
    for name, value in values.items():
        x[FEATURES.index(name)] = value
    return x


def example(positive: np.ndarray, *negatives: np.ndarray) -> Example:
    return Example(np.vstack([positive, *negatives]).astype(np.float32))


def test_initial_weights_are_the_blends():
    config = RankingConfig()
    w = initial_weights(config)
    assert w[COWATCH] == config.weights["cowatch"] and w[TRENDING] == config.weights["trending"]
    assert w[FEATURES.index("sources")] == pytest.approx(config.multi_source_bonus * 4)
    assert w[FEATURES.index("popularity")] == 0.0  # features the blend lacks start at 0


def test_window_metric_is_ndcg_at_10_of_the_watch_with_ties_against_it():
    # watch scores 0.5; one negative above it, one tied: rank 2 (0-based) -> 1 / log2(4)
    metric = WindowMetric([example(row(cowatch=0.5), row(cowatch=0.9), row(cowatch=0.5), row(cowatch=0.1))])
    assert metric(initial_weights()) == pytest.approx(1 / math.log2(4))
    # first place: gain 1; beyond the tenth: 0
    assert WindowMetric([example(row(cowatch=1.0), row(cowatch=0.2))])(initial_weights()) == 1.0
    assert WindowMetric([example(row(cowatch=0.1), *[row(cowatch=0.5)] * 10)])(initial_weights()) == 0.0


def test_coordinate_ascent_moves_the_weight_that_puts_the_watch_first():
    """Known answer: the watches are trending titles, the candidates above them co-watch ones.
    From the blend (cowatch 1, trending 0.05) the first move tried on cowatch that wins is 0;
    after it every watch is first, so nothing else moves."""
    window = [example(row(trending=1.0), *[row(cowatch=1.0)] * 12) for _ in range(5)]
    metric = WindowMetric(window)
    start = initial_weights()
    assert metric(start) == 0.0
    moved = coordinate_ascent(start, metric)
    expected = start.copy()
    expected[COWATCH] = 0.0
    np.testing.assert_array_equal(moved, expected)
    assert metric(moved) == 1.0


def test_coordinate_ascent_does_not_move_on_what_one_watch_in_a_hundred_says():
    """A move that helps 1 watch of 100 (and changes nothing for the others) is within the
    window's noise (mean 0.01, 1 standard error 0.01 < 2): the weights stay. 10 of 100 is not."""
    fixed = example(row(cowatch=1.0), row(cowatch=0.5))  # first whatever the weights
    lucky = example(row(popularity=1.0), *[row(cowatch=0.01)] * 12)  # first only if popularity counts
    start = initial_weights()
    np.testing.assert_array_equal(coordinate_ascent(start, WindowMetric([lucky] + [fixed] * 99)), start)
    moved = coordinate_ascent(start, WindowMetric([lucky] * 10 + [fixed] * 90))
    assert moved[FEATURES.index("popularity")] > 0


def test_coordinate_ascent_keeps_the_current_weight_on_ties_and_respects_the_cap():
    metric = WindowMetric([example(row(cowatch=1.0), row(cowatch=0.5))])
    start = initial_weights()
    np.testing.assert_array_equal(coordinate_ascent(start, metric), start)  # already perfect: no move
    config = LearningConfig(max_weight=1.0, step=5.0)
    window = WindowMetric([example(row(popularity=1.0, cowatch=0.0), *[row(cowatch=1.0)] * 11)])
    assert np.abs(coordinate_ascent(start, window, config)).max() <= 1.0


def test_examples_keep_the_watch_first_the_best_unwatched_and_each_features_best():
    ids = [f"t{i}" for i in range(8)]
    x = np.vstack([row(cowatch=0.9 - i * 0.1) for i in range(6)] + [row(trending=1.0), row(popularity=1.0)])
    candidates = Candidates(ids, x)
    config = LearningConfig(negatives=2, per_feature=1)
    [one] = examples_for(candidates, ["t3"], RankerModel(), config)
    # t3 first; then the model's best two (t0, t1); then each feature's best: t6 (trending), t7 (popularity)
    expected = x[[3, 0, 1, 6, 7]]
    np.testing.assert_array_equal(one.matrix, expected.astype(np.float32))
    assert examples_for(candidates, ["unknown"], RankerModel(), config) == []
    assert len(examples_for(candidates, ["t3", "t6"], RankerModel(), config)) == 2  # one per watch


def test_trainer_fits_every_n_examples_once_it_has_enough_and_versions_only_changes():
    config = LearningConfig(buffer=10, every=3, min_examples=4)
    trainer = RankerTrainer(config=config)
    good = example(row(trending=1.0), *[row(cowatch=1.0)] * 12)
    assert trainer.add([good] * 3) is False  # 3 < min_examples: no pass yet
    assert trainer.model.version == 0 and trainer.model.examples == 3
    assert trainer.add([good]) is True  # 4 examples, 4 since the last pass >= every
    assert trainer.model.version == 1 and trainer.model.weights[COWATCH] == 0.0
    assert trainer.add([good] * 3) is False  # the pass changes nothing any more: same version
    assert trainer.model.version == 1 and len(trainer.window) == 7


def test_model_record_round_trips_and_a_foreign_or_broken_one_is_not_used():
    model = RankerModel(np.arange(len(FEATURES), dtype=np.float64) / 10, version=7, examples=1234)
    stored = model_to_list(model, now_ms=5)
    assert stored.key == MODEL_KEY and stored.window_end == 7  # newer versions win in the lists sink
    back = model_from_list(stored)
    np.testing.assert_array_equal(back.weights, model.weights)
    assert (back.version, back.examples) == (7, 1234)
    assert model_from_list(None).version == 0
    renamed = RankedList(MODEL_KEY, [ScoredItem("other", 1.0), *stored.items[1:]], 5)
    np.testing.assert_array_equal(model_from_list(renamed).weights, initial_weights())
    broken = RankedList(MODEL_KEY, [ScoredItem(FEATURES[0], float("nan")), *stored.items[1:]], 5)
    assert model_from_list(broken).version == 0


def test_online_ranker_resumes_from_the_held_model_else_the_stored_one():
    stored = model_to_list(RankerModel(initial_weights() * 2, version=3, examples=10), 0)
    ranker = OnlineRanker(lambda: stored, LearningConfig(buffer=10, every=1, min_examples=1))
    held, written = ranker.learn(None, [], 1)
    assert held[1:] == (3, 10) and written is None  # from the store
    good = example(row(trending=1.0), *[row(cowatch=1.0)] * 12)
    held, written = ranker.learn(held, [good], 2)
    assert held[1] == 4 and written is not None and written.window_end == 4
    other = ([0.0] * len(FEATURES), 9, 99)  # another worker moved the model on: start from it
    held, _ = ranker.learn(other, [], 3)
    assert held == other and len(ranker.trainer.window) == 0  # type: ignore[union-attr]


CATALOG = {v: CatalogItem(v, v.upper(), genres=(g,), release_year=2010)
           for v, g in [("a", "Drama"), ("b", "Drama"), ("c", "Action"), ("d", "Comedy"), ("e", "Drama")]}


def test_features_leave_out_watched_titles_and_are_in_unit_range():
    user = UserState("u", history=[HistoryEntry("a", 1000)], seen=["a"])
    inputs = RankingInputs(neighbours={"a": [("b", 5), ("c", 2), ("a", 9)]}, item_counts={"a": 9, "b": 5, "c": 2},
                           trending=[ScoredItem("d", 3.0), ScoredItem("b", 2.0)], items=CATALOG)
    candidates = candidate_features(user, inputs, now_ms=1_300_000_000_000)
    assert "a" not in candidates.ids and {"b", "c", "d"} <= set(candidates.ids)
    assert candidates.matrix.shape == (len(candidates.ids), len(FEATURES))
    assert candidates.matrix.min() >= 0.0 and candidates.matrix.max() <= 1.0
    b = candidates.matrix[candidates.ids.index("b")]
    assert b[COWATCH] > 0 and b[TRENDING] > 0 and b[FEATURES.index("genre_match")] == 1.0


def test_a_viewer_without_history_is_ranked_by_the_model_too():
    """Trending is all a new viewer's candidates have; the model orders them (here: popularity
    over trending rank, which the blend alone would follow)."""
    user = UserState("new")
    inputs = RankingInputs(trending=[ScoredItem("d", 3.0), ScoredItem("b", 2.0)], items=CATALOG,
                           item_counts={"b": 50, "d": 2})
    assert [p.video_id for p in top_picks(user, inputs, 5)] == ["d", "b"]
    popular = RankerModel(row(popularity=1.0))
    assert [p.video_id for p in learned_top_picks(user, inputs, popular, 5)] == ["b", "d"]


def test_the_watches_own_increments_are_taken_back_out():
    user = UserState("u", history=[HistoryEntry("b", 2000), HistoryEntry("a", 1000), HistoryEntry("f", 500)])
    inputs = RankingInputs(neighbours={"a": [("b", 1), ("c", 4)], "f": [("b", 3)], "b": [("a", 1)]},
                           item_counts={"b": 1, "a": 3})
    before = without_watches(user, ["b"])
    undone = without_own_increments(before, inputs, ["b"])
    assert [h.video_id for h in before.history] == ["a", "f"]
    assert undone.neighbours["a"] == [("c", 4)]  # a -> b came from this watch only: gone
    assert undone.neighbours["f"] == [("b", 2)]  # f -> b: the others' two remain
    assert undone.item_counts == {"b": 0, "a": 3}


def test_the_nearline_refresh_gives_examples_for_watches_since_the_last_one(tmp_path: Path):
    """Through the real embedded store: b and c were co-watched by others; the user watched a,
    then (after its last refresh) b: b is a positive among a's candidates."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        store.upsert_items(CATALOG.values())
        store.add_cowatch({("a", "b"): 3, ("b", "a"): 3, ("a", "c"): 2, ("c", "a"): 2, ("a", "e"): 1})
        store.add_item_counts({"a": 4, "b": 3, "c": 2, "e": 1})
        user = UserState("u", history=[HistoryEntry("b", 3000), HistoryEntry("a", 1000)], seen=["b", "a"],
                         top_picks_at=2000, updated_at=3000)
        done = refresh(store, user, None, 10)
        assert done.examples and all(e.matrix.shape[1] == len(FEATURES) for e in done.examples)
        positive = done.examples[0].matrix[0]
        assert positive[COWATCH] > 0  # b is a's neighbour even with the user's own pair taken out
        assert "b" not in [p.video_id for p in done.picks]
        again = refresh(store, UserState("u", history=user.history, seen=user.seen, top_picks_at=3000), None, 10)
        assert again.examples == []  # nothing watched since
    finally:
        store.close()
