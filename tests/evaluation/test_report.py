"""The quality page's target lines (issue 15) and table, as pure functions of a summary."""

from __future__ import annotations

from typing import Any

from evaluation.report import markdown_table, target_lines


def _summary(ours: dict[str, float | None], events: int = 100_000) -> dict[str, Any]:
    row = {"hr@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0, "cold_hr@10": 0.0, "coverage": 0.0, "seconds": 1.0}
    return {
        "dataset": "ml-latest-small",
        "events": events,
        "methods": {
            "streamrec": {**row, **ours},
            "itemknn_stream": {**row, "hr@10": 0.08, "ndcg@10": 0.04, "coverage": 0.88},
            "ease_nightly": {**row, "hr@10": 0.06, "ndcg@10": 0.05},
            "trending": {**row, "hr@10": 0.02, "cold_hr@10": 0.10},
            "random": {**row, "hr@10": 0.5, "ndcg@10": 0.5},  # never a baseline, however lucky
        },
    }


def test_targets_met_and_not_met() -> None:
    lines = target_lines(_summary({"hr@10": 0.0961, "ndcg@10": 0.0599, "cold_hr@10": 0.05, "coverage": 0.90,
                                   "seconds": 59.0}))
    assert len(lines) == 5
    hr, ndcg, cold, coverage, speed = lines
    # the best baseline is named per metric: kNN by HR@10, EASE by NDCG@10; random never counts
    assert "best baseline (itemknn_stream, 0.0800)" in hr and "0.0961 vs 0.0960" in hr and "**met**" in hr
    assert "best baseline (ease_nightly, 0.0500)" in ndcg and "0.0599 vs 0.0600" in ndcg and "**NOT met**" in ndcg
    assert "cold HR@10 ≥ trending's: 0.0500 vs 0.1000" in cold and "**NOT met**" in cold
    assert "coverage ≥ itemknn_stream's: 0.9000 vs 0.8800" in coverage and "**met**" in coverage
    assert "59.0 s per 100k" in speed and "**met**" in speed


def test_replay_time_is_per_100k_events() -> None:
    speed = target_lines(_summary({"seconds": 59.0}, events=80_000))[-1]
    assert "73.8 s per 100k (59.0 s for 80,000)" in speed and "**NOT met**" in speed


def test_targets_without_cold_users_are_not_checked() -> None:
    lines = target_lines(_summary({"hr@10": 0.05, "cold_hr@10": None, "seconds": 300.0}))
    assert "nothing scored, not checked" in lines[2]
    assert "**NOT met**" in lines[0] and "**NOT met**" in lines[4]


def test_without_streamrec_nothing_is_checked() -> None:
    summary = _summary({})
    del summary["methods"]["streamrec"]
    assert target_lines(summary) == ["- ml-latest-small: streamrec was not evaluated, no target can be checked."]


def test_table_marks_the_best_hit_rate() -> None:
    table = markdown_table(_summary({"hr@10": 0.6, "cold_hr@10": None}))
    assert "| streamrec | **0.6000** |" in table
    assert "| – |" in table  # no cold users scored
