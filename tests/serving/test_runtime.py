"""The serving process settles its garbage collector once it has started (serving.runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from serving.settings import ServingConfig, gc_threshold_from
from tests.fixtures.serving import JWT_KEY

REPO = Path(__file__).resolve().parents[2]

# Run in a child: freezing and re-thresholding pytest's own collector would outlive the test.
# Both entry points (``python -m serving`` and ``streamrec serve``) are run up to web.run_app,
# which is replaced by the app's startup, and the collector read before and after it.
ENTRY_POINTS = r"""
import asyncio, gc, json, sys
from aiohttp import web

def started(app, **_kwargs):
    async def run():
        before = [list(gc.get_threshold()), gc.get_freeze_count()]
        runner = web.AppRunner(app)
        await runner.setup()
        after = [list(gc.get_threshold()), gc.get_freeze_count()]
        await runner.cleanup()
        gc.unfreeze()
        gc.set_threshold(700, 10, 10)
        return {"before": before, "after": after}
    out.append(asyncio.run(run()))

out = []
web.run_app = started
import serving.__main__
serving.__main__.main()
from streamrec_cli.main import main
main(["serve"])
print(json.dumps(out))
"""


def test_both_entry_points_settle_the_collector_once_the_app_has_started(tmp_path: Path):
    env = {**os.environ, "STREAMREC_STORE": f"sqlite:///{tmp_path / 'store.db'}", "STREAMREC_JWT_KEY": JWT_KEY,
           "STREAMREC_KAFKA_BOOTSTRAP": "127.0.0.1:1", "STREAMREC_SERVING_IMPRESSIONS": "0",
           "STREAMREC_SERVING_GC_THRESHOLD": "12000,11,9", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", ENTRY_POINTS], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(runs) == 2
    for run in runs:
        assert run["before"] == [[700, 10, 10], 0]  # nothing settled by making the app
        threshold, frozen = run["after"]
        assert threshold == [12000, 11, 9]
        assert frozen > 10_000  # the modules, the app and its clients: out of the collector's passes


def test_the_threshold_comes_from_the_environment_or_a_clear_error():
    assert gc_threshold_from("10000,10,10") == (10_000, 10, 10)
    assert gc_threshold_from(" 5000, 20 ,30") == (5000, 20, 30)
    for bad in ("", "10000", "10000,10", "10000,10,10,10", "a,b,c", "0,10,10", "10000,-1,10"):
        with pytest.raises(ValueError, match="STREAMREC_SERVING_GC_THRESHOLD: three comma-separated"):
            gc_threshold_from(bad)
    with pytest.raises(ValueError, match="gc_threshold"):
        ServingConfig(store_url="sqlite:///x", kafka_bootstrap="127.0.0.1:1", jwt_key=JWT_KEY, gc_threshold=(0, 1, 1))
