"""Similarity, trending and vector helpers: known answers, bounds, determinism."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem
from streamrec.recommend import (
    content_similarity,
    cowatch_similarity,
    decay_factor,
    decayed_add,
    fold_in,
    item_basis,
    item_vector,
    item_vector_increments,
    maturity_allowed,
    similar_titles,
    top_n,
    vector_scores,
)
from streamrec.recommend import vectors as vectors_module


def test_cowatch_similarity_is_the_cosine_of_binary_watchers() -> None:
    # 4 users watched a, 9 watched b, 3 watched both: cosine = 3 / sqrt(4 * 9) = 0.5
    assert cowatch_similarity(3, 4, 9) == pytest.approx(0.5)
    assert cowatch_similarity(0, 4, 9) == 0.0
    assert cowatch_similarity(50, 1, 1) == 1.0  # clamped
    assert cowatch_similarity(2, 0, 0) == 1.0  # counts not yet written count as 1


def test_content_similarity_known_answers() -> None:
    a = CatalogItem("a", "A", genres=("Drama", "War"), release_year=1990, language="en")
    b = CatalogItem("b", "B", genres=("Drama",), release_year=2000, language="en")
    c = CatalogItem("c", "C", genres=("Comedy",), content_type="series", language="fr")
    assert content_similarity(a, a) == pytest.approx(1.0)
    assert content_similarity(a, b) == pytest.approx(0.6 * 0.5 + 0.2 * math.exp(-1.0) + 0.1 + 0.1)
    assert content_similarity(a, c) == 0.0
    assert content_similarity(a, b) == content_similarity(b, a)


def test_maturity_caps() -> None:
    assert maturity_allowed("R", None)
    assert maturity_allowed("PG", "PG") and maturity_allowed("G", "PG")
    assert not maturity_allowed("PG-13", "PG")
    assert not maturity_allowed(None, "PG")  # kids never see unrated titles
    assert maturity_allowed(None, "NC-17")
    with pytest.raises(ValueError, match="max_maturity"):
        maturity_allowed("G", "X")


def test_similar_titles_prefers_cowatch_and_falls_back_to_content() -> None:
    items = {
        "seed": CatalogItem("seed", "S", genres=("Drama",)),
        "close": CatalogItem("close", "C", genres=("Drama",), maturity_rating="PG"),
        "far": CatalogItem("far", "F", genres=("Horror",), maturity_rating="G"),
        "n1": CatalogItem("n1", "N1", maturity_rating="PG"),
        "n2": CatalogItem("n2", "N2", maturity_rating="G"),
        "mature": CatalogItem("mature", "M", genres=("Drama",), maturity_rating="R"),
        "elsewhere": CatalogItem("elsewhere", "E", genres=("Drama",), regions=("FR",)),
    }
    counts = {"seed": 10, "n1": 5, "n2": 40, "mature": 4, "weak": 3}
    neighbours = [("n2", 8), ("n1", 4), ("mature", 4), ("weak", 1)]
    candidates = ["far", "close", "seed", "elsewhere"]
    got = similar_titles("seed", neighbours=neighbours, item_counts=counts, items=items,
                         content_candidates=candidates, k=10, region="US")
    # n1: 4/sqrt(10*5) = .57 > mature: 4/sqrt(40) = .63? no: .632 > .566 > n2: 8/sqrt(400) = .4
    assert [s.video_id for s in got] == ["mature", "n1", "n2", "close", "far"]
    assert got[0].score == pytest.approx(4 / math.sqrt(40), abs=1e-3)
    assert all(0.0 <= s.score <= 1.0 for s in got)
    kids = similar_titles("seed", neighbours=neighbours, item_counts=counts, items=items,
                          content_candidates=candidates, k=10, region="US", max_maturity="PG")
    assert [s.video_id for s in kids] == ["n1", "n2", "close", "far"]
    assert [s.video_id for s in similar_titles("seed", neighbours=neighbours, item_counts=counts, items=items,
                                               k=2)] == ["mature", "n1"]


def test_top_n_orders_by_count_then_id() -> None:
    assert top_n({"b": 2, "a": 2, "c": 5, "d": 1}, 3) == [ScoredItem("c", 5), ScoredItem("a", 2), ScoredItem("b", 2)]
    assert top_n({}, 3) == []
    with pytest.raises(ValueError, match="n"):
        top_n({"a": 1}, -1)


def test_decay_is_arrival_order_independent() -> None:
    assert decay_factor(10, 10) == pytest.approx(0.5)
    assert decay_factor(-5, 10) == 1.0
    in_order = decayed_add(*decayed_add(0.0, 0, 1.0, 0, 10), 1.0, 10, 10)
    late = decayed_add(*decayed_add(0.0, 0, 1.0, 10, 10), 1.0, 0, 10)
    assert in_order[1] == late[1] == 10
    assert in_order[0] == pytest.approx(late[0]) == pytest.approx(1.5)


def test_item_basis_is_deterministic_unit_and_read_only() -> None:
    a = item_basis("vid_1")
    assert np.array_equal(a, item_basis("vid_1"))
    assert np.linalg.norm(a) == pytest.approx(1.0, abs=1e-6)
    assert not np.array_equal(a, item_basis("vid_2"))
    with pytest.raises(ValueError):
        a[0] = 1.0


def test_item_vector_from_neighbours_equals_the_sum_of_increments() -> None:
    neighbours = [("b", 3), ("c", 1)]
    deltas = item_vector_increments({("a", "b"): 2, ("a", "c"): 1, ("x", "a"): 1})
    raw = item_basis("a") + deltas["a"] + item_basis("b")  # a second increment of (a, b) by 1
    assert np.allclose(item_vector("a", neighbours), raw / np.linalg.norm(raw), atol=1e-6)


def plain_loop_increments(cowatch: dict[tuple[str, str], int]) -> dict[str, np.ndarray]:
    """The rule item_vector_increments replaced: one float32 product and sum per pair, in order."""
    expected: dict[str, np.ndarray] = {}
    for (item, neighbour), count in cowatch.items():
        delta = expected.setdefault(item, np.zeros(64, dtype=np.float32))
        delta += np.float32(count) * item_basis(neighbour)
    return expected


def test_item_vector_increments_equal_the_plain_loop_bit_for_bit() -> None:
    """The batched form against the rule it replaced, one float32 product and sum per pair in order."""
    rng = random.Random(5)
    titles = [f"t{i}" for i in range(300)]
    cowatch = {(a, b): rng.randrange(1, 60) for a, b in (rng.sample(titles, 2) for _ in range(5000))}
    expected = plain_loop_increments(cowatch)
    deltas = item_vector_increments(cowatch)
    assert list(deltas) == list(expected)
    assert all(deltas[v].dtype == np.float32 and deltas[v].tobytes() == expected[v].tobytes() for v in expected)
    assert item_vector_increments({}) == {}


def test_item_vector_increments_gather_the_right_bases_as_the_basis_rows_grow_and_empty(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch after batch over thousands of titles (the rows' matrix grows past its first 1,024
    rows and, with a small limit, is emptied and refilled): every sum as the plain loop's."""
    monkeypatch.setattr(vectors_module, "_BASIS_ROWS", {})
    rng = random.Random(11)
    titles = [f"g{i}" for i in range(3000)]
    for batch, limit in enumerate([100_000] * 4 + [700] * 4):
        monkeypatch.setattr(vectors_module, "_BASIS_ROWS_LIMIT", limit)
        seen = titles[: 600 * (batch % 4 + 1)]
        cowatch = {(a, b): rng.randrange(1, 9) for a, b in (rng.sample(seen, 2) for _ in range(1500))}
        expected = plain_loop_increments(cowatch)
        deltas = item_vector_increments(cowatch)
        assert list(deltas) == list(expected), batch
        assert all(deltas[v].tobytes() == expected[v].tobytes() for v in expected), batch
    with pytest.raises(ValueError, match="dim"):
        item_vector_increments({("a", "b"): 1}, dim=0)


def test_fold_in_is_the_rule_as_written_bit_for_bit() -> None:
    """fold_in works in place on one array; the result is the rule's, unit(decay * u + w * unit(i))."""
    rng = np.random.default_rng(3)

    def unit(v: np.ndarray) -> np.ndarray:
        return v / np.linalg.norm(v)

    for k in range(500):
        user = unit(rng.standard_normal(64).astype(np.float32))
        item = item_basis(f"t{k}") * np.float32(rng.uniform(0.5, 3.0))
        weight = float(rng.choice([-1.0, -0.5, 0.3, 0.6, 1.0]))
        expected = unit(0.9 * user + np.float32(weight) * unit(item)).astype(np.float32)
        got = fold_in(user, item, weight, 0.9)
        assert got is not None and got.dtype == np.float32 and got.tobytes() == expected.tobytes()


def test_shared_neighbours_make_item_vectors_close() -> None:
    shared = [(f"n{i}", 5) for i in range(20)]
    a, b = item_vector("a", shared), item_vector("b", shared)
    c = item_vector("c", [(f"m{i}", 5) for i in range(20)])
    assert float(a @ b) > 0.9
    assert abs(float(a @ c)) < 0.5


def test_fold_in_and_vector_scores() -> None:
    a, b = item_basis("a"), item_basis("b")
    assert fold_in(None, a, -1.0) is None
    user = fold_in(None, a, 1.0)
    assert user is not None
    scores = vector_scores(user, {"a": a, "b": b})
    assert scores["a"] == pytest.approx(1.0, abs=1e-5) and scores["a"] > scores["b"]
    assert vector_scores(None, {"a": a}) == {}
    with pytest.raises(ValueError, match="decay"):
        fold_in(user, b, 1.0, decay=0.0)


def test_decayed_counts_equal_decayed_add_in_any_order_and_across_a_rebase() -> None:
    from streamrec.recommend.trending import DecayedCounts

    rng = random.Random(3)
    half_life = 3_600_000
    watches = [(f"v{rng.randint(0, 9)}", rng.randint(0, 400 * half_life)) for _ in range(500)]  # spans ~400 half-lives
    rng.shuffle(watches)  # late and early arrivals mixed
    counts = DecayedCounts(half_life)
    oracle: dict[str, tuple[float, int]] = {}
    for video_id, ts in watches:
        counts.add(video_id, 1.0, ts)
        oracle[video_id] = decayed_add(*oracle.get(video_id, (0.0, ts)), 1.0, ts, half_life)
    now = 401 * half_life
    got = counts.at(now)
    for video_id, (score, ts) in oracle.items():
        assert got[video_id] == pytest.approx(decayed_add(score, ts, 0.0, now, half_life)[0], rel=1e-9, abs=1e-300)
    counts.forget_below(0.5, now)
    assert set(counts.at(now)) == {v for v, c in got.items() if c >= 0.5}


def test_content_scorer_gives_content_similarity_bit_for_bit_on_a_real_catalog() -> None:
    """The ranking's per-candidate form equals the readable rule exactly (==, not approx) over
    MovieLens titles: shared genres, none, missing years, other types and languages."""
    from streamrec.ratings import load_catalog
    from streamrec.recommend.similarity import content_scorer
    from tests.fixtures.paths import SHARED_DATA

    catalog = list(load_catalog(SHARED_DATA / "ml-latest-small"))
    rng = random.Random(7)
    sample = rng.sample(catalog, 300)
    odd = [CatalogItem("x1", "X", genres=(), release_year=None, language="fr", content_type="series"),
           CatalogItem("x2", "Y", genres=("Drama", "Comedy"), release_year=1999, language="fr")]
    for a in sample[:40] + odd:
        score = content_scorer(a)
        for b in sample + odd:
            assert score(b) == content_similarity(a, b), (a.video_id, b.video_id)
