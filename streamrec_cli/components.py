"""How the demo runs the parts other engineers own: the streaming pipeline and the backfill.

Kept in one small module so that when ``pipelines`` changes its options only this file follows.
The streaming job runs on Beam's Prism runner (a real local portable runner; built by
``make prism`` into ``var/prism/bin/prism``) with the Python SDK in LOOPBACK mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from streamrec.replay import load_ratings, split_history

REPO = Path(__file__).resolve().parents[1]
PRISM = REPO / "var" / "prism" / "bin" / "prism"


def pipeline_args(env: dict[str, str]) -> list[str]:
    """``streamrec pipeline …`` arguments for the streaming job reading the demo's Kafka."""
    if not PRISM.exists():
        raise RuntimeError(f"the Prism runner is missing at {PRISM}: run `make prism` (make demo does)")
    return [
        "pipeline",
        "--bootstrap", env["STREAMREC_KAFKA_BOOTSTRAP"],
        "--store", env["STREAMREC_STORE"],
        "--runner", "PrismRunner",
        "--prism_location", str(PRISM),
        "--environment_type", "LOOPBACK",
        "--streaming",
    ]


def run_backfill(dataset: Path, fraction: float, store_url: str, env: dict[str, str]) -> int:
    """The batch backfill over the oldest ``fraction`` of the ratings (its progress shows on this
    terminal); returns how many ratings it loaded."""
    history, _ = split_history(load_ratings(dataset), fraction)
    if not history:
        return 0
    cmd = [sys.executable, "-m", "streamrec_cli.main", "backfill", "--dataset", str(dataset),
           "--limit", str(len(history)), "--store", store_url]
    result = subprocess.run(cmd, cwd=REPO, env={**os.environ, **env}, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"the backfill failed with exit code {result.returncode}")
    return len(history)
