"""Tuned recency-weighted popularity: decayed counts and the half-life chosen test-then-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluation.baselines import Popular
from evaluation.methods import EvalContext
from evaluation.protocol import build_schedule, run_method
from evaluation.recency import HALF_LIVES_H, TrendingTuned
from streamrec.ratings import Rating, rating_event
from tests.evaluation.logs import DAY_S, as_log, random_ratings

T0 = 1_500_000_000 - 1_500_000_000 % DAY_S
CONTEXT = EvalContext("test")
SHORT_OR_ALL_TIME = (1.0, math.inf)


def _watch(method: TrendingTuned, user: str, title: str, ts: int) -> None:
    method.learn([rating_event(Rating(user, title, 4.0, ts))])


def _evergreens(method: TrendingTuned) -> None:
    """Day 0: ten evergreen titles watched 20 times each."""
    for u in range(20):
        for i in range(10):
            _watch(method, f"old{u}", f"P{i}", T0 + u)


def test_fresh_titles_make_the_short_half_life_win() -> None:
    """Each day a new title is watched by five viewers a minute apart: after the first viewer, a 1 h
    half-life has it first; all-time counts keep the ten evergreens (20 watches) ahead of it."""
    method = TrendingTuned(CONTEXT, half_lives_h=SHORT_OR_ALL_TIME)
    _evergreens(method)
    before = method.hits.copy()  # the evergreens' own watches tested themselves too
    days = 5
    for day in range(1, days + 1):
        for viewer in range(5):
            ts = T0 + day * DAY_S + 60 * viewer
            if viewer == 4:  # the replay asks before learning: the 1 h list is served, the title first
                assert method.recommend(f"a{viewer}", ts * 1000, 10, set())[0] == f"F{day}"
            _watch(method, f"a{viewer}", f"F{day}", ts)
    assert (method.hits - before).tolist() == [4 * days, 0]  # viewers 1-4 hit (viewer 0 meets an unknown title)
    assert method.chosen == 0


def test_fads_make_the_all_time_counts_win() -> None:
    """Each day ten one-off fads are watched a minute before a viewer watches the top evergreen:
    the 1 h list is all fads, all-time counts have the evergreen first."""
    method = TrendingTuned(CONTEXT, half_lives_h=SHORT_OR_ALL_TIME)
    _evergreens(method)
    before = method.hits.copy()
    days = 4
    for day in range(1, days + 1):
        ts = T0 + day * DAY_S
        for fad in range(10):
            _watch(method, f"bot{day}-{fad}", f"X{day}-{fad}", ts - 60)
        served = method.recommend(f"r{day}", ts * 1000, 10, set())
        assert served[0] == "P0"
        _watch(method, f"r{day}", "P0", ts)
    assert (method.hits - before).tolist() == [0, days]
    assert method.chosen == 1


def test_ties_between_half_lives_go_to_the_longer() -> None:
    method = TrendingTuned(CONTEXT, half_lives_h=(1.0, 24.0, math.inf))
    assert method.chosen == 2  # nothing seen yet: all-time counts
    method.hits[:] = [3, 3, 1]
    assert method.chosen == 1


def test_decayed_counts_halve_per_half_life_over_years() -> None:
    """The reference time moves forward (a 1 h half-life over two years is 17,520 halvings)."""
    method = TrendingTuned(CONTEXT, half_lives_h=(1.0, 24.0))
    later = T0 + 2 * 365 * DAY_S
    _watch(method, "u1", "Y", T0)
    _watch(method, "u1", "old", T0 + 1)
    _watch(method, "u2", "A", later)
    _watch(method, "u3", "B", later + 3600)  # one half-life after A's watch
    _watch(method, "u4", "B", later + 3600)
    assert np.isfinite(method.decayed).all()
    hourly = method.decayed[0, : len(method.items)]
    a, b = method.items.position["A"], method.items.position["B"]
    assert hourly[b] / hourly[a] == pytest.approx(4.0)  # 2 watches, each twice A's weight
    daily = method.decayed[1, : len(method.items)]
    assert daily[b] / daily[a] == pytest.approx(2 * 2 ** (1 / 24))
    y, old = method.items.position["Y"], method.items.position["old"]
    assert hourly[y] == hourly[old] == 0.0  # 17,520 halvings: below the smallest double
    assert 0.0 < daily[y] < daily[old]  # 730 halvings: still there, the later watch weighs more
    assert method.chosen == 1  # no hit either way: the longer half-life
    assert method.recommend("u9", (later + 7200) * 1000, 4, set()) == ["B", "A", "old", "Y"]


def test_its_own_test_then_learn_counts_what_the_replay_counts() -> None:
    """The hits a half-life earns inside the method equal the replay's hits for that half-life alone
    (no warm-up, so every group is scored by both), and all-time counts are the popular baseline."""
    made: list[TrendingTuned] = []

    def factory(context: EvalContext) -> TrendingTuned:
        made.append(TrendingTuned(context))
        return made[-1]

    schedule = build_schedule(as_log(random_ratings(seed=7, events=400, days=20, burst_days=(3,))), warmup=0.0)
    run_method(schedule, factory, CONTEXT, progress=False)
    tuned = made[0]
    for position, half_life in enumerate(HALF_LIVES_H):
        alone = run_method(schedule, lambda c, h=half_life: TrendingTuned(c, half_lives_h=(h,)), CONTEXT,
                           progress=False)
        assert tuned.hits[position] == np.count_nonzero(alone.ranks) + np.count_nonzero(alone.cold_ranks)
    all_time = run_method(schedule, lambda c: TrendingTuned(c, half_lives_h=(math.inf,)), CONTEXT, progress=False)
    popular = run_method(schedule, Popular, CONTEXT, progress=False)
    assert np.array_equal(all_time.ranks, popular.ranks) and np.array_equal(all_time.cold_ranks, popular.cold_ranks)


@pytest.mark.parametrize("bad", [{"half_lives_h": ()}, {"half_lives_h": (0.0,)}, {"k": 0}])
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrendingTuned(CONTEXT, **bad)  # type: ignore[arg-type]
