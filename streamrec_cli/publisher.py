"""Publishing a dataset into Kafka: the catalog once, then ratings as a paced live stream.

The live replay sends each rating's viewing session (``streamrec.ratings.session_events``) at the
wall-clock time it is replayed, so event time is "now" and the pipeline's windows, trending and
lag all behave as in production. The pace is a target in events per second; the log's own gaps
are compressed away, its order kept.

While it runs it keeps ``stats.json`` in the demo folder up to date (events/s, last event time,
pipeline lag measured by watching the store) for the page's live panel.

With :class:`FeedVisits`, a sample of the replayed viewers open their home page (``GET
/v1/users/{id}/feed`` on the real service, which publishes the impressions of its rows) just
before their session is sent: a replayed watch of a title the page showed is then a play credited
to that impression, so the experiment's live numbers (``docs/experiments.md``) mean something.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from streamrec.config import TOPIC_CATALOG, TOPIC_EVENTS
from streamrec.events.codec import default_codec
from streamrec.events.model import CatalogItem, UserEvent
from streamrec.kafka import EventProducer
from streamrec.ratings import (
    ADDED_BEFORE_FIRST_MS,
    DEFAULT_POLICY,
    REGIONS,
    Rating,
    SessionPolicy,
    region_for,
    session_events,
)
from streamrec.store.base import Store

TICK_S = 0.1  # the replay sends what is due every tick: small batches, steady pace
MIN_SESSION_MS = 10  # a squeezed session still spans this much, so its events keep their order


def publish_catalog(bootstrap: str, items: Iterable[CatalogItem]) -> int:
    """Every item on the compacted catalog topic (key: video_id); returns how many."""
    with EventProducer(bootstrap, client_id="streamrec-demo-catalog", linger_ms=20) as producer:
        return send_catalog(producer, items)


def send_catalog(producer: EventProducer, items: Iterable[CatalogItem]) -> int:
    codec = default_codec()
    return producer.send_many_blocking(TOPIC_CATALOG, ((item.video_id, codec.encode(item)) for item in items))


def publish_events(producer: EventProducer, events: Sequence[UserEvent]) -> int:
    codec = default_codec()
    return producer.send_many_blocking(TOPIC_EVENTS, [(e.user_id, codec.encode(e)) for e in events])


@dataclass
class ReplayStats:
    """What the page's live panel shows; written as JSON to ``stats.json``."""

    replay_total: int = 0  # sessions (ratings) in the live part
    replayed_sessions: int = 0
    replayed_events: int = 0
    released_titles: int = 0  # catalog records published as new releases during the replay
    events_per_s: float = 0.0
    last_event_ms: int | None = None
    pipeline_lag_ms: float | None = None  # event sent -> its effect readable in the store
    target_events_per_s: float = 0.0
    running: bool = True
    regions: tuple[str, ...] = REGIONS
    updated_at_ms: int = 0
    feed_visits: int = 0  # home pages opened before a session (their impressions feed the experiment)
    feed_visit_errors: int = 0


class LagProbe:
    """Measures pipeline lag for real: remembers the newest event sent for one user and polls the
    store until that user's ``updated_at`` reaches the event's time."""

    def __init__(self, store: Store, stats: ReplayStats, poll_s: float = 0.05) -> None:
        self._store = store
        self._stats = stats
        self._poll_s = poll_s
        self._latest: tuple[str, int, float] | None = None  # user, event ts ms, sent at (monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def start(self) -> LagProbe:
        self._thread.start()
        return self

    def sent(self, event: UserEvent) -> None:
        with self._lock:
            self._latest = (event.user_id, event.timestamp, time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                probe, self._latest = self._latest, None
            if probe is None:
                self._stop.wait(self._poll_s)
                continue
            user_id, ts, sent_at = probe
            while not self._stop.is_set():
                try:
                    user = self._store.get_user(user_id)
                except Exception:  # noqa: BLE001 - a busy store only delays the measurement
                    user = None
                if user is not None and user.updated_at >= ts:
                    self._stats.pipeline_lag_ms = (time.monotonic() - sent_at) * 1000.0
                    break
                if time.monotonic() - sent_at > 60:
                    self._stats.pipeline_lag_ms = None  # not seen in a minute: say we do not know
                    break
                self._stop.wait(self._poll_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def write_stats(path: Path, stats: ReplayStats) -> None:
    stats.updated_at_ms = int(time.time() * 1000)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(stats)))
    os.replace(tmp, path)  # readers never see half a file


class FeedVisits:
    """A sample of replayed viewers open their home page before their session (see the module
    docstring). At most ``per_tick`` visits per replay tick, so the replay keeps its pace."""

    def __init__(self, base_url: str, token: str, share: float = 0.25, per_tick: int = 3,
                 timeout_s: float = 2.0) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share: must be in [0, 1], got {share}")
        self.base_url, self.token, self.share = base_url.rstrip("/"), token, share
        self.per_tick, self.timeout_s = per_tick, timeout_s
        self.left = per_tick

    def tick(self) -> None:
        self.left = self.per_tick

    def wanted(self, rating: Rating) -> bool:
        digest = hashlib.blake2b(f"{rating.user_id}:{rating.video_id}".encode(), digest_size=8).digest()
        return self.left > 0 and int.from_bytes(digest, "big") / 2.0**64 < self.share

    def visit(self, user_id: str, stats: ReplayStats) -> None:
        """Open ``user_id``'s home page (the service publishes its impressions)."""
        self.left -= 1
        viewer = urllib.parse.quote(user_id, safe="")
        url = f"{self.base_url}/v1/users/{viewer}/feed?region={region_for(user_id)}"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
            stats.feed_visits += 1
        except (urllib.error.URLError, OSError):
            stats.feed_visit_errors += 1  # the session is sent all the same


class _Sessions:
    """Ratings -> the sessions sent now: a session ends now, so every event time is in the past, as
    a player would report it; a viewer's sessions never overlap (one that rated many titles at once,
    as rating logs come in bursts, gets them one after the other, squeezed into the time up to now).
    Also says which titles the log releases here (their first rating)."""

    def __init__(self, ratings: Sequence[Rating], start: int, durations: dict[str, float],
                 policy: SessionPolicy, releases: Mapping[str, CatalogItem] | None) -> None:
        self.ratings, self.durations, self.policy = ratings, durations, policy
        self.releases = releases or {}
        self.last_end: dict[str, int] = {}  # user -> time of their last replayed event
        self.first_index: dict[str, int] = {}  # release -> index of its first rating (a resume skips the past)
        for i in range(len(ratings) - 1, start - 1, -1):
            if ratings[i].video_id in self.releases:
                self.first_index[ratings[i].video_id] = i

    def session(self, index: int, now_ms: int) -> tuple[list[UserEvent], CatalogItem | None]:
        rating, policy = self.ratings[index], self.policy
        start_ms = max(now_ms - policy.session_ms, self.last_end.get(rating.user_id, 0) + 1)
        span = max(min(policy.session_ms, now_ms - start_ms), MIN_SESSION_MS)
        events = session_events(rating, start_ms=start_ms, duration_sec=self.durations.get(rating.video_id),
                                policy=dataclasses.replace(policy, session_ms=span))
        self.last_end[rating.user_id] = events[-1].timestamp
        released = None
        if self.first_index.get(rating.video_id) == index:
            released = dataclasses.replace(self.releases[rating.video_id], added_at=start_ms - ADDED_BEFORE_FIRST_MS)
        return events, released


class _RollingRate:
    """Events per second over the last ``span_s`` (the page's live counter)."""

    def __init__(self, began: float, span_s: float = 5.0) -> None:
        self.began, self.span_s = began, span_s
        self.window: deque[tuple[float, int]] = deque()  # (monotonic, events)

    def add(self, events: int) -> None:
        self.window.append((time.monotonic(), events))

    def per_s(self) -> float:
        moment = time.monotonic()
        while self.window and moment - self.window[0][0] > self.span_s:
            self.window.popleft()
        return sum(n for _, n in self.window) / max(min(self.span_s, moment - self.began), TICK_S)


def replay_live(
    producer: EventProducer,
    ratings: Sequence[Rating],
    *,
    start: int,
    events_per_s: float,
    stats: ReplayStats,
    stats_path: Path,
    durations: dict[str, float],
    policy: SessionPolicy = DEFAULT_POLICY,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    probe: LagProbe | None = None,
    releases: Mapping[str, CatalogItem] | None = None,
    visits: FeedVisits | None = None,
) -> int:
    """Send ``ratings[start:]`` as sessions at ``events_per_s``; returns the index reached.

    ``releases``: titles that go live during the replay (the log rates them first here). Each one's
    catalog record is published again, with ``added_at`` now, just before its first session: a
    new release enters the catalog and is watched within seconds, as on a platform.
    ``on_progress(sessions, events)`` is called after every tick (the progress bar);
    ``should_stop`` is checked every tick (Ctrl-C, demo-stop). ``visits``: a sample of the viewers
    open their home page before their session (:class:`FeedVisits`).
    """
    if events_per_s <= 0:
        raise ValueError(f"events_per_s: must be > 0, got {events_per_s}")
    stats.target_events_per_s = events_per_s
    began = time.monotonic()
    sessions, rate = _Sessions(ratings, start, durations, policy, releases), _RollingRate(began)
    sent_events, index, next_stats = 0, start, 0.0
    while index < len(ratings) and not should_stop():
        # Send what is due by the end of this tick, then sleep the rest of it.
        due = (time.monotonic() - began + TICK_S) * events_per_s - sent_events
        batch: list[UserEvent] = []
        released: list[CatalogItem] = []
        first, now_ms = index, int(time.time() * 1000)
        if visits is not None:
            visits.tick()
        while len(batch) < due and index < len(ratings):
            if visits is not None and visits.wanted(ratings[index]):
                visits.visit(ratings[index].user_id, stats)
            events, release = sessions.session(index, now_ms)
            batch += events
            released += [release] if release is not None else []
            index += 1
        if released:
            stats.released_titles += send_catalog(producer, released)
        if batch:
            publish_events(producer, batch)
            sent_events += len(batch)
            stats.replayed_sessions += index - first
            stats.replayed_events += len(batch)
            stats.last_event_ms = max(e.timestamp for e in batch)
            if probe is not None:
                probe.sent(batch[-1])
            rate.add(len(batch))
            if on_progress is not None:
                on_progress(index - first, len(batch))
        if time.monotonic() >= next_stats:
            stats.events_per_s = rate.per_s()
            write_stats(stats_path, stats)
            next_stats = time.monotonic() + 0.5
        time.sleep(max(0.0, began + sent_events / events_per_s - TICK_S - time.monotonic()) or TICK_S / 4)
    stats.events_per_s = 0.0
    write_stats(stats_path, stats)
    return index
