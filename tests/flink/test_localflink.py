"""The local standalone cluster: it starts from the wheel, its web UI answers, it stops leaving no process."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from streamrec_cli.localflink import LocalFlink
from streamrec_cli.localkafka import pid_alive
from tests.flink.conftest import start_cluster


def test_the_cluster_starts_answers_and_stops_leaving_no_process(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path)
    try:
        pids = cluster.running_pids()
        assert len(pids) == 2  # the JobManager and the TaskManager
        with urllib.request.urlopen(cluster.url + "/overview", timeout=10) as response:
            overview = json.loads(response.read())
        assert overview["taskmanagers"] == 1 and overview["flink-version"] == "2.3.0"
        with urllib.request.urlopen(cluster.url + "/", timeout=10) as response:  # the web UI itself
            assert b"<html" in response.read().lower()
        config = (cluster.conf_dir / "config.yaml").read_text()
        assert f"env.pid.dir: \"{cluster.work_dir / 'pid'}\"" in config
        assert 'python.execution-mode: "thread"' in config
        # Another instance on the same folder sees it running and adopts its port.
        other = LocalFlink(work_dir=cluster.work_dir, rest_port=1)
        assert other.attach() and other.rest_port == cluster.rest_port
    finally:
        assert cluster.stop()
    assert not any(pid_alive(pid) for pid in pids)
    assert cluster.running_pids() == []
