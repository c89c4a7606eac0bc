"""The Flink job end to end: events and the catalog in the real Kafka -> the job on the local
cluster -> the SQLite store, through the same core rules as the Beam pipeline."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from streamrec.events.codec import default_codec
from streamrec.events.model import DeadLetter
from streamrec.model import UserState, new_releases_key, trending_key
from streamrec.recommend.state import apply_event
from streamrec.store import open_store
from streamrec_cli.localflink import LocalFlink
from tests.fixtures.kafka import read_records
from tests.flink.helpers import (
    catalog,
    fresh_topics,
    send,
    send_catalog,
    send_events,
    start_job,
    stop_job,
    wait_for,
    workload,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]


def test_events_in_kafka_become_state_in_the_store(kafka_broker, flink_cluster: LocalFlink, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    events_become_state(kafka_broker, flink_cluster, tmp_path, extra=[])


def events_become_state(kafka_broker, flink_cluster: LocalFlink, tmp_path: Path, extra: list[str]) -> None:  # type: ignore[no-untyped-def]
    """The job over events, a catalog and a bad record: the store equals the state machine in a
    plain loop; also the lists, the dead letter and the top-picks refresh. (One job per cluster:
    PyFlink's thread mode loads its interpreter library once per TaskManager.)"""
    bootstrap, url = kafka_broker.bootstrap, f"sqlite:///{tmp_path / 'state.db'}"
    topics = fresh_topics(bootstrap)
    now = int(time.time() * 1000)
    items = catalog(20, now)
    events = workload(600, users=30, titles=20, seed=1, now_ms=now)
    send_catalog(bootstrap, topics["catalog"], items)
    send_events(bootstrap, topics["events"], events)
    send(bootstrap, topics["events"], [(b"bad", b"\x00garbage")])
    job_id = start_job(flink_cluster, bootstrap, url, topics, group=f"g-{topics['events']}",
                       extra=["--settle_s", "1", *extra])
    try:
        # The expected state: the state machine in a plain loop over the same events.
        expected: dict[str, UserState] = {}
        counts: Counter[str] = Counter()
        for e in sorted(events, key=lambda e: (e.timestamp, e.event_id)):
            update = apply_event(expected.get(e.user_id) or UserState(user_id=e.user_id), e)
            expected[e.user_id] = update.state
            counts.update(update.item_counts)

        def done() -> bool:
            store = open_store(url)
            try:
                users = store.get_users(list(expected))
                return len(users) == len(expected) and all(
                    sorted(users[u].recent_event_ids) == sorted(s.recent_event_ids) for u, s in expected.items()) \
                    and store.get_item_counts(list(counts)) == dict(counts)
            finally:
                store.close()

        took = wait_for(done, 150, "every event's effect in the store", flink_cluster, job_id)
        store = open_store(url)
        users = store.get_users(list(expected))
        for user_id, state in expected.items():
            assert [h.video_id for h in users[user_id].history] == [h.video_id for h in state.history]
            assert users[user_id].seen == state.seen and users[user_id].disliked == state.disliked
        assert store.get_item_counts(list(counts)) == dict(counts)
        wait_for(lambda: trending_key("1h", "global") in store.get_lists([trending_key("1h", "global")]), 30,
                 "trending", flink_cluster, job_id)
        lists = store.get_lists([new_releases_key("global"), new_releases_key("FR")])
        assert lists[new_releases_key("global")].items and lists[new_releases_key("FR")].items
        dead = read_records(bootstrap, topics["dlq"], expected=1, timeout_s=30)
        letter = default_codec().decode(dead[0].value or b"")
        assert isinstance(letter, DeadLetter) and letter.original == b"\x00garbage" and letter.reason
        # The nearline refresh: users whose taste changed get top picks (the feed's ranking), 1 s
        # after their last change here, written through the same held user writes.
        wait_for(lambda: sum(1 for u in store.get_users(list(expected)).values() if u.top_picks) >= len(expected) // 2,
                 60, "top picks of most users", flink_cluster, job_id)
        picked = next(u for u in store.get_users(list(expected)).values() if u.top_picks)
        assert picked.top_picks_at > 0 and not {p.video_id for p in picked.top_picks} & set(picked.seen)
        print(f"caught up {took:.1f}s after the job ran")
    finally:
        stop_job(flink_cluster, job_id)
