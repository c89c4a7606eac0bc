"""End to end: the demo's experiment. During the short live replay a share of the viewers open
their home page first; once the replay is done, the results route (read with the service token the
page gets) shows both arms shown titles, plays credited to them, and a split check."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

import pytest

from tests.e2e.test_demo import wait_for_replay
from tests.fixtures.demo import DemoStack

pytestmark = pytest.mark.e2e


def results(stack: DemoStack) -> dict[str, Any]:
    page = stack.get_json("/demo/experiment")
    request = urllib.request.Request(f"{stack.base_url}/v1/experiments/{page['id']}",
                                     headers={"Authorization": f"Bearer {page['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def test_the_demos_experiment_counts_impressions_and_credited_plays(demo_stack: DemoStack) -> None:
    stats = wait_for_replay(demo_stack)
    assert stats["feed_visits"] > 0 and stats["feed_visit_errors"] == 0
    deadline = time.monotonic() + 60
    while True:
        answer = results(demo_stack)
        arms = {v["variant"]: v for v in answer["variants"]}
        if all(v["impressions"] > 0 for v in arms.values()) and sum(v["plays"] for v in arms.values()) > 0:
            break
        if time.monotonic() > deadline:
            pytest.fail(f"no credited plays in both arms 60 s after the replay: {json.dumps(answer)[:2000]}")
        time.sleep(1.0)
    assert set(arms) == {"blend", "learned"} and answer["running"]  # the hand-tuned blend vs the learned ranker
    assert answer["sample_ratio"]["p_value"] is not None
    for arm in arms.values():
        assert arm["plays"] <= arm["impressions"]
        assert arm["play_rate"]["low"] <= (arm["play_rate"]["value"] or 0.0) <= arm["play_rate"]["high"]
