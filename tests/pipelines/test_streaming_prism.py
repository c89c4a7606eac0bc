"""The job reading the real Kafka broker: streaming on Prism, and bounded (--stop_at_end) on the DirectRunner.

Produces events to Kafka, starts ``python -m pipelines.main`` as its own process group, and waits
(bounded) for the state in the SQLite store. Then it kills the job outright (SIGKILL, no drain),
produces more events together with re-sent copies of old ones (same event ids), restarts the job
from the offsets it committed (only ever those whose effects were stored) and checks that nothing
was counted twice. The crash mid-replay of 20k events is in tests/faults/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streamrec.events.codec import default_codec
from streamrec.events.model import DeadLetter, UserEvent
from streamrec.events.model import EventType as K
from streamrec.kafka import read_records
from streamrec.store import Store, open_store
from tests.pipelines.helpers import event

REPO = Path(__file__).resolve().parents[2]
PRISM = REPO / "var" / "prism" / "bin" / "prism"
pytestmark = [pytest.mark.kafka, pytest.mark.streaming_runner, pytest.mark.timeout(240)]


@pytest.fixture
def topics(kafka_broker) -> dict[str, str]:  # type: ignore[no-untyped-def]
    suffix = uuid.uuid4().hex[:8]
    names = {"events": f"it.events.{suffix}", "catalog": f"it.catalog.{suffix}", "dlq": f"it.dlq.{suffix}"}
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    for future in admin.create_topics([NewTopic(t, 2, 1) for t in names.values()]).values():
        future.result(30)
    return names


def _job(bootstrap: str, url: str, topics: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    if not PRISM.exists():
        pytest.fail(f"Prism runner missing at {PRISM}: run `make prism`", pytrace=False)
    cmd = [sys.executable, "-m", "pipelines.main", "--bootstrap", bootstrap, "--store", url,
           "--events_topic", topics["events"], "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"],
           "--group", f"it-{topics['events']}", "--settle_s", "1",
           "--runner", "PrismRunner", "--prism_location", str(PRISM), "--environment_type", "LOOPBACK"]
    with open(log, "ab") as out:
        # Its own process group: the kill below takes Prism and the SDK worker with it.
        return subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _kill(job: subprocess.Popen[bytes]) -> None:
    if job.poll() is None:
        os.killpg(job.pid, signal.SIGKILL)
    job.wait(30)


@pytest.fixture
def jobs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for job in started:
        _kill(job)


def _produce(bootstrap: str, topic: str, events: list[UserEvent], extra: list[bytes] = ()) -> None:  # type: ignore[assignment]
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    codec = default_codec()
    for e in events:
        producer.produce(topic, key=e.user_id, value=codec.encode(e), timestamp=e.timestamp)
    for raw in extra:
        producer.produce(topic, key=b"bad", value=raw)
    assert producer.flush(30) == 0


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str, job: subprocess.Popen[bytes], log: Path) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if job.poll() is not None:
            pytest.fail(f"the job exited with {job.returncode}:\n{log.read_text()[-3000:]}")
        if condition():
            return time.monotonic() - began
        time.sleep(0.2)
    pytest.fail(f"{what} not seen within {timeout_s}s:\n{log.read_text()[-3000:]}")


def test_events_in_kafka_become_state_in_the_store_and_a_crash_replay_counts_nothing_twice(
        kafka_broker, topics: dict[str, str], jobs: list, tmp_path: Path) -> None:  # type: ignore[no-untyped-def,type-arg]
    bootstrap, url, log = kafka_broker.bootstrap, f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "job.log"
    now = int(time.time() * 1000)
    first = [event(K.PLAY, f"u{u}", f"v{v}", now + 10 * v, region="US", position_sec=0.0)
             for u in range(5) for v in range(3)]
    _produce(bootstrap, topics["events"], first, extra=[b"\x00garbage"])
    jobs.append(_job(bootstrap, url, topics, log))
    store: Store | None = None  # opened once the job has created the file

    def applied(users: int, per_user: int) -> bool:
        nonlocal store
        if store is None:
            if not (tmp_path / "state.db").exists():
                return False
            store = open_store(url)
        states = store.get_users([f"u{u}" for u in range(users)])
        return len(states) == users and all(len(s.history) >= per_user for s in states.values())

    _wait_for(lambda: applied(5, 3), 90, "the first events' state", jobs[-1], log)
    assert store is not None
    assert store.get_item_counts(["v0", "v1", "v2"]) == {"v0": 5, "v1": 5, "v2": 5}
    dead = read_records(bootstrap, topics["dlq"], expected=1, timeout_s=30)
    letter = default_codec().decode(dead[0].value)
    assert isinstance(letter, DeadLetter) and letter.original == b"\x00garbage" and letter.reason

    # A live event's effect is readable within a bound once the job runs.
    live = event(K.PLAY, "u0", "v9", int(time.time() * 1000), position_sec=0.0)
    _produce(bootstrap, topics["events"], [live])
    took = _wait_for(lambda: "v9" in {h.video_id for h in store.get_user("u0").history}, 10, "a live event", jobs[-1], log)
    assert took < 10
    # Live watches reach the trending lists while their windows are still open (early panes).
    from streamrec.store.base import trending_key
    _wait_for(lambda: any(s.video_id == "v9" for r in store.get_lists([trending_key("1h", "global")]).values()
                          for s in r.items), 30, "the live watch in trending:1h:global", jobs[-1], log)
    us = store.get_lists([trending_key("1h", "US")])[trending_key("1h", "US")]
    assert us.window_end is not None and us.window_end > int(time.time() * 1000)  # a window still open

    # Crash: no drain. Re-send old events (same ids) and new ones.
    _kill(jobs[-1])
    later = [event(K.COMPLETE, f"u{u}", "v1", now + 1000, position_sec=3600.0) for u in range(5)]
    _produce(bootstrap, topics["events"], first[:5] + later)
    jobs.append(_job(bootstrap, url, topics, log))
    _wait_for(lambda: all("v1" not in s.in_progress for s in store.get_users([f"u{u}" for u in range(5)]).values()),
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
    _produce(kafka_broker.bootstrap, topics["events"], events, extra=[b"not avro"])
    url = f"sqlite:///{tmp_path / 'state.db'}"
    run(["--bootstrap", kafka_broker.bootstrap, "--store", url, "--events_topic", topics["events"],
         "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"], "--group", f"b-{topics['events']}",
         "--stop_at_end", "--runner", "DirectRunner"])
    store = open_store(url)
    assert store.get_item_counts(["t0", "t1"]) == {"t0": 3, "t1": 3}
    assert {u: len(s.history) for u, s in store.get_users(["b0", "b1", "b2"]).items()} == {"b0": 2, "b1": 2, "b2": 2}
    assert len(read_records(kafka_broker.bootstrap, topics["dlq"], expected=1, timeout_s=20)) == 1
