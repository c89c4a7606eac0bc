"""The job reading the real Kafka broker: streaming on Prism, and bounded (--stop_at_end) on the DirectRunner.

Produces events to Kafka, starts ``python -m pipelines.main`` as its own process group, and waits
(bounded) for the state in the SQLite store. Then it kills the job outright (SIGKILL, no drain),
produces more events together with re-sent copies of old ones (same event ids), restarts the job
from the offsets it committed (only ever those whose effects were stored) and checks that nothing
was counted twice. The crash mid-replay of 20k events is in tests/faults/.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from streamrec.events.codec import default_codec
from streamrec.events.model import DeadLetter
from streamrec.events.model import EventType as K
from streamrec.store import Store, open_store
from tests.fixtures.kafka import read_records
from tests.fixtures.pipeline_job import (
    committed_offsets,
    group_of,
    kill_job,
    make_topics,
    produce,
    start_job,
    wait_for,
)
from tests.pipelines.helpers import event

pytestmark = [pytest.mark.kafka, pytest.mark.streaming_runner, pytest.mark.timeout(240)]


@pytest.fixture
def topics(kafka_broker) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return make_topics(kafka_broker.bootstrap, partitions=2)


def test_events_in_kafka_become_state_in_the_store_and_a_crash_replay_counts_nothing_twice(
        kafka_broker, topics: dict[str, str], jobs: list, tmp_path: Path) -> None:  # type: ignore[no-untyped-def,type-arg]
    bootstrap, url, log = kafka_broker.bootstrap, f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "job.log"
    now = int(time.time() * 1000)
    first = [event(K.PLAY, f"u{u}", f"v{v}", now + 10 * v, region="US", position_sec=0.0)
             for u in range(5) for v in range(3)]
    positions = produce(bootstrap, topics["events"], first, extra=[b"\x00garbage"])
    jobs.append(start_job(bootstrap, url, topics, log))
    store: Store | None = None  # opened once the job has created the file

    def applied(users: int, per_user: int) -> bool:
        nonlocal store
        if store is None:
            if not (tmp_path / "state.db").exists():
                return False
            store = open_store(url)
        states = store.get_users([f"u{u}" for u in range(users)])
        return len(states) == users and all(len(s.history) >= per_user for s in states.values())

    wait_for(lambda: applied(5, 3), 90, "the first events' state", jobs[-1], log)
    assert store is not None
    assert store.get_item_counts(["v0", "v1", "v2"]) == {"v0": 5, "v1": 5, "v2": 5}
    dead = read_records(bootstrap, topics["dlq"], expected=1, timeout_s=30)
    letter = default_codec().decode(dead[0].value)
    assert isinstance(letter, DeadLetter) and letter.original == b"\x00garbage" and letter.reason
    # Once every record's effect is stored (the state, the dead letter), the group commits the end.
    ends = {p: max(o for q, o in positions if q == p) + 1 for p, _ in positions}
    wait_for(lambda: all(committed_offsets(bootstrap, group_of(topics), topics["events"], 2).get(p) == end
                         for p, end in ends.items()), 30, "the committed offsets at the end", jobs[-1], log, every_s=1.0)

    # A live event's effect is readable within a bound once the job runs.
    live = event(K.PLAY, "u0", "v9", int(time.time() * 1000), position_sec=0.0)
    produce(bootstrap, topics["events"], [live])
    took = wait_for(lambda: "v9" in {h.video_id for h in store.get_user("u0").history}, 10, "a live event", jobs[-1], log)
    assert took < 10
    # Live watches reach the trending lists while their windows are still open (early panes).
    from streamrec.model import trending_key
    wait_for(lambda: any(s.video_id == "v9" for r in store.get_lists([trending_key("1h", "global")]).values()
                          for s in r.items), 30, "the live watch in trending:1h:global", jobs[-1], log)
    us = store.get_lists([trending_key("1h", "US")])[trending_key("1h", "US")]
    assert us.window_end is not None and us.window_end > int(time.time() * 1000)  # a window still open

    # Crash: no drain. Re-send old events (same ids) and new ones.
    kill_job(jobs[-1])
    later = [event(K.COMPLETE, f"u{u}", "v1", now + 1000, position_sec=3600.0) for u in range(5)]
    produce(bootstrap, topics["events"], first[:5] + later)
    jobs.append(start_job(bootstrap, url, topics, log))
    wait_for(lambda: all("v1" not in s.in_progress for s in store.get_users([f"u{u}" for u in range(5)]).values()),
              90, "the events after the restart", jobs[-1], log)
    # Old events were re-sent: each (user, title) still counts once.
    assert store.get_item_counts(["v0", "v1", "v2", "v9"]) == {"v0": 5, "v1": 5, "v2": 5, "v9": 1}
    u0 = store.get_user("u0")
    assert u0 is not None and len(u0.recent_event_ids) == len(set(u0.recent_event_ids)) == 3 + 1 + 1


def test_a_bounded_read_of_the_topic_on_the_direct_runner(kafka_broker, topics: dict[str, str],  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    # The same reader and stages as a batch job (--stop_at_end): what is in the topic now, then done.
    from pipelines.main import run

    now = int(time.time() * 1000)
    events = [event(K.PLAY, f"b{u}", f"t{v}", now + 10 * v, position_sec=0.0) for u in range(3) for v in range(2)]
    positions = produce(kafka_broker.bootstrap, topics["events"], events, extra=[b"not avro"])
    url = f"sqlite:///{tmp_path / 'state.db'}"
    run(["--bootstrap", kafka_broker.bootstrap, "--store", url, "--events_topic", topics["events"],
         "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"], "--group", f"b-{topics['events']}",
         "--stop_at_end", "--runner", "DirectRunner"])
    store = open_store(url)
    assert store.get_item_counts(["t0", "t1"]) == {"t0": 3, "t1": 3}
    assert {u: len(s.history) for u, s in store.get_users(["b0", "b1", "b2"]).items()} == {"b0": 2, "b1": 2, "b2": 2}
    assert len(read_records(kafka_broker.bootstrap, topics["dlq"], expected=1, timeout_s=20)) == 1
    # Every record's effect (state or dead letter) is stored, so the group committed the end.
    assert committed_offsets(kafka_broker.bootstrap, f"b-{topics['events']}", topics["events"], 2) == {
        p: n for p, n in Counter(p for p, _ in positions).items()} | {p: 0 for p in range(2) if p not in dict(Counter(p for p, _ in positions))}
