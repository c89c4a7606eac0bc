"""How the demo runs the parts other engineers own: the streaming pipeline and the backfill.

Kept in one small module so that when ``pipelines`` changes its options only this file follows.
The streaming job runs on one of two engines (``STREAMREC_DEMO_ENGINE``, ``make demo ENGINE=...``):

- ``flink`` (the default of ``make demo``): the PyFlink job ``pipelines/flink/job.py`` on a local standalone
  Flink cluster from the wheel in ``var/flink/venv`` (``make flink``), run and kept by
  ``python -m streamrec_cli.flinkjob`` (web UI on ``STREAMREC_DEMO_FLINK_PORT``, default 8091);
- ``beam``: the Beam pipeline on Beam's Prism runner (a real local portable runner; built by
  ``make prism`` into ``var/prism/bin/prism``) with the Python SDK in LOOPBACK mode.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm  # type: ignore[import-untyped]

from streamrec.ratings import load_ratings, split_history

REPO = Path(__file__).resolve().parents[1]
PRISM = REPO / "var" / "prism" / "bin" / "prism"
ENGINES = ("flink", "beam")
FLINK_MODULE = "streamrec_cli.flinkjob"


def demo_engine(chosen: str | None = None) -> str:
    """The demo's streaming engine: ``--engine``, else ``STREAMREC_DEMO_ENGINE`` (``make demo``
    sets ``flink``), else ``beam`` (as the e2e tests run it)."""
    engine = (chosen or os.environ.get("STREAMREC_DEMO_ENGINE", "beam")).strip().lower() or "beam"
    if engine not in ENGINES:
        raise RuntimeError(f"STREAMREC_DEMO_ENGINE / ENGINE: {engine!r} is not one of {', '.join(ENGINES)}")
    return engine


def flink_args(env: dict[str, str], work_dir: Path) -> list[str]:
    """``python -m streamrec_cli.flinkjob …`` arguments for the Flink job reading the demo's Kafka."""
    from streamrec_cli.localflink import DEFAULT_REST_PORT, DEFAULT_VENV

    if not (DEFAULT_VENV / "bin" / "python").exists():
        raise RuntimeError(f"PyFlink is missing in {DEFAULT_VENV}: run `make flink` (make demo does)")
    return ["--bootstrap", env["STREAMREC_KAFKA_BOOTSTRAP"], "--store", env["STREAMREC_STORE"],
            "--work-dir", str(work_dir),
            "--rest-port", os.environ.get("STREAMREC_DEMO_FLINK_PORT", str(DEFAULT_REST_PORT))]


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


def run_backfill(dataset: Path, fraction: float, store_url: str, env: dict[str, str], log: Path) -> int:
    """The batch backfill over the oldest ``fraction`` of the ratings (output in ``log``, elapsed
    time on this terminal); returns how many ratings it loaded."""
    history, _ = split_history(load_ratings(dataset), fraction)
    if not history:
        return 0
    cmd = [sys.executable, "-m", "streamrec_cli.main", "backfill", "--dataset", str(dataset),
           "--limit", str(len(history)), "--store", store_url]
    with open(log, "ab") as out:
        process = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        # The batch job reports nothing until it is done: show that it is alive, and for how long.
        with tqdm(total=None, desc=f"      backfill ({len(history)} ratings)", bar_format="{desc}: {elapsed}") as ticker:
            try:
                while process.poll() is None:
                    time.sleep(1.0)
                    ticker.update(0)
                    ticker.refresh()
            except BaseException:
                process.terminate()
                process.wait(timeout=30)
                raise
    if process.returncode != 0:
        raise RuntimeError(f"the backfill failed with exit code {process.returncode}: see {log}")
    return len(history)
