"""Experiments on the Flink job: impressions and plays in the real Kafka -> attribution and
per-variant counts -> count lists in the store, equal to the core's rules run in a plain loop.
Also the adapters alone (no cluster)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from pipelines.flink.core import Pending
from pipelines.flink.experiments import (
    CountsWriter,
    ExperimentTotals,
    attribute,
    hold_increments,
    impressions_of,
    merged_counts,
    watches_of,
)
from streamrec.events.codec import default_codec
from streamrec.events.model import EventType, Impression, UserEvent
from streamrec.experiments.attribution import ATTRIBUTION_WINDOW_MS, CountKey
from streamrec.experiments.config import parse_experiment
from streamrec.experiments.results import METRICS
from streamrec.experiments.storage import count_keys, counts_from_lists
from streamrec.store import open_store
from streamrec_cli.localflink import LocalFlink
from tests.flink.helpers import (
    fresh_topics,
    send,
    send_events,
    start_job,
    stop_job,
    wait_for,
)

EXPERIMENT = parse_experiment({"id": "x", "start": 0, "variants": [{"name": "blend", "share": 0.5},
                                                                   {"name": "fresh", "share": 0.5}]})
CODEC = default_codec()


def shown(user: str, ts: int, variant: str, *titles: str, row: str = "top_picks") -> Impression:
    return Impression(str(uuid.uuid4()), user, ts, "r", row, titles, experiment="x", variant=variant)


def watched(user: str, video: str, ts: int, kind: EventType = EventType.PLAY, event_id: str | None = None) -> UserEvent:
    return UserEvent(event_id or str(uuid.uuid4()), kind, user, ts, video_id=video, position_sec=0.0,
                     duration_sec=100.0, region="US")


def scenario(now: int) -> tuple[list[Impression], list[UserEvent]]:
    """20 viewers shown [a, b, c]; the even ones play b (and complete it), every viewer plays c
    after the window, viewer 0 sends its play twice (same id), viewer 1's play precedes its
    impression's server time by less than the skew."""
    impressions, events = [], []
    for n in range(20):
        user, variant = f"u{n}", ("blend", "fresh")[n % 2]
        impressions.append(shown(user, now, variant, "a", "b", "c"))
        impressions.append(shown(user, now, variant, "d", "b", row="trending_now"))
        if n % 2 == 0:
            play = watched(user, "b", now + 1000)
            events += [play, watched(user, "b", now + 5000, EventType.COMPLETE)]
            if n == 0:
                events.append(play)
        events.append(watched(user, "c", now + ATTRIBUTION_WINDOW_MS + 1))
    events.append(watched("u1", "d", now - 2000))
    return impressions, events


def oracle(impressions: list[Impression], events: list[UserEvent]) -> dict[CountKey, int]:
    encoded = [(i, None, CODEC.encode(e)) for i, e in enumerate(events)]
    shown_, _ = impressions_of([(i, None, CODEC.encode(e)) for i, e in enumerate(impressions)], "t", 0)
    _, counts = attribute({}, [(i.user_id, i) for i in shown_], watches_of(encoded))
    return counts


def test_the_adapters_count_each_play_once_and_only_within_the_window() -> None:
    now = 1_764_550_000_000
    counts = oracle(*scenario(now))
    total = {m: sum(n for k, n in counts.items() if k[3] == m) for m in METRICS}
    assert total == {"impressions": 20 * 5, "plays": 10 + 1, "completes": 10, "viewers": 20}
    # The play of b goes to the newest slot showing it: both rows came at once, the first row wins.
    assert {k[4:] for k in counts if k[3] == "plays"} == {("top_picks", 1), ("trending_now", 0)}
    assert sum(n for k, n in counts.items() if k[3] == "plays" and k[2] == "blend") == 10


def test_a_record_that_is_not_an_impression_is_a_dead_letter() -> None:
    found, dead = impressions_of([(7, b"k", b"\x00junk"), (8, b"u", CODEC.encode(shown("u", 1, "blend", "a")))], "t", 2)
    assert len(found) == 1 and len(dead) == 1 and dead[0].offset == 7 and dead[0].stage == "attribute_plays"


def test_a_job_started_afresh_starts_each_count_list_from_the_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    key: CountKey = ("x", 0, "blend", "plays", "top_picks", 1)
    first, again = CountsWriter(url), CountsWriter(url)
    try:
        first.write([first.add(ExperimentTotals(), {key: 3}, 1)])
        fresh = ExperimentTotals()  # a new job: no keyed state, the store holds what was released
        lists = again.add(fresh, {key: 2, (*key[:5], 2): 1}, 2)
        assert counts_from_lists(lists) == {key: 5, (*key[:5], 2): 1}
        assert again.add(fresh, {key: 1}, 3) and fresh.totals[key] == 6  # read once, then counted here
    finally:
        first.close()
        again.close()


class Watch_:
    """A stand-in for the JobManager's answer: a checkpoint triggered at ``triggered`` completed."""

    def __init__(self) -> None:
        self.triggered = -1

    def poll(self) -> None:
        pass

    def covers(self, made_at: int) -> bool:
        return made_at < self.triggered


def test_held_increments_stay_bounded_and_are_never_released_early(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [0]
    monkeypatch.setattr("pipelines.flink.core.time.time", lambda: clock[0] / 1000)
    key: CountKey = ("x", 0, "blend", "plays", "top_picks", 0)
    pending, watch, released = Pending(), Watch_(), 0
    for t in range(1, 200):  # one input every ms; a checkpoint triggers every 50 ms
        clock[0] = t
        hold_increments(pending, {key: 1}, limit=4)
        assert len(pending.groups) <= 4
        if t % 50 == 0:
            watch.triggered = t
            ready = pending.pop_ready(watch)  # type: ignore[arg-type]
            released += sum(merged_counts(ready).values())
            assert released <= t - 1  # nothing made at or after the trigger
            assert released >= t - 50  # and nothing starves: at most one period behind
    assert released + sum(merged_counts(p for _, p in pending.groups).values()) == 199


@pytest.mark.kafka
@pytest.mark.timeout(420)
def test_the_job_counts_what_the_rules_count(kafka_broker, flink_cluster: LocalFlink, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bootstrap, url = kafka_broker.bootstrap, f"sqlite:///{tmp_path / 'state.db'}"
    topics = fresh_topics(bootstrap)
    now = int(time.time() * 1000)
    impressions, events = scenario(now)
    expected = oracle(impressions, events)
    # Plays first, impressions after: the job must wait for the impressions it needs.
    send_events(bootstrap, topics["events"], events)
    send(bootstrap, topics["impressions"], ((i.user_id.encode(), CODEC.encode(i)) for i in impressions))
    job_id = start_job(flink_cluster, bootstrap, url, topics, group=f"g-{topics['events']}")
    store = open_store(url)
    try:
        keys = count_keys(EXPERIMENT, now, METRICS)

        def counted() -> dict[CountKey, int]:
            return counts_from_lists(store.get_lists(keys).values())

        try:
            took = wait_for(lambda: counted() == expected, 180, "the experiment's counts", flink_cluster, job_id)
        except BaseException:
            got = counted()
            print("differing counts:", {k: (got.get(k), expected.get(k)) for k in set(got) | set(expected)
                                        if got.get(k) != expected.get(k)})
            raise
        time.sleep(3)  # and nothing more arrives (no play counted twice)
        assert counted() == expected
        print(f"counts in the store {took:.1f}s after the job ran")
    finally:
        store.close()
        stop_job(flink_cluster, job_id)
