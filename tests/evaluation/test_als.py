"""Nightly ALS: known answers on tiny logs, the fold-in against implicit's own, the day boundary."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from evaluation.als import AlsNightly
from evaluation.methods import DAY_MS, EvalContext
from evaluation.protocol import build_schedule, run_method
from streamrec.ratings import Rating, rating_event
from tests.evaluation.logs import DAY_S, as_log, random_ratings

T0 = 1_500_000_000 - 1_500_000_000 % DAY_S
CONTEXT = EvalContext("test")


def _learn(method: AlsNightly, day: int, watches: list[tuple[str, str]]) -> None:
    for second, (user, title) in enumerate(watches):
        method.learn([rating_event(Rating(user, title, 4.0, T0 + day * DAY_S + second))])


def _clusters(method: AlsNightly) -> None:
    """Day 0: four users watch the A titles, eight (more popular) users the B titles."""
    _learn(method, 0, [(f"a{u}", f"A{i}") for u in range(4) for i in range(4)])
    _learn(method, 0, [(f"b{u}", f"B{i}") for u in range(8) for i in range(4)])


def _now(day: int) -> int:
    return (T0 + day * DAY_S) * 1000 + 1


def test_a_new_viewer_of_one_title_gets_its_cluster_not_the_popular_titles() -> None:
    method = AlsNightly(CONTEXT, factors=4, iterations=15)
    _clusters(method)
    method.on_day_boundary(T0 * 1000 + DAY_MS)
    _learn(method, 1, [("x", "A0")])  # after the boundary: x is scored with its current history
    served = method.recommend("x", _now(1), 3, {"A0"})
    assert sorted(served) == ["A1", "A2", "A3"]
    assert sorted(method.recommend("y", _now(1), 4, set())) == ["B0", "B1", "B2", "B3"]  # no history: popularity
    assert method.fits == {"full": 1, "warm": 0}


def test_before_the_first_day_boundary_it_serves_popular_titles() -> None:
    method = AlsNightly(CONTEXT, factors=4)
    _clusters(method)
    _learn(method, 0, [("x", "A0")])
    assert method.recommend("x", _now(0), 2, {"A0"}) == ["B0", "B1"]  # counts 8, ties by first learned
    assert method.model is None


def test_titles_learned_after_the_boundary_wait_for_the_next_day() -> None:
    method = AlsNightly(CONTEXT, factors=4)
    _clusters(method)
    method.on_day_boundary(T0 * 1000 + DAY_MS)
    _learn(method, 1, [(f"b{u}", "N") for u in range(8)])  # a new title, after the boundary
    assert "N" not in method.recommend("z", _now(1), 20, set())
    assert len(method.recommend("z", _now(1), 20, set())) == 8  # exactly the day-0 titles
    method.on_day_boundary(T0 * 1000 + 2 * DAY_MS)
    assert "N" in method.recommend("z", _now(2), 20, set())
    assert method.fits == {"full": 1, "warm": 1}  # the warm update brought N in


def test_a_day_of_large_growth_refits_from_scratch() -> None:
    method = AlsNightly(CONTEXT, factors=4, refresh=0.2, refresh_min_events=10)
    _clusters(method)  # 48 watches
    method.on_day_boundary(T0 * 1000 + DAY_MS)
    method.recommend("x", _now(1), 3, set())
    _learn(method, 1, [("c0", f"C{i}") for i in range(5)])  # +5 watches: under max(20% of 48, 10)
    method.on_day_boundary(T0 * 1000 + 2 * DAY_MS)
    method.recommend("x", _now(2), 3, set())
    _learn(method, 2, [("c1", f"C{i}") for i in range(5)] + [("c2", f"C{i}") for i in range(5)])
    method.on_day_boundary(T0 * 1000 + 3 * DAY_MS)
    method.recommend("x", _now(3), 3, set())  # 15 watches since the last full fit: over 10
    assert method.fits == {"full": 2, "warm": 1}


def test_fold_in_equals_implicits_recalculate_user() -> None:
    made: list[AlsNightly] = []

    def factory(context: EvalContext) -> AlsNightly:
        made.append(AlsNightly(context, factors=8, refresh_min_events=50))
        return made[-1]

    log = as_log(random_ratings(seed=3, events=400, days=20, burst_days=(12,)))
    run_method(build_schedule(log), factory, CONTEXT, progress=False)
    method = made[0]
    assert method.fits["full"] >= 2 and method.fits["warm"] >= 5
    assert method.model is not None
    for user in ["u0", "u3", "u7", "u11"]:
        titles = sorted({i for i in method.watched[user] if i < method.n_items})
        row = sp.csr_matrix((np.ones(len(titles), dtype=np.float32), ([0] * len(titles), titles)),
                            shape=(1, method.n_items))
        expected = method.model.recalculate_user(0, row)
        assert method.user_factor(user) == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_replay_is_reproducible_and_keeps_the_contract() -> None:
    log = as_log(random_ratings(seed=5, events=400, days=20, burst_days=(5, 15)))
    schedule = build_schedule(log)
    first = run_method(schedule, lambda c: AlsNightly(c, factors=8, refresh_min_events=50), CONTEXT, progress=False)
    again = run_method(schedule, lambda c: AlsNightly(c, factors=8, refresh_min_events=50), CONTEXT, progress=False)
    assert first.ranks.size > 0 and np.array_equal(first.ranks, again.ranks)
    assert first.served == again.served


@pytest.mark.parametrize("bad", [{"factors": 0}, {"iterations": 0}, {"alpha": 0.5}, {"regularization": -1.0}])
def test_bad_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AlsNightly(CONTEXT, **bad)  # type: ignore[arg-type]
