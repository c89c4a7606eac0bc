"""The processes of the demo stack: start in order with visible progress, stop in reverse.

Each process gets a pid file ``pids/<n>-<name>.json`` (``n`` is the start order) holding its pid
and command line, so ``streamrec demo-stop`` can stop a demo whose own process died, without
ever signalling an unrelated process that reused a pid. Children run in their own session: the
terminal's Ctrl-C reaches only the demo process, which then stops them in order; the whole
process group is signalled, so helpers they spawn (the Beam runner's workers) go too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

STOP_TIMEOUT_S = 20.0
MAX_RESTARTS = 3  # of a crashed streaming pipeline, per demo run


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop_group(pid: int, name: str, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the process group led by ``pid``, wait, then SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + (timeout_s if sig == signal.SIGTERM else 5.0)
        while time.monotonic() < deadline:
            if not pid_alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.1)
        if sig == signal.SIGTERM:
            print(f"  {name} did not stop in {timeout_s:.0f} s: killing it", flush=True)


def _group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs; zombies (exited, not yet reaped by us) do not."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_leftovers(demo_dir: Path) -> list[str]:
    """Stop processes named by pid files in ``demo_dir/pids``, newest first; returns their names."""
    stopped = []
    for path in sorted((demo_dir / "pids").glob("*.json"), reverse=True):
        try:
            record = json.loads(path.read_text())
            pid, marker, name = int(record["pid"]), str(record["marker"]), str(record["name"])
        except (OSError, ValueError, KeyError):
            path.unlink(missing_ok=True)
            continue
        if pid_alive(pid) and marker in _cmdline(pid):
            print(f"  stopping {name} (pid {pid})…", flush=True)
            stop_group(pid, name)
            stopped.append(name)
        path.unlink(missing_ok=True)
    return stopped


class StepPrinter:
    """``[2/7] streaming pipeline … ready (3.1 s)`` lines, flushed as they happen."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self._began = 0.0

    def begin(self, text: str) -> None:
        self.done += 1
        self._began = time.monotonic()
        print(f"[{self.done}/{self.total}] {text} …", end="", flush=True)

    def line(self, text: str) -> None:
        """A step that reports itself (a progress bar follows)."""
        self.done += 1
        print(f"[{self.done}/{self.total}] {text}", flush=True)

    def end(self, detail: str = "ready") -> float:
        took = time.monotonic() - self._began
        print(f" {detail} ({took:.1f} s)", flush=True)
        return took


@dataclass
class Stack:
    demo_dir: Path
    printer: StepPrinter
    started: list[tuple[str, int, str]] = field(default_factory=list)  # name, pid, marker
    children: dict[str, tuple[subprocess.Popen[bytes], Path]] = field(default_factory=dict)  # name -> process, log
    restartable: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)  # name -> args, env
    restarts: dict[str, int] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)  # name -> module run with -m (default: the CLI)
    flink_ui: str | None = None  # the Flink web UI, when the streaming pipeline runs on Flink
    _broker: object | None = None

    def _record(self, name: str, pid: int, marker: str) -> None:
        known = [i for i, (n, _, _) in enumerate(self.started) if n == name]
        order = known[0] + 1 if known else len(self.started) + 1  # a restart keeps its place in the order
        (self.demo_dir / "pids" / f"{order}-{name.replace(' ', '-')}.json").write_text(
            json.dumps({"name": name, "pid": pid, "marker": marker})
        )
        if known:
            self.started[known[0]] = (name, pid, marker)
        else:
            self.started.append((name, pid, marker))

    def start_kafka(self, port: int) -> str:
        from streamrec.kafka_topics import topic_specs
        from streamrec_cli.localkafka import LocalKafka

        self.printer.begin(f"Kafka broker on 127.0.0.1:{port}")
        if port_in_use(port):
            raise RuntimeError(f"port {port} is in use: choose another with KAFKA_PORT=… (--kafka-port)")
        broker = LocalKafka(data_dir=self.demo_dir / "kafka", port=port, create_topics=True)
        broker.start()
        self._broker = broker
        pid = broker.running_pid()
        assert pid is not None
        self._record("kafka broker", pid, str(broker.data_dir))
        self.printer.end()
        self.printer.begin("topics")
        self.printer.end(", ".join(s.name for s in topic_specs(local=True)))
        return broker.bootstrap

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = self.demo_dir / "logs" / f"{name.split()[-1]}.log"
        module = self.modules.get(name, "streamrec_cli.main")
        cmd = [sys.executable, "-m", module, *args]
        with open(log, "ab") as out:
            out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            out.flush()
            process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=Path(__file__).resolve().parents[1], env={**os.environ, **env}, start_new_session=True,
            )
        self._record(name, process.pid, module)
        self.children[name] = (process, log)
        return process

    def check_alive(self) -> None:
        """Restart a crashed streaming pipeline (it resumes from its committed offsets and
        de-duplicates by event id), up to ``MAX_RESTARTS`` times; raise, naming the part and its
        log, when anything else died."""
        for name, (process, log) in list(self.children.items()):
            if process.poll() is None:
                continue
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-8:]) if log.exists() else ""
            restart = self.restartable.get(name)
            if restart is None or self.restarts.get(name, 0) >= MAX_RESTARTS:
                raise RuntimeError(f"the {name} stopped (exit code {process.returncode}); see {log}:\n{tail}")
            self.restarts[name] = self.restarts.get(name, 0) + 1
            print(f"\n!! the {name} stopped (exit code {process.returncode}; see {log}); "
                  f"restarting it ({self.restarts[name]}/{MAX_RESTARTS})", flush=True)
            stop_group(process.pid, name, timeout_s=5.0)  # helpers it left (the runner) go too
            self.spawn(name, *restart)
        broker = self._broker
        if broker is not None and broker.running_pid() is None:  # type: ignore[attr-defined]
            raise RuntimeError(f"the Kafka broker stopped; see {broker.log_file}")  # type: ignore[attr-defined]

    def start_pipeline(self, env: dict[str, str], engine: str = "beam") -> None:
        from streamrec_cli.components import pipeline_args

        if engine == "flink":
            self.start_flink(env)
            return
        self.printer.begin("streaming pipeline")
        args = pipeline_args(env)
        process = self.spawn("streaming pipeline", args, env)
        self.restartable["streaming pipeline"] = (args, env)
        time.sleep(2.0)  # it is proven to work later, when the catalog shows up in the store
        if process.poll() is not None:
            raise RuntimeError(f"the pipeline exited with {process.returncode}: see {self.demo_dir / 'logs' / 'pipeline.log'}")
        self.printer.end(f"started (pid {process.pid}; log {self.demo_dir / 'logs' / 'pipeline.log'})")

    def start_flink(self, env: dict[str, str], timeout_s: float = 300.0) -> None:
        """The Flink job on a local cluster (``streamrec_cli.flinkjob``), ready once its tasks run."""
        from streamrec_cli.components import FLINK_MODULE, flink_args

        self.printer.begin("streaming pipeline on Flink")
        work_dir = self.demo_dir / "flink"
        work_dir.mkdir(parents=True, exist_ok=True)
        args = flink_args(env, work_dir)
        self.modules["streaming pipeline"] = FLINK_MODULE
        process = self.spawn("streaming pipeline", args, env)
        self.restartable["streaming pipeline"] = (args, env)
        log = self.demo_dir / "logs" / "pipeline.log"
        info = work_dir / "flink.json"
        deadline = time.monotonic() + timeout_s
        while not info.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the Flink job runner exited with {process.returncode}: see {log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Flink job did not run within {timeout_s:.0f} s: see {log}")
            time.sleep(0.5)
        self.flink_ui = str(json.loads(info.read_text())["web_ui"])
        self.printer.end(f"running (Flink web UI {self.flink_ui}; pid {process.pid}; log {log})")

    def start_serving(self, port: int, env: dict[str, str]) -> str:
        self.printer.begin(f"feed service on http://127.0.0.1:{port}")
        if port_in_use(port):
            raise RuntimeError(f"port {port} is in use: choose another with PORT=… (--port)")
        process = self.spawn("feed service", ["serve", "--port", str(port), "--demo-dir", str(self.demo_dir)], env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if process.poll() is not None:
                raise RuntimeError(f"the feed service exited with {process.returncode}: see {self.demo_dir / 'logs' / 'service.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("the feed service did not answer /healthz within 60 s")
            time.sleep(0.2)
        self.printer.end()
        return base

    def stop_all(self) -> None:
        """Stop in reverse start order; the broker last, so nothing loses its Kafka mid-flight."""
        for name, pid, _marker in reversed(self.started):
            print(f"  stopping {name} (pid {pid})…", flush=True)
            if name == "kafka broker" and self._broker is not None:
                self._broker.stop()  # type: ignore[attr-defined]
            else:
                stop_group(pid, name)
        for path in (self.demo_dir / "pids").glob("*.json"):
            path.unlink(missing_ok=True)
        self.started.clear()
