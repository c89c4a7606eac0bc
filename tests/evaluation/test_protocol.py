"""The protocol: warm-up, simultaneous events, cold users, day boundaries, and no peeking."""

from __future__ import annotations

import random
from collections.abc import Sequence
from collections.abc import Set as AbstractSet

import pytest

from evaluation.baselines import ItemKNNStream, Popular
from evaluation.methods import DAY_MS, EvalContext, Method
from evaluation.protocol import ProtocolError, build_schedule, run_method
from streamrec.events.model import UserEvent
from streamrec.ratings import Rating, rating_event
from tests.evaluation.logs import as_log, random_ratings

CONTEXT = EvalContext("test")


def _r(user: str, item: str, second: int) -> Rating:
    return Rating(user, item, 4.0, second)


# a:x b:x | b:y  c:{y,z} (cold, simultaneous)  a:{y,z} (simultaneous)
HAND_LOG = [_r("a", "x", 1), _r("b", "x", 2), _r("b", "y", 3), _r("c", "z", 4), _r("c", "y", 4),
            _r("a", "z", 5), _r("a", "y", 5)]


def test_popular_on_a_log_worked_out_by_hand() -> None:
    schedule = build_schedule(as_log(HAND_LOG), warmup=2 / 7)  # cut at the 3rd event: second 3
    assert schedule.cut_ms == 3000
    assert (schedule.scored_warm, schedule.scored_cold) == (3, 2)
    result = run_method(schedule, Popular, CONTEXT, progress=False)
    # b@3: only x is known and b watched it -> empty list, miss.
    # c@4 (cold): counts x2 y1 -> [x, y]: y at 2, z missed.
    # a@5: counts x2 y2 z1, a watched x -> [y, z]: y at 1, z at 2.
    assert result.ranks.tolist() == [0, 1, 2]  # a group's titles in id order: y, z
    assert result.cold_ranks.tolist() == [2, 0]
    summary = result.summary(schedule.n_items)
    assert summary["hr@10"] == pytest.approx(2 / 3)
    assert summary["cold_hr@10"] == pytest.approx(1 / 2)
    assert summary["coverage"] == pytest.approx(3 / 3)


class Spy:
    """Records what it was told and when; serves a fixed preference order."""

    name = "spy"

    def __init__(self, context: EvalContext, serve: Sequence[str] = ()) -> None:
        self.serve = list(serve)
        self.learned: list[UserEvent] = []
        self.log: list[tuple[str, object]] = []

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        self.log.append(("recommend", (user, now_ms, frozenset(e.event_id for e in self.learned), frozenset(exclude))))
        return [i for i in self.serve if i not in exclude][:k]

    def learn(self, events: Sequence[UserEvent]) -> None:
        self.log.append(("learn", tuple(e.event_id for e in events)))
        self.learned.extend(events)

    def on_day_boundary(self, day_start_ms: int) -> None:
        self.log.append(("day", day_start_ms))


def _run_spy(ratings: list[Rating], warmup: float = 0.2) -> tuple[Spy, list]:
    holder: list[Spy] = []

    def factory(context: EvalContext) -> Method:
        holder.append(Spy(context, serve=[f"m{i}" for i in range(40)]))
        return holder[0]

    schedule = build_schedule(as_log(ratings), warmup)
    run_method(schedule, factory, CONTEXT, progress=False)
    return holder[0], schedule.groups


def test_the_method_never_sees_the_event_it_is_scored_on() -> None:
    ratings = random_ratings(seed=3, events=300)
    spy, groups = _run_spy(ratings)
    calls = [args for kind, args in spy.log if kind == "recommend"]
    scored = [g for g in groups if g.scored and g.targets]
    assert len(calls) == len(scored) > 100  # one call per (user, timestamp) group
    events = sorted(ratings, key=lambda r: (r.timestamp, r.user_id, r.video_id))
    ids = [rating_event(r).event_id for r in events]
    for group, (user, now_ms, learned, exclude) in zip(scored, calls, strict=True):
        assert (user, now_ms) == (group.user, group.timestamp_ms)
        assert learned == set(ids[: group.start])  # everything before the group, nothing of it
        assert exclude == {r.video_id for r in events[: group.start] if r.user_id == user}
        assert not exclude & set(group.targets)


def test_simultaneous_events_are_learned_together_after_scoring() -> None:
    spy, _ = _run_spy(HAND_LOG, warmup=2 / 7)
    kinds = [(kind, args if kind != "recommend" else args[:2]) for kind, args in spy.log]
    group = tuple(rating_event(_r("c", v, 4)).event_id for v in ("y", "z"))  # sorted by title in the group
    assert ("learn", group) in kinds  # one learn call for the group
    at = kinds.index(("recommend", ("c", 4000)))
    assert kinds[at + 1] == ("learn", group)


def test_order_within_a_timestamp_does_not_change_scores() -> None:
    ratings = random_ratings(seed=5, events=300)
    shuffled = ratings[:]
    random.Random(1).shuffle(shuffled)  # lines of one second in another order
    for factory in (Popular, ItemKNNStream):
        a = run_method(build_schedule(as_log(ratings)), factory, CONTEXT, progress=False)
        b = run_method(build_schedule(as_log(shuffled)), factory, CONTEXT, progress=False)
        assert a.ranks.tolist() == b.ranks.tolist()
        assert a.cold_ranks.tolist() == b.cold_ranks.tolist()


def test_day_boundaries_come_before_the_days_first_event() -> None:
    day = DAY_MS // 1000
    ratings = [_r("a", "x", 10), _r("b", "x", 20), _r("a", "y", day + 5), _r("b", "z", 3 * day + 1)]
    spy, _ = _run_spy(ratings, warmup=0.0)
    days = [(i, args) for i, (kind, args) in enumerate(spy.log) if kind == "day"]
    assert [d for _, d in days] == [1 * DAY_MS, 3 * DAY_MS]  # skipped day 2 has no call
    for index, _ in days:
        assert spy.log[index + 1][0] == "recommend"


class Cheat(Spy):
    def __init__(self, context: EvalContext, how: str) -> None:
        super().__init__(context)
        self.how = how

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        if self.how == "watched":
            return sorted(exclude)[:1]
        if self.how == "long":
            return [f"m{i}" for i in range(k + 1)]
        return ["m1", "m1"]


@pytest.mark.parametrize(("how", "message"), [("watched", "already-watched"), ("long", "more than k"), ("twice", "twice")])
def test_protocol_violations_are_errors(how: str, message: str) -> None:
    schedule = build_schedule(as_log(random_ratings(seed=2, events=100)))
    with pytest.raises(ProtocolError, match=message):
        run_method(schedule, lambda c: Cheat(c, how), CONTEXT, progress=False)


def test_warmup_must_be_a_share() -> None:
    with pytest.raises(ValueError, match="warmup"):
        build_schedule(as_log(HAND_LOG), warmup=1.0)
