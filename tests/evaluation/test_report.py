"""The quality page's target lines and table, as pure functions of a summary."""

from __future__ import annotations

from typing import Any

from evaluation.report import markdown_table, target_lines


def _summary(ours: dict[str, float | None]) -> dict[str, Any]:
    row = {"hr@10": 0.0, "ndcg@10": 0.0, "mrr": 0.0, "cold_hr@10": 0.0, "coverage": 0.0, "seconds": 1.0}
    return {
        "dataset": "ml-latest-small",
        "methods": {
            "streamrec": {**row, **ours},
            "itemknn_stream": {**row, "hr@10": 0.08},
            "ease_nightly": {**row, "hr@10": 0.06},
            "trending": {**row, "cold_hr@10": 0.10},
        },
    }


def test_targets_met_and_not_met() -> None:
    lines = target_lines(_summary({"hr@10": 0.0961, "cold_hr@10": 0.05, "seconds": 119.0}))
    assert len(lines) == 4
    knn, ease, cold, speed = lines
    assert "0.0961 vs 0.0960" in knn and "**met**" in knn  # 1.2 x 0.08
    assert "0.0961 vs 0.0900" in ease and "**met**" in ease  # 1.5 x 0.06
    assert "**NOT met**" in cold
    assert "119.0 s" in speed and "**met**" in speed


def test_targets_without_cold_users_are_not_checked() -> None:
    lines = target_lines(_summary({"hr@10": 0.05, "cold_hr@10": None, "seconds": 300.0}))
    assert "nothing scored, not checked" in lines[2]
    assert "**NOT met**" in lines[0] and "**NOT met**" in lines[3]


def test_table_marks_the_best_hit_rate() -> None:
    table = markdown_table(_summary({"hr@10": 0.2, "cold_hr@10": None}))
    assert "| streamrec | **0.2000** |" in table
    assert "| – |" in table  # no cold users scored
