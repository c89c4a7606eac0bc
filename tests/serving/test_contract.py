"""The OpenAPI document is the contract: schemathesis (``--checks all``) against the running service.

The real app on a real port over a seeded SQLite store and the real broker (valid events are
accepted, so 202s are checked too), once per caller: a profile token, a service token, and none.
Every operation of ``/openapi.json`` gets ``EXAMPLES`` generated requests (valid and invalid) with a
fixed seed; any finding (a 5xx, a status, header, content type or body the document does not
declare, valid data refused, invalid data accepted, an ignored token ...) fails the test.

Two settings keep it about the contract: the server's clock is frozen (the document states the
latest event time it takes by that clock, so "at most 300 s in the future" cannot drift during
the run), and the per-token rate limit is out of reach (tested in tests/serving/test_events.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.settings import ServingConfig
from tests.fixtures.serving import (
    JWT_KEY,
    ServerThread,
    World,
    free_port,
    service_token,
    token,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = 19
EXAMPLES = int(os.environ.get("STREAMREC_CONTRACT_EXAMPLES", "250"))
CALLERS = {"profile": token("u1"), "service": service_token(), "anonymous": {}}


@pytest.fixture
def service(feed_world: World, kafka_broker) -> Iterator[str]:
    frozen = time.time()
    config = ServingConfig(
        store_url=feed_world.store_url, kafka_bootstrap=kafka_broker.bootstrap, jwt_key=JWT_KEY, port=free_port(),
        impressions=False, static_dir=REPO / "var" / "no-static", clock=lambda: frozen,
        # Generous: two loaded cores; a slow answer is not a contract finding.
        store_deadline_s=5.0, kafka_ack_timeout_s=30.0,
        events_burst=10**9, events_rate_per_s=1e9)
    with ServerThread(config):
        yield f"http://127.0.0.1:{config.port}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("caller", list(CALLERS))
def test_the_service_keeps_its_openapi_contract(service: str, caller: str, tmp_path: Path) -> None:
    headers = [arg for name, value in CALLERS[caller].items() for arg in ("-H", f"{name}: {value}")]
    command = [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "run", f"{service}/openapi.json", "--checks", "all",
               "--seed", str(SEED), "--max-examples", str(EXAMPLES), "--generation-database", "none",
               "--workers", "1", "--request-timeout", "60", "--no-color", "--output-truncate", "false",
               "--report", "junit", "--report-dir", str(tmp_path), *headers]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.serving.contract_hooks", "PYTHONPATH": str(REPO)}
    run = subprocess.run(command, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=580)
    # Generated bodies can be huge: each line of the report cut to a readable length.
    tail = "\n".join(line[:600] for line in (run.stdout + run.stderr).splitlines())[-30_000:]
    assert run.returncode == 0, f"schemathesis found problems for the {caller} caller:\n{tail}"
    summary = run.stdout[run.stdout.find("SUMMARY"):]
    print(summary)
    generated = re.search(r"(\d+) generated", summary)
    assert generated and int(generated.group(1)) >= EXAMPLES, summary
    if caller != "anonymous":  # valid events were generated from the document, and went to Kafka
        assert accepted_events(service) > 0


def accepted_events(service: str) -> float:
    with urllib.request.urlopen(f"{service}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("streamrec_events_accepted_total{"))
