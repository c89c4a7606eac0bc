"""What the Flink tests share: topics of their own, events, the job on the local cluster, store snapshots."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import Producer

from streamrec.events.codec import default_codec
from streamrec.events.model import CatalogItem, EventType, UserEvent
from streamrec.model import trending_key
from streamrec.store import open_store
from streamrec_cli.localflink import LocalFlink
from tests.fixtures.pipeline_job import make_topics

REPO = Path(__file__).resolve().parents[2]
JOB = REPO / "pipelines" / "flink" / "job.py"


def fresh_topics(bootstrap: str, partitions: int = 3) -> dict[str, str]:
    """Events, catalog and DLQ topics no other test uses."""
    return make_topics(bootstrap, partitions, prefix="fl")


def send(bootstrap: str, topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Keyed raw records, flushed; returns how many."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 20})
    n = 0
    for key, value in values:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
    assert producer.flush(60) == 0
    return n


def send_events(bootstrap: str, topic: str, events: Iterable[UserEvent]) -> int:
    codec = default_codec()
    return send(bootstrap, topic, ((e.user_id.encode(), codec.encode(e)) for e in events))


def send_catalog(bootstrap: str, topic: str, items: Iterable[CatalogItem]) -> int:
    codec = default_codec()
    return send(bootstrap, topic, ((i.video_id.encode(), codec.encode(i)) for i in items))


def catalog(titles: int, now_ms: int) -> list[CatalogItem]:
    genres = ("Drama", "Comedy", "Action", "Horror")
    return [CatalogItem(video_id=f"v{t}", title=f"Title {t}", genres=(genres[t % 4], genres[(t + 1) % 4]),
                        regions=("FR",) if t % 10 == 0 else (), added_at=now_ms - t * 3_600_000)
            for t in range(titles)]


def workload(n: int, users: int, titles: int, seed: int, now_ms: int) -> list[UserEvent]:
    """``n`` events of ``users`` users over ``titles`` titles in the last ten minutes, in event-time
    order per user: plays, completes, ratings, likes, dislikes, list adds; a few duplicates (same id)."""
    rng = random.Random(seed)
    kinds = [EventType.PLAY] * 6 + [EventType.COMPLETE] * 2 + [EventType.RATE, EventType.LIKE, EventType.DISLIKE,
                                                                EventType.ADD_TO_LIST]
    regions = ("US", "FR", "DE")
    out: list[UserEvent] = []
    start = now_ms - 600_000
    for i in range(n):
        if out and rng.random() < 0.01:
            out.append(out[rng.randrange(len(out))])  # a client retry: the same event id again
            continue
        kind = rng.choice(kinds)
        user = f"u{rng.randrange(users)}"
        fields: dict[str, Any] = {}
        if kind in (EventType.PLAY, EventType.COMPLETE):
            fields = {"position_sec": float(rng.randrange(0, 3000)), "duration_sec": 3600.0}
        if kind is EventType.RATE:
            fields = {"rating": rng.choice((1.0, 2.0, 3.5, 4.0, 5.0))}
        out.append(UserEvent(event_id=f"e{seed}-{i}", event_type=kind, user_id=user,
                             timestamp=start + i * 600_000 // n, video_id=f"v{rng.randrange(titles)}",
                             region=regions[int(user[1:]) % 3], **fields))
    return out


def start_job(cluster: LocalFlink, bootstrap: str, store_url: str, topics: dict[str, str], group: str,
              extra: Sequence[str] = ()) -> str:
    job_id = cluster.submit(JOB, "--bootstrap", bootstrap, "--store", store_url, "--events_topic", topics["events"],
                            "--catalog_topic", topics["catalog"], "--dlq_topic", topics["dlq"],
                            "--impressions_topic", topics.get("impressions", ""), "--group", group, "--rest", cluster.url,
                            *extra)
    cluster.wait_for_running_tasks(job_id, 180)
    return job_id


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str, cluster: LocalFlink,
             job_id: str | None = None, every_s: float = 0.25) -> float:
    """Seconds until ``condition()``; fails with the cluster's log if the job fails or time runs out."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        if job_id is not None:
            state = cluster.job(job_id).get("state")
            if state in ("FAILED", "CANCELED", "FINISHED"):
                pytest.fail(f"the job is {state}:\n{cluster.rest(f'/jobs/{job_id}/exceptions')}\n{cluster.tail_log()}")
        with contextlib.suppress(Exception):  # the store file may not exist yet
            if condition():
                return time.monotonic() - began
        time.sleep(every_s)
    pytest.fail(f"{what} not seen within {timeout_s:.0f}s:\n{cluster.tail_log()}")


def snapshot(store_url: str, users: Iterable[str], titles: Iterable[str],
             regions: Sequence[str] = ("US", "FR", "DE", "global")) -> dict[str, Any]:
    """What both engines must agree on: per user the state the events made (history, seen,
    disliked, my list, continue watching, the event ids applied), per title its count, co-watch row
    and raw vector (rounded), and the trending lists' items."""
    store = open_store(store_url)
    try:
        user_ids, title_ids = list(users), list(titles)
        states = store.get_users(user_ids)
        vectors = store.get_item_vectors(title_ids)
        lists = store.get_lists([trending_key(w, r) for w in ("1h", "24h") for r in regions])
        return {
            "users": {u: {"history": [(h.video_id, h.ts, h.weight) for h in s.history], "seen": s.seen,
                          "disliked": s.disliked, "my_list": s.my_list,
                          "in_progress": sorted((p.video_id, p.position_sec, p.updated_at) for p in s.in_progress.values()),
                          "event_ids": sorted(s.recent_event_ids), "updated_at": s.updated_at}
                      for u, s in states.items()},
            "counts": store.get_item_counts(title_ids),
            "cowatch": {v: sorted(n) for v, n in store.get_neighbours(title_ids, 1000).items()},
            "vectors": {v: np.asarray(vec, dtype=np.float64) for v, vec in vectors.items()},
            "trending": {k: [(s.video_id, s.score) for s in r.items] for k, r in lists.items()},
        }
    finally:
        store.close()


def same_vectors(got: dict[str, Any], expected: dict[str, Any], rtol: float = 1e-4) -> bool:
    """Raw item vectors equal up to float32 summation order (the engines add the same terms in
    different batches)."""
    return got.keys() == expected.keys() and all(
        np.allclose(got[v], expected[v], rtol=rtol, atol=rtol * float(np.abs(expected[v]).max())) for v in expected)


def stop_job(cluster: LocalFlink, job_id: str) -> None:
    cluster.cancel(job_id)
    with contextlib.suppress(Exception):  # the cluster is stopped at the module's end anyway
        cluster.wait_for_state(job_id, {"CANCELED", "FAILED", "FINISHED"}, 60)
