"""Idle users leave the Flink job's keyed state (the Beam job's expiry): with every released user
evicted at every batch, later events reload it from the store and the store still equals the
state machine's answer. A module of its own: one job per local cluster (thread mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamrec_cli.localflink import LocalFlink
from tests.flink.test_flink_job import events_become_state

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]


def test_idle_users_evicted_at_once_still_give_the_state_machines_answer(  # type: ignore[no-untyped-def]
        kafka_broker, flink_cluster: LocalFlink, tmp_path: Path) -> None:
    events_become_state(kafka_broker, flink_cluster, tmp_path, extra=["--idle_s", "0.001", "--sweep_s", "0"])
