"""A local standalone Apache Flink cluster (one JobManager, one TaskManager) run from the PyFlink wheel.

The wheel in ``var/flink/venv`` (``make flink``, ``infra/local/fetch-flink.sh``) is a full Flink
2.3.0: ``pyflink/bin/jobmanager.sh``, ``taskmanager.sh``, ``flink``. This module writes a private
configuration folder (``FLINK_CONF_DIR``) with private ports, a private ``env.pid.dir`` and log
folder, so it never touches another Flink on the machine (the scripts' default is to share
``/tmp/flink-*.pid`` with every Flink, and ``stop-cluster.sh`` stops whatever pid is last in them),
then runs both processes in the foreground as children of this Python (own session; with
``die_with_parent`` Linux ends them when their starter dies), so ``stop()`` knows exactly what to end.

    with LocalFlink(work_dir=tmp) as flink:          # starts, waits for the web UI and a TaskManager
        job_id = flink.submit("pipelines/flink/job.py", "--bootstrap", ...)
        flink.kill_taskmanager(); flink.start_taskmanager()    # a crash and a new TaskManager
                                                                # leaving the block stops both

From a shell: ``python -m streamrec_cli.localflink start|status|stop [--work-dir var/flink/cluster]``.

Python functions run in ``thread`` mode (embedded CPython through pemja, no Python worker
process): 10x the ``process`` mode's rate here. In 2.3.0 the embedded interpreter needs the
virtualenv's site-packages on ``PYTHONPATH`` (else ``No module named 'pemja'``): the TaskManager
is started with it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from streamrec_cli.localkafka.processes import free_port, pid_alive, port_open

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VENV = ROOT / "var" / "flink" / "venv"
DEFAULT_LIB_DIR = ROOT / "var" / "flink" / "lib"
DEFAULT_WORK_DIR = ROOT / "var" / "flink" / "cluster"
DEFAULT_REST_PORT = 8091


class LocalFlinkError(RuntimeError):
    pass


def flink_home(venv: Path = DEFAULT_VENV) -> Path:
    """The ``pyflink`` folder of the Flink virtualenv (it holds ``bin/``, ``lib/``, ``conf/``)."""
    found = sorted(Path(venv).glob("lib/python3*/site-packages/pyflink"))
    if not found or not (found[0] / "bin" / "jobmanager.sh").exists():
        raise LocalFlinkError(f"no PyFlink in {venv}: run `make flink` (infra/local/fetch-flink.sh)")
    return found[0]


def connector_jars(lib_dir: Path = DEFAULT_LIB_DIR) -> list[Path]:
    if not (Path(lib_dir) / ".installed").exists():
        raise LocalFlinkError(f"Flink Kafka connector missing in {lib_dir}: run `make flink`")
    return sorted(Path(lib_dir).glob("*.jar"))


def flink_config(*, rest_port: int, rpc_port: int, work_dir: Path, python: Path, slots: int = 2,
                 jm_mb: int = 1024, tm_mb: int = 1536) -> dict[str, str]:
    """The cluster's ``config.yaml`` entries (flat keys)."""
    return {
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.bind-host": "127.0.0.1",
        "jobmanager.rpc.port": str(rpc_port),
        "jobmanager.memory.process.size": f"{jm_mb}m",
        "jobmanager.execution.failover-strategy": "region",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.rpc.port": "0",
        "taskmanager.data.port": "0",
        "taskmanager.numberOfTaskSlots": str(slots),
        "taskmanager.memory.process.size": f"{tm_mb}m",
        "taskmanager.memory.managed.fraction": "0.1",
        "blob.server.port": "0",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": str(rest_port),
        "parallelism.default": "1",
        "env.pid.dir": str(work_dir / "pid"),
        "env.log.dir": str(work_dir / "log"),
        "io.tmp.dirs": str(work_dir / "tmp"),
        # A killed TaskManager is noticed in seconds (defaults: 10 s / 50 s).
        "heartbeat.interval": "1000",
        "heartbeat.timeout": "6000",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000",
        "restart-strategy.fixed-delay.delay": "1 s",
        # The Flink job's held writes ask the REST API for completed checkpoints: its default 3 s
        # caches of job and checkpoint statistics would add up to 3 s to their freshness.
        "web.refresh-interval": "50",
        "rest.cache.checkpoint-statistics.timeout": "50 ms",
        "execution.checkpointing.interval": "2 s",
        "execution.checkpointing.dir": (work_dir / "checkpoints").as_uri(),
        "execution.checkpointing.savepoint-dir": (work_dir / "savepoints").as_uri(),
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": "hashmap",
        "python.executable": str(python),
        "python.client.executable": str(python),
        "python.execution-mode": "thread",
    }


@dataclass
class LocalFlink:
    """One JobManager and one TaskManager, foreground children of this process."""

    work_dir: Path = DEFAULT_WORK_DIR
    rest_port: int = DEFAULT_REST_PORT
    rpc_port: int = 0  # 0: a free one at start
    venv: Path = DEFAULT_VENV
    lib_dir: Path = DEFAULT_LIB_DIR
    slots: int = 2
    die_with_parent: bool = False
    extra_config: dict[str, str] = field(default_factory=dict)
    _procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict, init=False, repr=False)
    started_in_s: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir).resolve()
        self.venv = Path(self.venv).resolve()
        self.lib_dir = Path(self.lib_dir).resolve()

    # -- paths -----------------------------------------------------------------------------------
    @property
    def conf_dir(self) -> Path:
        return self.work_dir / "conf"

    @property
    def url(self) -> str:
        """The web UI / REST address."""
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def _state_file(self) -> Path:
        return self.work_dir / "cluster.json"

    def _env(self) -> dict[str, str]:
        home = flink_home(self.venv)
        env = dict(os.environ)
        env.update({
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LOG_DIR": str(self.work_dir / "log"),
            "FLINK_PID_DIR": str(self.work_dir / "pid"),
            "FLINK_HOME": str(home),
            # thread mode: the embedded interpreter imports pemja and the job's modules from here
            "PYTHONPATH": os.pathsep.join([str(home.parent), str(ROOT)]),
            "PATH": f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
            "VIRTUAL_ENV": str(self.venv),
        })
        return env

    def _write_config(self) -> None:
        home = flink_home(self.venv)
        for sub in ("conf", "log", "pid", "tmp", "checkpoints", "savepoints"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties",
                     "logback-console.xml", "logback.xml"):
            if (home / "conf" / name).exists():
                shutil.copy(home / "conf" / name, self.conf_dir / name)
        config = flink_config(rest_port=self.rest_port, rpc_port=self.rpc_port, work_dir=self.work_dir,
                              python=self.python, slots=self.slots)
        config.update(self.extra_config)
        lines = [f"{key}: {json.dumps(value)}" for key, value in config.items()]
        lines.append(f"env.java.opts.all: {json.dumps(_java_opts(home))}")
        (self.conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")
        (self.conf_dir / "masters").write_text(f"127.0.0.1:{self.rest_port}\n")
        (self.conf_dir / "workers").write_text("127.0.0.1\n")

    def _spawn(self, role: str) -> subprocess.Popen[bytes]:
        script = flink_home(self.venv) / "bin" / ("jobmanager.sh" if role == "jobmanager" else "taskmanager.sh")
        prefix = []
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        if setpriv:
            prefix = [setpriv, "--pdeathsig", "KILL", "--"]
        n = sum(1 for name in self._procs if name.startswith(role))
        with open(self.work_dir / "log" / f"{role}-{n}.out", "ab") as out:
            proc = subprocess.Popen(prefix + ["bash", str(script), "start-foreground"], env=self._env(),
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self._procs[f"{role}-{n}"] = proc
        self._save_state()
        return proc

    def _save_state(self) -> None:
        pids = {name: p.pid for name, p in self._procs.items() if p.poll() is None}
        self._state_file.write_text(json.dumps({"rest_port": self.rest_port, "pids": pids}))

    # -- life cycle --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 120.0) -> Self:
        began = time.monotonic()
        if self.running_pids():
            raise LocalFlinkError(f"a cluster from {self.work_dir} already runs; stop it first")
        if port_open(self.rest_port):
            raise LocalFlinkError(f"port {self.rest_port} on 127.0.0.1 is already in use")
        if not self.rpc_port:
            self.rpc_port = free_port()
        self._write_config()
        try:
            self._spawn("jobmanager")
            self._spawn("taskmanager")
            self.wait_for_taskmanagers(1, began + timeout_s)
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - began
        return self

    def rest(self, path: str, method: str = "GET", body: Any = None, timeout: float = 5.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def wait_for_taskmanagers(self, n: int, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            dead = [name for name, p in self._procs.items() if p.poll() is not None and name.startswith("jobmanager")]
            if dead:
                raise LocalFlinkError(f"the JobManager exited:\n{self.tail_log()}")
            try:
                overview = self.rest("/overview", timeout=2)
                if int(overview.get("taskmanagers", 0)) >= n:
                    return
            except (OSError, ValueError, urllib.error.URLError) as exc:
                last = exc
            time.sleep(0.3)
        raise LocalFlinkError(f"no {n} TaskManager(s) registered in time ({last}):\n{self.tail_log()}")

    def taskmanager_pid(self) -> int | None:
        alive = [p for name, p in self._procs.items() if name.startswith("taskmanager") and p.poll() is None]
        return alive[-1].pid if alive else None

    def kill_taskmanager(self) -> int:
        """SIGKILL the running TaskManager (a crash, no clean shutdown); returns its pid."""
        pid = self.taskmanager_pid()
        if pid is None:
            raise LocalFlinkError("no TaskManager runs")
        os.kill(pid, signal.SIGKILL)
        for proc in self._procs.values():
            if proc.pid == pid:
                proc.wait(timeout=10)
        self._save_state()
        return pid

    def start_taskmanager(self) -> None:
        self._spawn("taskmanager")

    def running_pids(self) -> list[int]:
        """Pids of this folder's cluster processes that still run (also ones started elsewhere)."""
        pids = {p.pid for p in self._procs.values() if p.poll() is None}
        try:
            state = json.loads(self._state_file.read_text())
            pids.update(int(pid) for pid in state.get("pids", {}).values())
        except (OSError, ValueError):
            pass
        return sorted(pid for pid in pids if pid_alive(pid) and _is_ours(pid, self.conf_dir))

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGTERM every process of this cluster, wait, then SIGKILL. True when none had to be killed."""
        pids = self.running_pids()
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        clean = True
        while pids and time.monotonic() < deadline:
            for proc in self._procs.values():
                proc.poll()
            pids = [pid for pid in pids if pid_alive(pid)]
            time.sleep(0.1)
        for pid in pids:
            clean = False
            _signal(pid, signal.SIGKILL)
        gone_by = time.monotonic() + 10
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < gone_by:
            for proc in self._procs.values():
                proc.poll()
            time.sleep(0.05)
        self._procs.clear()
        self._state_file.unlink(missing_ok=True)
        return clean

    def attach(self) -> bool:
        """Adopt the ports of a cluster already running from this folder; True when one runs."""
        if not self.running_pids():
            return False
        self.rest_port = int(json.loads(self._state_file.read_text())["rest_port"])
        return True

    # -- jobs ----------------------------------------------------------------------------------------
    def submit(self, script: str | Path, *args: str, timeout_s: float = 180.0) -> str:
        """``flink run --detached -py script args``: returns the job id once the job is running."""
        flink = flink_home(self.venv) / "bin" / "flink"
        command = ["bash", str(flink), "run", "--detached", "-m", f"127.0.0.1:{self.rest_port}",
                   "-pyexec", str(self.python), "-pyclientexec", str(self.python), "-py", str(script), *args]
        before = {job["id"] for job in self.jobs()}
        out = subprocess.run(command, check=False, env=self._env(), cwd=str(ROOT), capture_output=True, text=True,
                             timeout=timeout_s)
        if out.returncode != 0:
            raise LocalFlinkError(f"flink run failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        for line in out.stdout.splitlines():
            if "JobID" in line:
                return line.split()[-1]
        new = [job["id"] for job in self.jobs() if job["id"] not in before]
        if not new:
            raise LocalFlinkError(f"flink run printed no job id:\n{out.stdout[-3000:]}")
        return new[0]

    def jobs(self) -> list[dict[str, Any]]:
        try:
            return list(self.rest("/jobs").get("jobs", []))
        except (OSError, ValueError, urllib.error.URLError):
            return []

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.rest(f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> None:
        try:
            self.rest(f"/jobs/{job_id}?mode=cancel", method="PATCH")
        except urllib.error.HTTPError:
            pass

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        return dict(self.rest(f"/jobs/{job_id}/checkpoints"))

    def wait_for_state(self, job_id: str, states: set[str], timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        state = "?"
        while time.monotonic() < deadline:
            try:
                state = str(self.job(job_id).get("state"))
            except (OSError, ValueError, urllib.error.URLError):
                pass
            if state in states:
                return state
            time.sleep(0.3)
        raise LocalFlinkError(f"job {job_id} is {state}, not {sorted(states)} after {timeout_s:.0f}s:\n{self.tail_log()}")

    def wait_for_running_tasks(self, job_id: str, timeout_s: float) -> None:
        """Until every vertex of the job runs (after a submit or a restore)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                job = self.job(job_id)
                if job.get("state") == "RUNNING" and all(v.get("status") == "RUNNING" for v in job.get("vertices", [])):
                    return
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(0.3)
        raise LocalFlinkError(f"job {job_id} tasks not all running after {timeout_s:.0f}s:\n{self.tail_log()}")

    def tail_log(self, lines: int = 40) -> str:
        texts = []
        for path in sorted((self.work_dir / "log").glob("*")):
            if path.is_file() and path.stat().st_size:
                texts.append(f"--- {path.name}")
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts[-4 * lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _java_opts(home: Path) -> str:
    """The wheel's own JVM options (module opens Flink 2 needs on Java 17), plus a small footprint."""
    text = (home / "conf" / "config.yaml").read_text()
    opts = ""
    for line in text.splitlines():
        if line.strip().startswith("all:") and "--add-" in line:
            opts = line.split("all:", 1)[1].strip()
    return f"{opts} -XX:+UseSerialGC -XX:TieredStopAtLevel=1".strip()


def _is_ours(pid: int, conf_dir: Path) -> bool:
    """A recycled pid must not be taken for our cluster: its command line names our conf folder
    (the scripts pass ``--configDir``), or its environment does."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    if str(conf_dir) in cmdline:
        return True
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return f"FLINK_CONF_DIR={conf_dir}" in environ


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamrec_cli.localflink", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("start", "status", "stop"))
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--rest-port", type=int, default=DEFAULT_REST_PORT)
    args = parser.parse_args(argv)
    cluster = LocalFlink(work_dir=args.work_dir, rest_port=args.rest_port)
    if args.command == "start":
        cluster.start()
        print(f"flink web UI {cluster.url} (started in {cluster.started_in_s:.1f}s)")
        cluster._procs.clear()  # keep running after this command returns
        return 0
    if args.command == "status":
        running = cluster.attach()
        print(f"flink {'running at ' + cluster.url if running else 'not running'}")
        return 0 if running else 1
    cluster.stop()
    print("flink stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
