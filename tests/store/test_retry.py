"""Retry with backoff around store calls: pure logic, a fake clock."""

from __future__ import annotations

import pytest

from streamrec.store.base import RecordTooBig, StoreUnavailable
from streamrec.store.retry import Backoff, retry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _failing_for(clock: Clock, seconds: float, exc: Exception | None = None) -> object:
    def call() -> str:
        if clock.now < seconds:
            clock.now += 0.01  # each attempt costs a little
            raise exc or StoreUnavailable("down")
        return "ok"
    return call


def test_an_outage_shorter_than_the_budget_is_waited_out_with_growing_waits() -> None:
    clock = Clock()
    backoff = Backoff(budget_s=60, first_s=0.1, max_s=5, jitter=0)
    assert retry(_failing_for(clock, 10.0), "put_users", backoff, sleep=clock.sleep, clock=lambda: clock.now) == "ok"
    assert clock.waits[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(clock.waits) == 5 and 10.0 <= clock.now < 16  # never a wait longer than max_s


def test_an_outage_longer_than_the_budget_raises_the_store_error() -> None:
    clock = Clock()
    with pytest.raises(StoreUnavailable):
        retry(_failing_for(clock, 1000.0), "put_users", Backoff(budget_s=20, jitter=0),
              sleep=clock.sleep, clock=lambda: clock.now)
    assert 15 <= clock.now <= 21


def test_other_errors_are_not_retried() -> None:
    clock = Clock()
    with pytest.raises(RecordTooBig):
        retry(_failing_for(clock, 10.0, RecordTooBig("big")), "put_users", sleep=clock.sleep, clock=lambda: clock.now)
    assert clock.waits == []


def test_jitter_only_shortens_waits() -> None:
    wait = Backoff(first_s=1, max_s=8, jitter=0.5).waits()
    assert all(0.5 * min(8, 2**a) <= wait(a) <= min(8, 2**a) for a in range(10) for _ in range(20))
