"""Metrics on ranks whose values are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.metrics import (
    coverage,
    hit_rate,
    mrr,
    ndcg,
    rank_of,
    rolling_hit_rate,
)


def test_rank_of() -> None:
    assert rank_of("b", ["a", "b", "c"]) == 2
    assert rank_of("z", ["a", "b", "c"]) == 0
    assert rank_of("a", []) == 0


def test_hand_computed_values() -> None:
    ranks = [1, 0, 3, 10]  # a hit at the top, a miss, third place, last place
    assert hit_rate(ranks) == pytest.approx(3 / 4)
    # NDCG with one relevant title: 1/log2(rank+1): 1, 0, 1/2, 1/log2(11)
    assert ndcg(ranks) == pytest.approx((1 + 0 + 0.5 + 1 / math.log2(11)) / 4)
    assert mrr(ranks) == pytest.approx((1 + 0 + 1 / 3 + 1 / 10) / 4)


def test_all_misses_and_nothing_scored() -> None:
    assert hit_rate([0, 0]) == ndcg([0, 0]) == mrr([0, 0]) == 0.0
    assert math.isnan(hit_rate([]))
    assert math.isnan(ndcg(np.array([], dtype=int)))


def test_coverage() -> None:
    assert coverage({"a", "b"}, 8) == 0.25
    with pytest.raises(ValueError, match="catalog_size"):
        coverage(set(), 0)


def test_rolling_hit_rate_is_a_trailing_mean() -> None:
    ranks = np.array([1, 0, 0, 2, 0, 5])
    expected = [1 / 1, 1 / 2, 1 / 3, 1 / 3, 1 / 3, 2 / 3]  # window 3 once full
    assert rolling_hit_rate(ranks, 3).tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="window"):
        rolling_hit_rate(ranks, 0)
