"""The prequential (test-then-learn) replay of a rating log against one method.

The protocol, fixed here once for every method:

- events are sorted by timestamp (then user, then title); one user's events sharing a timestamp form a
  *group* and are simultaneous: the method is asked once, against its state before any of them,
  and every title of the group is scored against that one list; then it learns the whole group;
- events before the warm-up cut (the timestamp of the event at 20% of the log) are only learned;
- after it, a group of a user with earlier events is *warm*: each title the user has not watched
  before is scored (HR@k, NDCG@k, MRR); a group of a user with no earlier event is *cold* and
  scored separately; the list may not contain an already-watched title (checked);
- ``on_day_boundary`` is called when event time enters a later UTC day.

``build_schedule`` does the sorting and grouping once per log; ``run_method`` replays it.

``run_experiment`` replays an experiment offline (``streamrec eval --experiment FILE``): the log's
users are split by the experiment's own assignment (:func:`streamrec.experiments.assign`); each
arm's ranking variant replays the whole log (its state learns from every user, as the pipeline
does) and is scored on its own users only. Every scored request is one impression of the list in
a ``top_picks`` row and every hit a play at its position (a complete when the rating is at least
``complete_at`` stars), so the same counts, rates, lift and split check as
``GET /v1/experiments/{id}`` come out (one window: the replay), beside HR@10 per arm.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm  # type: ignore[import-untyped]

from evaluation.methods import DAY_MS, EvalContext, Method, MethodFactory
from evaluation.metrics import coverage, hit_rate, mrr, ndcg, rank_of
from streamrec.events.model import UserEvent
from streamrec.experiments.attribution import ALL, CountKey, position_bucket
from streamrec.experiments.config import Experiment, assign
from streamrec.experiments.results import results_document
from streamrec.ratings import DEFAULT_POLICY, RatingLog, rating_event

DEFAULT_K = 10
DEFAULT_WARMUP = 0.2


class ProtocolError(RuntimeError):
    """A method broke the contract (a watched title in its list, a list longer than k, ...)."""


@dataclass(frozen=True, slots=True)
class Group:
    """One user's simultaneous events: ``events[start:end]`` of the schedule."""

    user: str
    timestamp_ms: int
    start: int
    end: int
    scored: bool  # after the warm-up cut
    cold: bool  # the user has no earlier event
    targets: tuple[str, ...]  # titles of the group the user has not watched before


@dataclass(slots=True)
class Schedule:
    events: list[UserEvent]
    groups: list[Group]
    cut_ms: int
    n_items: int

    @property
    def scored_warm(self) -> int:
        return sum(len(g.targets) for g in self.groups if g.scored and not g.cold)

    @property
    def scored_cold(self) -> int:
        return sum(len(g.targets) for g in self.groups if g.scored and g.cold)


def build_schedule(log: RatingLog, warmup: float = DEFAULT_WARMUP) -> Schedule:
    """Sort and group the log; ``warmup`` is the share of events that are only learned from."""
    if not 0.0 <= warmup < 1.0:
        raise ValueError(f"warmup must be in [0, 1), got {warmup}")
    # (time, user, title): a canonical order, so the order of lines within a second never matters
    ratings = sorted(log.ratings, key=lambda r: (r.timestamp, r.user_id, r.video_id))
    events = [rating_event(r) for r in ratings]
    cut_ms = ratings[int(len(ratings) * warmup)].timestamp * 1000
    history: dict[str, set[str]] = {}
    groups: list[Group] = []
    start = 0
    while start < len(ratings):
        user, ts = ratings[start].user_id, ratings[start].timestamp
        end = start + 1
        while end < len(ratings) and ratings[end].user_id == user and ratings[end].timestamp == ts:
            end += 1
        seen = history.setdefault(user, set())
        targets = tuple(dict.fromkeys(r.video_id for r in ratings[start:end] if r.video_id not in seen))
        groups.append(Group(user, ts * 1000, start, end, ts * 1000 >= cut_ms, not seen, targets))
        seen.update(r.video_id for r in ratings[start:end])
        start = end
    return Schedule(events, groups, cut_ms, len({r.video_id for r in ratings}))


@dataclass(slots=True)
class MethodResult:
    """Everything one method's replay produced."""

    name: str
    ranks: np.ndarray  # 1-based rank per warm scored title, 0 = miss
    times_ms: np.ndarray  # event time of each warm scored title
    cold_ranks: np.ndarray
    served: set[str] = field(default_factory=set)
    seconds: float = 0.0
    calls: dict[str, float] = field(default_factory=dict)  # seconds inside recommend / learn / day

    def summary(self, n_items: int) -> dict[str, float | None]:
        """The metrics as JSON-ready numbers; None where nothing was scored (no cold user)."""
        values = {
            "hr@10": hit_rate(self.ranks),
            "ndcg@10": ndcg(self.ranks),
            "mrr": mrr(self.ranks),
            "cold_hr@10": hit_rate(self.cold_ranks),
            "coverage": coverage(self.served, n_items),
            "seconds": round(self.seconds, 2),
        }
        return {key: None if math.isnan(value) else value for key, value in values.items()}


def _check_list(method: Method, user: str, served: list[str], k: int, exclude: set[str]) -> None:
    if len(served) > k:
        raise ProtocolError(f"{method.name}: served {len(served)} titles to user {user!r}, more than k={k}")
    if len(set(served)) != len(served):
        raise ProtocolError(f"{method.name}: served a title twice to user {user!r}: {served}")
    watched = [item for item in served if item in exclude]
    if watched:
        raise ProtocolError(f"{method.name}: served already-watched titles {watched} to user {user!r}")


def run_method(
    schedule: Schedule,
    factory: MethodFactory | Callable[[EvalContext], Method],
    context: EvalContext,
    k: int = DEFAULT_K,
    progress: bool = True,
    only: Callable[[str], bool] | None = None,
    on_scored: Callable[[Group, list[str], list[UserEvent]], None] | None = None,
) -> MethodResult:
    """Replay ``schedule`` against a fresh method from ``factory``; with ``only``, the groups of
    the other users are learned but not scored; ``on_scored(group, served, events)`` sees each
    scored request."""
    started = time.perf_counter()
    method = factory(context)
    calls = {"recommend": 0.0, "learn": 0.0, "day": 0.0}
    history: dict[str, set[str]] = {}
    ranks: list[int] = []
    times: list[int] = []
    cold_ranks: list[int] = []
    served_all: set[str] = set()
    current_day: int | None = None
    bar = tqdm(total=len(schedule.events), desc=f"{method.name:>15}", unit="ev", file=sys.stderr,
               disable=not progress, mininterval=0.5, leave=True)
    clock = time.perf_counter
    for group in schedule.groups:
        day = group.timestamp_ms // DAY_MS
        if current_day is not None and day > current_day:
            t0 = clock()
            method.on_day_boundary(day * DAY_MS)
            calls["day"] += clock() - t0
        current_day = day
        seen = history.setdefault(group.user, set())
        if group.scored and group.targets and (only is None or only(group.user)):
            t0 = clock()
            served = method.recommend(group.user, group.timestamp_ms, k, seen)
            calls["recommend"] += clock() - t0
            _check_list(method, group.user, served, k, seen)
            if on_scored is not None:
                on_scored(group, served, schedule.events[group.start:group.end])
            served_all.update(served)
            for target in group.targets:
                if group.cold:
                    cold_ranks.append(rank_of(target, served))
                else:
                    ranks.append(rank_of(target, served))
                    times.append(group.timestamp_ms)
        t0 = clock()
        method.learn(schedule.events[group.start:group.end])
        calls["learn"] += clock() - t0
        seen.update(e.video_id for e in schedule.events[group.start:group.end] if e.video_id)
        bar.update(group.end - group.start)
    bar.close()
    return MethodResult(
        name=method.name,
        ranks=np.asarray(ranks, dtype=np.int64),
        times_ms=np.asarray(times, dtype=np.int64),
        cold_ranks=np.asarray(cold_ranks, dtype=np.int64),
        served=served_all,
        seconds=time.perf_counter() - started,
        calls=calls,
    )


def run_experiment(
    schedule: Schedule,
    experiment: Experiment,
    factory_for: Callable[[str], MethodFactory | Callable[[EvalContext], Method]],
    context: EvalContext,
    k: int = DEFAULT_K,
    progress: bool = True,
) -> tuple[dict[str, object], dict[str, MethodResult]]:
    """The experiment's results document over the replay (see the module docstring), and each
    arm's replay result; ``factory_for(arm)`` makes the method that ranks with the arm's variant."""
    counts: dict[CountKey, int] = {}
    results: dict[str, MethodResult] = {}
    arms = {user: assign(experiment, user) for user in {g.user for g in schedule.groups}}
    for arm in experiment.arms:
        viewers: set[str] = set()

        def scored(group: Group, served: list[str], events: list[UserEvent], arm: str = arm,
                   viewers: set[str] = viewers) -> None:
            def add(metric: str, row: str, position: int) -> None:
                key = (experiment.id, 0, arm, metric, row, position)
                counts[key] = counts.get(key, 0) + 1

            if group.user not in viewers:
                viewers.add(group.user)
                add("viewers", ALL, 0)
            for position in range(len(served)):
                add("impressions", "top_picks", position_bucket(position))
            stars = {e.video_id: e.rating or 0.0 for e in events}
            for target in group.targets:
                rank = rank_of(target, served)
                if rank:
                    add("plays", "top_picks", position_bucket(rank - 1))
                    if stars.get(target, 0.0) >= DEFAULT_POLICY.complete_at:
                        add("completes", "top_picks", position_bucket(rank - 1))

        def in_arm(user: str, arm: str = arm) -> bool:
            return arms[user] == arm

        results[arm] = run_method(schedule, factory_for(arm), context, k=k, progress=progress, only=in_arm,
                                  on_scored=scored)
    last_ms = schedule.groups[-1].timestamp_ms if schedule.groups else 0
    document = results_document(experiment, counts, last_ms)
    document["offline"] = {arm: {"users": sum(a == arm for a in arms.values()), **r.summary(schedule.n_items)}
                           for arm, r in results.items()}
    return document, results
