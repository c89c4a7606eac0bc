"""Every baseline against a brute-force version that recomputes its definition from all events."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet

import numpy as np
import pytest

from evaluation.baselines import (
    ItemKNNStream,
    Popular,
    RandomTitles,
    Trending,
    top_k,
)
from evaluation.ease import EaseNightly
from evaluation.methods import DAY_MS, EvalContext, Method
from evaluation.protocol import build_schedule, run_method
from streamrec.events.model import UserEvent
from tests.evaluation.logs import as_log, random_ratings

CONTEXT = EvalContext("test")


class Events:
    """All learned events, in order, and the order titles were first learned."""

    def __init__(self) -> None:
        self.events: list[UserEvent] = []
        self.first_seen: dict[str, int] = {}

    def learn(self, events: Sequence[UserEvent]) -> None:
        for e in events:
            assert e.video_id is not None
            self.events.append(e)
            self.first_seen.setdefault(e.video_id, len(self.first_seen))

    def counts(self) -> Counter[str]:
        return Counter(e.video_id for e in self.events if e.video_id)

    def ranked(self, keys: Callable[[str], tuple[float, ...]], exclude: AbstractSet[str], k: int) -> list[str]:
        titles = [t for t in self.first_seen if t not in exclude]
        return sorted(titles, key=lambda t: (*keys(t), self.first_seen[t]))[:k]


class Checked:
    """Runs a fast method and asserts at every call that it agrees with ``check``."""

    def __init__(self, fast: Method, check: Callable[[Method, Events, str, int, int, AbstractSet[str], list[str]], None],
                 after_day: Callable[[Method, Events], None] | None = None) -> None:
        self.fast, self.check, self.after_day = fast, check, after_day
        self.name = fast.name
        self.truth = Events()
        self.calls = 0

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        served = self.fast.recommend(user, now_ms, k, exclude)
        self.check(self.fast, self.truth, user, now_ms, k, exclude, served)
        self.calls += 1
        return served

    def learn(self, events: Sequence[UserEvent]) -> None:
        self.fast.learn(events)
        self.truth.learn(events)

    def on_day_boundary(self, day_start_ms: int) -> None:
        self.fast.on_day_boundary(day_start_ms)
        if self.after_day:
            self.after_day(self.fast, self.truth)


def _replay(make: Callable[[EvalContext], Method], check, after_day=None, seed: int = 1, **log) -> Checked:  # type: ignore[no-untyped-def]
    checked: list[Checked] = []

    def factory(context: EvalContext) -> Method:
        checked.append(Checked(make(context), check, after_day))
        return checked[0]

    run_method(build_schedule(as_log(random_ratings(seed=seed, **log))), factory, CONTEXT, progress=False)
    assert checked[0].calls > 50
    return checked[0]


def _assert_top_scores(served: list[str], truth: dict[str, float], exclude: AbstractSet[str], k: int) -> None:
    """``served`` is a best-k list under the brute-force ``truth`` (ties may come in any order)."""
    eligible = sorted((s for t, s in truth.items() if t not in exclude), reverse=True)
    assert len(served) == min(k, len(eligible))
    assert [truth[t] for t in served] == pytest.approx(eligible[: len(served)], rel=1e-6, abs=1e-9)


def test_top_k_orders_by_score_then_tiebreak_then_index() -> None:
    scores = np.array([1.0, 3.0, 3.0, 0.0, 3.0, 2.0])
    tiebreak = np.array([0.0, 1.0, 5.0, 9.0, 1.0, 0.0])
    assert top_k(scores, 3, np.array([], dtype=np.int64), tiebreak).tolist() == [2, 1, 4]
    assert top_k(scores, 2, np.array([2]), tiebreak).tolist() == [1, 4]
    assert top_k(scores, 10, np.array([0, 1]), None).tolist() == [2, 4, 5, 3]
    assert top_k(np.zeros(4), 2, np.array([0]), np.array([0.0, 1.0, 2.0, 2.0])).tolist() == [2, 3]
    assert top_k(scores, 0, np.array([], dtype=np.int64)).size == 0


def test_popular_matches_brute_force() -> None:
    def check(fast, truth, user, now_ms, k, exclude, served):  # type: ignore[no-untyped-def]
        counts = truth.counts()
        assert served == truth.ranked(lambda t: (-counts[t],), exclude, k)

    _replay(Popular, check)


@pytest.mark.parametrize("window_days", [1.0, 3.5])
def test_trending_matches_brute_force(window_days: float) -> None:
    def check(fast, truth, user, now_ms, k, exclude, served):  # type: ignore[no-untyped-def]
        start = now_ms - window_days * DAY_MS
        recent = Counter(e.video_id for e in truth.events if start < e.timestamp <= now_ms)
        counts = truth.counts()
        assert served == truth.ranked(lambda t: (-recent[t], -counts[t]), exclude, k)

    _replay(lambda c: Trending(c, window_days=window_days), check, days=30)


def _knn_truth(truth: Events, user: str, window: int, decay: float) -> dict[str, float]:
    """co-watch and scores straight from the definition, every user's history replayed."""
    co: Counter[tuple[str, str]] = Counter()
    histories: dict[str, list[tuple[str, int]]] = {}
    groups: dict[tuple[str, int], list[str]] = {}
    for e in truth.events:  # events arrive group by group
        assert e.video_id is not None
        groups.setdefault((e.user_id, e.timestamp), []).append(e.video_id)
    for (who, _), titles in groups.items():
        history = histories.setdefault(who, [])
        recent = [t for t, _ in history[-window:]]
        for j in titles:
            for i in recent:
                co[(i, j)] += 1
                co[(j, i)] += 1
            for i in titles:
                if i != j:
                    co[(i, j)] += 1
        number = history[-1][1] + 1 if history else 0
        history.extend((t, number) for t in titles)
    counts = truth.counts()
    recent_pairs = histories.get(user, [])[-window:]
    latest = recent_pairs[-1][1] if recent_pairs else 0
    return {
        j: sum(decay ** (latest - g) * co[(i, j)] / math.sqrt(counts[i] * counts[j]) for i, g in recent_pairs)
        for j in truth.first_seen
    }


@pytest.mark.parametrize(("window", "decay"), [(50, 0.9), (3, 0.5), (5, 1.0)])
def test_itemknn_matches_brute_force(window: int, decay: float) -> None:
    def check(fast, truth, user, now_ms, k, exclude, served):  # type: ignore[no-untyped-def]
        expected = _knn_truth(truth, user, window, decay)
        got = dict(zip(fast.items.ids, fast.scores(user).tolist(), strict=True))
        assert got == pytest.approx(expected, rel=1e-5, abs=1e-9)
        _assert_top_scores(served, expected, exclude, k)

    _replay(lambda c: ItemKNNStream(c, window=window, decay=decay), check, events=300)


def _ease_truth(truth: Events, titles: list[str], l2: float) -> np.ndarray:
    """P = (X^T X + l2 I)^-1 over ``titles``, X the binary users x titles matrix of all events."""
    position = {t: i for i, t in enumerate(titles)}
    users = sorted({e.user_id for e in truth.events})
    x = np.zeros((len(users), len(titles)))
    row = {u: i for i, u in enumerate(users)}
    for e in truth.events:
        if e.video_id in position:
            x[row[e.user_id], position[e.video_id]] = 1.0
    return np.linalg.inv(x.T @ x + l2 * np.eye(len(titles)))


def test_ease_matches_brute_force_through_every_retrain_path() -> None:
    l2, n_items = 3.0, 12
    full_rebuilds = [0]

    def after_day(fast, truth):  # type: ignore[no-untyped-def]
        if fast.p0 is None:
            return
        titles = fast.items.titles(fast.model_items)
        if fast.retrains["full"] > full_rebuilds[0]:  # a rebuild re-picks the most watched titles
            full_rebuilds[0] = fast.retrains["full"]
            counts = truth.counts()
            assert titles == truth.ranked(lambda t: (-counts[t],), set(), n_items)
        current = fast.p0 - fast.z @ fast.kernel @ fast.z.T
        np.testing.assert_allclose(current, _ease_truth(truth, titles, l2), rtol=1e-7, atol=1e-10)

    def trained_check(fast, truth, user, now_ms, k, exclude, served):  # type: ignore[no-untyped-def]
        if fast.p0 is None:
            return
        titles = fast.items.titles(fast.model_items)
        p = fast.p0 - fast.z @ fast.kernel @ fast.z.T  # checked against brute force at each boundary
        b = np.eye(len(titles)) - p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        history = {e.video_id for e in truth.events if e.user_id == user}
        x = np.array([1.0 if t in history else 0.0 for t in titles])
        expected = {t: s for t, s in zip(titles, (x @ b).tolist(), strict=True) if t not in history}
        got = dict(zip(titles, fast.scores(user)[fast.model_items].tolist(), strict=True))
        assert {t: got[t] for t in expected} == pytest.approx(expected, rel=1e-6, abs=1e-9)
        _assert_top_scores(served, expected, exclude, k)

    checked = _replay(
        lambda c: EaseNightly(c, l2=l2, max_items=n_items, refresh=0.5, refresh_min_events=60, max_rank=6),
        trained_check, after_day, events=500, days=60, burst_days=(20, 40),
    )
    retrains = checked.fast.retrains  # type: ignore[attr-defined]
    assert retrains["full"] >= 3 and retrains["low_rank"] >= 10 and retrains["consolidate"] >= 2, retrains


def test_random_is_seeded_uniform_and_respects_exclusions() -> None:
    def serve(seed: int) -> list[list[str]]:
        method = RandomTitles(EvalContext("t", seed=seed))
        method.learn([UserEvent(f"e{i}", "rate", "u", i, video_id=f"m{i}") for i in range(30)])  # type: ignore[arg-type]
        return [method.recommend("v", 0, 10, {"m0", "m1"}) for _ in range(600)]

    lists = serve(7)
    assert lists == serve(7) and lists != serve(8)
    for served in lists:
        assert len(set(served)) == 10 and not {"m0", "m1"} & set(served)
        assert all(0 <= int(t[1:]) < 30 for t in served)
    counts = Counter(t for served in lists for t in served)
    expected = 600 * 10 / 28
    assert set(counts) == {f"m{i}" for i in range(2, 30)}
    assert max(abs(c - expected) for c in counts.values()) < 5 * math.sqrt(expected)
    small = RandomTitles(EvalContext("t"))
    small.learn([UserEvent("e", "rate", "u", 0, video_id="m0")])  # type: ignore[arg-type]
    assert small.recommend("v", 0, 10, set()) == ["m0"]
