"""The Flink job as one long-running process: a local cluster, the job submitted to it, kept until stopped.

    python -m streamrec_cli.flinkjob --bootstrap 127.0.0.1:9092 --store sqlite:////abs/state.db \\
        --work-dir var/demo/flink [--rest-port 8091]

What ``streamrec demo`` runs as its streaming pipeline when the engine is Flink (the default). It
starts a :class:`streamrec_cli.localflink.LocalFlink` (JobManager + TaskManager from the PyFlink
wheel, ``make flink``), submits ``pipelines/flink/job.py`` and writes ``<work-dir>/flink.json``
(web UI address, job id) once the job runs. It exits non-zero when the job fails for good or a
cluster process dies (the demo then restarts it: the job resumes from the group's committed
offsets, replays are deduplicated); on SIGTERM/SIGINT it cancels the job and stops the cluster.
The cluster processes end with this process even if it is killed (``die_with_parent``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from streamrec_cli.localflink import DEFAULT_REST_PORT, LocalFlink
from streamrec_cli.localkafka import free_port, port_open

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "pipelines" / "flink" / "job.py"
CONSUMER_GROUP = "streamrec-flink"


class _Stop(Exception):
    pass


def _stop(signum: int, frame: object) -> None:
    raise _Stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamrec_cli.flinkjob", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--store", required=True, help="store URL (an absolute sqlite:////... path)")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--rest-port", type=int, default=DEFAULT_REST_PORT)
    parser.add_argument("--group", default=CONSUMER_GROUP)
    parser.add_argument("--checkpoint-ms", type=int, default=1000)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    info = args.work_dir / "flink.json"
    info.unlink(missing_ok=True)
    cluster = LocalFlink(work_dir=args.work_dir / "cluster", rest_port=args.rest_port, die_with_parent=True)
    try:
        cluster.stop()  # a cluster a killed run left behind in this folder
        if port_open(cluster.rest_port):
            cluster.rest_port = free_port()
            print(f"port {args.rest_port} is in use: the Flink web UI takes {cluster.rest_port}", flush=True)
        cluster.start()
        print(f"flink cluster up in {cluster.started_in_s:.1f}s: web UI {cluster.url}", flush=True)
        job_id = cluster.submit(JOB, "--bootstrap", args.bootstrap, "--store", args.store, "--group", args.group,
                                "--rest", cluster.url, "--checkpoint_ms", str(args.checkpoint_ms), "--name", "streamrec")
        cluster.wait_for_running_tasks(job_id, 180)
        info.write_text(json.dumps({"web_ui": cluster.url, "job_id": job_id}))
        print(f"flink job {job_id} running", flush=True)
        while True:
            time.sleep(2.0)
            if len(cluster.running_pids()) < 2:
                print(f"a flink process died:\n{cluster.tail_log()}", flush=True)
                return 1
            state = cluster.job(job_id).get("state")
            if state in ("FAILED", "CANCELED", "FINISHED"):
                print(f"the flink job is {state}:\n{cluster.rest(f'/jobs/{job_id}/exceptions')}", flush=True)
                return 1
    except _Stop:
        for job in cluster.jobs():
            if job.get("status") == "RUNNING":
                cluster.cancel(job["id"])
        return 0
    finally:
        info.unlink(missing_ok=True)
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
