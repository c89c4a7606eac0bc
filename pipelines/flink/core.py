"""What the Flink job's functions do, without Flink: thin adapters over the core's rules.

The Flink functions (:mod:`pipelines.flink.functions`) only keep these objects in keyed state and
call them; the rules are :mod:`streamrec.recommend`'s (``apply_event``, ``item_vector_increments``,
``top_n``/``top_per_genre``, ``ReleasePool``) and every write goes through the store contract.
Nothing here imports PyFlink, so it runs (and is unit-tested) in the project's virtualenv too.

This module holds what every adapter shares: held writes (:class:`CheckpointWatch`,
:class:`Pending`), dead letters, the types the functions keep in keyed state (:class:`ItemTotal`,
:class:`RegionLists`, :class:`RefreshPlan`: Flink's state pickles them by module path, so they stay
here and checkpoints taken before a move still restore) and the nearline top-picks rules. The
adapters themselves: :mod:`pipelines.flink.users` (the per-user state machine over a batch),
:mod:`pipelines.flink.items` (catalog upserts, co-watch counts, item counts, item vectors),
:mod:`pipelines.flink.lists` (trending, genre rows, new releases).

**Exactly once on Flink: state and offsets move together, store writes follow completed checkpoints.**
Flink's checkpoint holds the keyed state and the Kafka offsets of one consistent cut (the Kafka
source also commits those offsets to the consumer group when the checkpoint *completes*). PyFlink
gives Python functions no checkpoint hook, so the functions ask the JobManager
(:class:`CheckpointWatch`): a write is held (:class:`Pending`, itself in keyed state) until a
checkpoint triggered after the write was made has completed, i.e. until a completed checkpoint
contains the state change that made it. (The consumer group's committed offsets are not enough:
records waiting in the batching window at a barrier are before the committed offset, yet their
effects are in the *next* checkpoint.) Hence:

- the store never holds an effect of an event after the last completed checkpoint, so after a
  crash (restore from that checkpoint, replay from its offsets) nothing in the store was made by
  the replayed events, and a key this job has never written (absent from keyed state) can be
  read from the store as its starting value;
- held writes are in the checkpoint: after a restore they are written (again); every write is
  idempotent: user states, item vectors and lists are replaced by value; co-watch and item counts
  (the contract only adds) are written as ``target - stored`` where ``target`` is the total the
  keyed state holds (:class:`ItemTotals`), so writing twice adds nothing.

Ranked lists (trending, genre rows, new releases) are replaced by value from the window state and
are written at once (a replay recomputes the same lists; the newest window wins), and the catalog
is upserted at once (replacement). Dead letters go to the DLQ topic at once (at least once).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from streamrec.events.codec import default_codec
from streamrec.events.model import DeadLetter
from streamrec.model import ScoredItem, UserState
from streamrec.recommend.releases import ReleasePool
from streamrec.recommend.state import bound_state
from streamrec.store import StoreUnavailable
from streamrec.store.retry import RetryingStore

#: A Kafka record as the job's SQL source hands it over: (offset, key, value).
Record = tuple[int, bytes | None, bytes | None]
Pairs = dict[tuple[str, str], int]


def add_counts(total: dict[Any, int], more: Mapping[Any, int]) -> dict[Any, int]:
    for key, n in more.items():
        total[key] = total.get(key, 0) + n
    return total


class StoreUser(RetryingStore):
    """Opens the store on first use; every call retried with backoff while it is unavailable
    (:class:`streamrec.store.retry.RetryingStore`, what the Beam DoFns hold)."""

    def __init__(self, store_url: str) -> None:
        super().__init__(store_url, type(self).__name__)


class CheckpointWatch:
    """The job's newest completed checkpoint as the JobManager's REST API reports it, by the time
    it was *triggered*. A write made before that time is in that checkpoint: its barriers were
    injected at the sources after the trigger, so they reached the function after the write's
    input. Polled at most every ``min_interval_s``; a cached (older) answer only delays a release.
    ``clock_margin_ms`` covers clock skew between a TaskManager and the JobManager (the same
    clock locally; NTP-synchronised nodes in production)."""

    def __init__(self, rest_url: str, job_name: str, min_interval_s: float = 0.05, clock_margin_ms: int = 50) -> None:
        self.rest_url, self.job_name, self.min_interval_s = rest_url.rstrip("/"), job_name, min_interval_s
        self.clock_margin_ms = clock_margin_ms
        self.completed_trigger_ms = 0  # trigger time (epoch ms) of the newest completed checkpoint
        self._job_id: str | None = None
        self._polled_at = 0.0

    def _get(self, path: str) -> Any:
        import json
        import urllib.request

        with urllib.request.urlopen(self.rest_url + path, timeout=5) as response:
            return json.loads(response.read())

    def poll(self) -> None:
        """Refresh if due."""
        if time.monotonic() - self._polled_at < self.min_interval_s:
            return
        try:
            if self._job_id is None:
                jobs = self._get("/jobs/overview")["jobs"]
                running = [j for j in jobs if j["name"] == self.job_name and j["state"] not in ("FAILED", "CANCELED", "FINISHED")]
                if not running:
                    return
                self._job_id = running[0]["jid"]
            stats = self._get(f"/jobs/{self._job_id}/checkpoints")
        except (OSError, ValueError, KeyError):
            self._job_id = None
            return
        self._polled_at = time.monotonic()
        completed = (stats.get("latest") or {}).get("completed") or {}
        self.completed_trigger_ms = max(self.completed_trigger_ms, int(completed.get("trigger_timestamp") or 0))

    def covers(self, made_at_ms: int) -> bool:
        """A completed checkpoint contains what was done at ``made_at_ms`` (wall clock)."""
        return made_at_ms + self.clock_margin_ms < self.completed_trigger_ms

    def close(self) -> None:
        pass


@dataclass
class Pending:
    """Writes held until a completed checkpoint contains the state change that made them (kept in
    keyed state, so a restore holds them again)."""

    groups: list[tuple[int, Any]] = field(default_factory=list)  # (made at: epoch ms, payload)

    def add(self, payload: Any) -> None:
        self.groups.append((int(time.time() * 1000), payload))

    def pop_ready(self, watch: CheckpointWatch) -> list[Any]:
        """The released payloads, in arrival order."""
        if not self.groups:
            return []
        watch.poll()
        ready = [payload for made_at, payload in self.groups if watch.covers(made_at)]
        self.groups = [(made_at, payload) for made_at, payload in self.groups if not watch.covers(made_at)]
        return ready


# -- dead letters -----------------------------------------------------------------------------
def dead_letter(original: bytes | None, key: bytes | None, topic: str, partition: int, offset: int,
                exc: Exception, stage: str) -> DeadLetter:
    """A record the job cannot use, with the field at fault when the error names one."""
    text = str(exc)
    field_name, _, reason = text.partition(": ") if ": " in text else (None, "", text)
    return DeadLetter(original=original or b"", original_key=key, topic=topic, partition=partition, offset=offset,
                      reason=f"{type(exc).__name__}: {reason}", field=field_name,
                      failed_at=int(time.time() * 1000), stage=stage)



class DeadLetterProducer:
    """Dead letters to the DLQ topic (Avro, keyed as the original), flushed after every batch."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self._producer: Any = None
        self.codec = default_codec()

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        from confluent_kafka import Producer

        if self._producer is None:
            self._producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True,
                                       "log_level": 3})
        for letter in letters:
            self._producer.produce(self.topic, key=letter.original_key, value=self.codec.encode(letter))
        if self._producer.flush(30) > 0:
            raise StoreUnavailable(f"dead letters not acknowledged by {self.bootstrap} within 30 s")


# -- what the functions keep in keyed state (pickled by module path: they stay in this module) --------
@dataclass
class ItemTotal:
    """One title's totals as this job has written them (or will, once held writes are released):
    its watch count, its co-watch counts per neighbour (uncut: the store keeps the top K) and its
    raw vector (``basis + sum count * basis(neighbour)``, :mod:`streamrec.recommend.vectors`)."""

    count: int
    neighbours: dict[str, int]
    vector: np.ndarray


@dataclass
class RegionLists:
    """One region's (or ``global``'s) watch counts per 5-minute bucket and its new-releases pool."""

    buckets: dict[int, dict[str, int]] = field(default_factory=dict)
    newest_ms: int | None = None
    pool: ReleasePool | None = None


# -- nearline top picks --------------------------------------------------------------------------------------
def idle_users(users: Iterable[tuple[str, int]], clock_ms: int, idle_ms: int, held: Iterable[str],
               waiting: Iterable[str]) -> list[str]:
    """The users a partition's keyed state can let go (the Beam pipeline's ``expire_idle`` rule):
    their newest event is more than ``idle_ms`` before the partition's clock (the newest event it
    applied), none of their writes is still held (so the store has their last state, and a later
    event reloads exactly it) and no top-picks refresh waits for them. ``users``: (id, updated_at)."""
    keep = set(held) | set(waiting)
    return [user_id for user_id, updated_at in users if user_id not in keep and updated_at < clock_ms - idle_ms]


@dataclass
class RefreshPlan:
    """Users whose taste changed, waiting for their top-picks refresh: one recompute ``settle_ms``
    after the user's last change (processing time), never later than ``max_delay_ms`` after the
    first one, so a burst costs one recompute and a busy user still gets one (the Beam pipeline's
    rule, on the processing-time clock). ``waiting``: user -> (first change's event time, due, deadline)."""

    waiting: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def changed(self, changes: Mapping[str, int], now_ms: int, settle_ms: int, max_delay_ms: int) -> None:
        for user_id, first_ts in changes.items():
            first, _, deadline = self.waiting.get(user_id, (first_ts, 0, now_ms + max_delay_ms))
            self.waiting[user_id] = (first, min(now_ms + settle_ms, deadline), deadline)

    def due(self, now_ms: int) -> dict[str, int]:
        """The users due now (removed from the plan) -> their first change's event time."""
        ready = {u: first for u, (first, due, _) in self.waiting.items() if due <= now_ms}
        for user_id in ready:
            del self.waiting[user_id]
        return ready


def refreshed(state: UserState, picks: list[ScoredItem], first_change_ts: int, settle_ms: int,
              max_delay_ms: int) -> UserState:
    """The state with fresh top picks, stamped with the event time the refresh was due at."""
    due = min(state.updated_at + settle_ms, first_change_ts + max_delay_ms)
    return bound_state(dataclasses.replace(state, top_picks=picks, top_picks_at=due), ["top_picks"])
