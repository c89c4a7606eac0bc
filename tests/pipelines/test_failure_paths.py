"""Issue 11 on the pipeline side, on the DirectRunner with the real SQLite store: a record the
store refuses is a dead letter (never a failed batch), a refused event is a replayable dead
letter, a store that is down for a while is waited for, and offsets are acknowledged only after
the write that stored their effect."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines.main import TAG_ACKS, MaintainState
from pipelines.offsets import Ack, OffsetLedger, Sourced, acks_for
from pipelines.sinks import WriteUserUpdates
from streamrec.events.codec import default_codec
from streamrec.events.model import DeadLetter
from streamrec.events.model import EventType as K
from streamrec.model import UserState
from streamrec.store import open_store
from tests.pipelines.helpers import T0, batch_options, event, store_url

pytestmark = pytest.mark.pipeline
TOPIC = "streamrec.events.v1"


def _sourced(events: list, partition: int = 0, first_offset: int = 0) -> list[Sourced]:
    return [Sourced(e, TOPIC, partition, first_offset + i) for i, e in enumerate(events)]


def test_a_record_the_store_refuses_is_a_dead_letter_and_the_rest_of_the_batch_is_written(tmp_path: Path) -> None:
    from pipelines.sinks import UserWrite

    url = store_url(tmp_path)
    huge = UserState("huge", seen=[os.urandom(600).hex() for _ in range(2000)])  # ~1.3 MB zlib-compressed
    writes = [UserWrite(UserState(f"u{i}", seen=["v1"]), {}, {"v1": 1}, ((TOPIC, 0, i),)) for i in range(5)]
    writes.insert(2, UserWrite(huge, {("v1", "v2"): 1, ("v2", "v1"): 1}, {"v2": 1}, ((TOPIC, 0, 5),)))
    with beam.Pipeline(options=batch_options()) as pipeline:
        out = (pipeline | beam.Create(writes)
               | beam.ParDo(WriteUserUpdates(url, batch_size=500)).with_outputs("increments", main="results"))
        dead = out.results | "dead" >> beam.Filter(lambda x: isinstance(x, DeadLetter))
        assert_that(dead | beam.Map(lambda d: (d.original_key, d.stage, "RecordTooBig" in d.reason)),
                    equal_to([(b"huge", "write_users", True)]), label="dead")
        acks = out.results | "acks" >> beam.Filter(lambda x: isinstance(x, Ack))
        assert_that(acks | beam.FlatMap(lambda a: a.offsets), equal_to(list(range(6))), label="acks")
    store = open_store(url)
    assert set(store.get_users([f"u{i}" for i in range(5)] + ["huge"])) == {f"u{i}" for i in range(5)}
    # The refused user's counters went with it; the others' are there.
    assert store.get_item_counts(["v1", "v2"]) == {"v1": 5}


def test_an_event_the_state_machine_refuses_is_a_replayable_dead_letter(tmp_path: Path) -> None:
    good = event(K.PLAY, "u1", "v1", T0)
    bad = event(K.RATE, "u1", "v2", T0 + 1000, rating=None)  # a rating event without a rating
    sourced = _sourced([good, bad], partition=1, first_offset=40)
    with beam.Pipeline(options=batch_options()) as pipeline:
        out = pipeline | beam.Create(sourced) | MaintainState(store_url(tmp_path), early_s=0.0, bounded=True)
        assert_that(out["rejected"] | beam.Map(
            lambda d: (default_codec().decode(d.original) == bad, d.topic, d.partition, d.offset, d.field,
                       d.original_key, "rating" in d.reason, d.stage)),
            equal_to([(True, TOPIC, 1, 41, "rating", b"u1", True, "update_user_state")]), label="rejected")
        # The good event's offset is acknowledged by the user sink (the refused one by the DLQ writer).
        assert_that(out[TAG_ACKS] | beam.FlatMap(lambda a: [(a.partition, o) for o in a.offsets]),
                    equal_to([(1, 40)]), label="acks")


def test_a_store_locked_for_longer_than_its_busy_timeout_is_waited_for(tmp_path: Path) -> None:
    # SQLite's write lock held by another process-like connection for ~7 s: each write attempt
    # waits the store's 5 s busy timeout and fails with StoreUnavailable; the sink backs off and
    # retries, and the batch is written once the lock goes. Before the retry, the job failed.
    url = store_url(tmp_path)
    open_store(url).close()  # the schema exists
    locker = sqlite3.connect(tmp_path / "state.db", isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(7.0, lambda: locker.execute("ROLLBACK"))
    release.start()
    began = time.monotonic()
    try:
        events = [event(K.PLAY, f"u{i}", "v1", T0 + i) for i in range(3)]
        with beam.Pipeline(options=batch_options()) as pipeline:
            _ = pipeline | beam.Create(_sourced(events)) | MaintainState(url, early_s=0.0, bounded=True)
    finally:
        release.join()
        locker.close()
    assert time.monotonic() - began >= 7.0
    store = open_store(url)
    assert set(store.get_users(["u0", "u1", "u2"])) == {"u0", "u1", "u2"}
    assert store.get_item_counts(["v1"]) == {"v1": 3}


def test_the_ledger_commits_only_a_contiguous_acknowledged_prefix() -> None:
    ledger = OffsetLedger(100)
    assert ledger.ack([102, 103]) == 100 and ledger.stuck  # 100 and 101 still in flight
    assert ledger.ack([100]) == 101
    assert ledger.ack([101]) == 104 and not ledger.stuck
    assert ledger.ack([99, 50]) == 104  # below the base: already committed
    # A hole (compaction, transaction markers): the broker says the first record from 104 is 111.
    ledger.ack([111, 112])
    assert ledger.stuck and ledger.skip_hole(111) == 113 and not ledger.stuck
    assert OffsetLedger(5).skip_hole(3) == 5  # the broker cannot move it back
    # Two copies of one partition's ledger (two bundles of one key at once, seen on Prism): merged,
    # nothing either acknowledged is lost.
    a, b = OffsetLedger(10), OffsetLedger(10)
    a.ack([10, 11, 13])
    b.ack([12, 14])
    assert a.merge(b) == 15 and not a.stuck
    restored = OffsetLedger(0)
    restored.__setstate__(OffsetLedger(7, [9]).__getstate__())
    assert (restored.base, restored.pending) == (7, {9})


def test_positions_become_one_ack_per_partition() -> None:
    assert acks_for([("t", 1, 5), ("t", 0, 3), ("t", 1, 4), ("t", 0, -1)]) == [Ack("t", 0, (3,)), Ack("t", 1, (4, 5))]
