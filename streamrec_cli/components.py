"""How the demo runs the parts other engineers own: the streaming pipeline and the backfill.

Kept in one small module so that when ``pipelines`` changes its options only this file follows.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from streamrec.replay import load_ratings, split_history

REPO = Path(__file__).resolve().parents[1]


def pipeline_args(env: dict[str, str]) -> list[str]:
    """``streamrec pipeline …`` arguments for the streaming job reading the demo's Kafka."""
    return [
        "pipeline",
        "--bootstrap", env["STREAMREC_KAFKA_BOOTSTRAP"],
        "--store", env["STREAMREC_STORE"],
    ]


def run_backfill(dataset: Path, fraction: float, store_url: str, env: dict[str, str], log: Path) -> int:
    """The batch backfill over the oldest ``fraction`` of the ratings, its progress bar on this
    terminal; returns how many ratings it loaded."""
    history, _ = split_history(load_ratings(dataset), fraction)
    cmd = [sys.executable, "-m", "streamrec_cli.main", "backfill", "--dataset", str(dataset),
           "--fraction", str(fraction), "--store", store_url]
    result = subprocess.run(cmd, cwd=REPO, env={**__import__("os").environ, **env}, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the backfill failed with exit code {result.returncode}")
    return len(history)
