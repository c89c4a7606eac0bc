"""``LocalKafka``: one broker process, from formatting its storage to stopping it (see the package doc)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from streamrec.config import DEFAULT_KAFKA_BOOTSTRAP
from streamrec_cli.localkafka.processes import free_port, pid_alive, port_open
from streamrec_cli.localkafka.settings import (
    JVM_FLAGS,
    log4j2_properties,
    server_properties,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_LIB_DIR = REPO / "var" / "kafka" / "lib"
DEFAULT_DATA_DIR = REPO / "var" / "kafka" / "data"
DEFAULT_PORT = int(DEFAULT_KAFKA_BOOTSTRAP.rsplit(":", 1)[1])


class LocalKafkaError(RuntimeError):
    """The local broker could not be set up, started or reached; the message says why."""


def new_cluster_id(draw: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes as unpadded base64url, drawn again while it begins with
    ``-`` (``StorageTool format -t -x...`` would read it as an option; ~1 draw in 64) or is all
    zeros, as Kafka's own ``Uuid.randomUuid`` does."""
    while True:
        raw = draw()
        cluster_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        if not cluster_id.startswith("-") and any(raw[:-1]) and len(raw) == 16:
            return cluster_id


@dataclass
class LocalKafka:
    """One broker process. ``start()`` formats storage on first use, launches the JVM and waits
    until the broker answers metadata requests; ``stop()`` sends SIGTERM, waits, then kills.

    ``create_topics`` makes the streamrec topics (idempotently) once the broker answers.
    """

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    controller_port: int = 0  # 0: pick a free one at start
    lib_dir: Path = DEFAULT_LIB_DIR
    heap_mb: int = 384
    log_level: str = "WARN"
    create_topics: bool = True
    #: End the broker when the process that started it dies (tests); off for `localkafka start`.
    die_with_parent: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    started_in_s: float | None = field(default=None, init=False)
    _dump_classes_to: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.lib_dir = Path(self.lib_dir).resolve()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def _state_file(self) -> Path:
        return self.data_dir / "broker.json"

    # -- set-up -------------------------------------------------------------------------------

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise LocalKafkaError("java not found: install Java 17+ or set JAVA_HOME")
        return java

    def _classpath(self) -> str:
        if not (self.lib_dir / ".installed").exists():
            raise LocalKafkaError(f"Kafka jars missing in {self.lib_dir}: run `make jars` (infra/local/fetch-kafka.sh)")
        return str(self.lib_dir / "*")

    def _write_config(self) -> Path:
        path = self.data_dir / "server.properties"
        path.write_text(server_properties(self.port, self.controller_port, self.data_dir / "logs"))
        (self.data_dir / "log4j2.properties").write_text(log4j2_properties(self.log_file, self.log_level))
        return path

    @property
    def class_archive(self) -> Path:
        """The JVM class-data-sharing archive for this jar set (made by ``prepare()``).

        Loading Kafka's classes from it halves broker start-up (~7 s -> ~3.5 s here). Its name
        follows the jar set, so re-fetched jars never meet a stale archive.
        """
        stamp = self.lib_dir / ".installed"
        key = int(stamp.stat().st_mtime) if stamp.exists() else 0
        return self.lib_dir.parent / f"classes-{key}.jsa"

    def prepare(self, timeout_s: float = 180.0) -> Path:
        """Make the formatted-storage template and the class archive, by running this broker once.

        A one-off at install time (``infra/local/fetch-kafka.sh`` calls it), because the JVM
        writes the archive while exiting, which makes that stop slow. Returns the archive path.
        """
        archive = self.class_archive
        if archive.exists():
            return archive
        dump = archive.with_name(f"{archive.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
        self._dump_classes_to = dump
        try:
            self.start()
            clean = self.stop(timeout_s=timeout_s)
        finally:
            self._dump_classes_to = None
        if not clean or not dump.exists():
            dump.unlink(missing_ok=True)
            raise LocalKafkaError(f"the JVM wrote no class archive (clean stop: {clean}):\n{self.tail_log()}")
        if archive.exists():  # another session won the race: theirs is as good
            dump.unlink()
        else:
            dump.rename(archive)
        return archive

    def _parent_death_signal(self) -> list[str]:
        """With ``die_with_parent``: a `setpriv` prefix that makes Linux SIGTERM the broker when
        its starter dies (setpriv execs the JVM, so the broker keeps the starter as parent)."""
        setpriv = shutil.which("setpriv") if self.die_with_parent else None
        return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []

    def _jvm(self, main_class: str, *args: str, cds: Sequence[str] = ()) -> list[str]:
        return [
            self._java(),
            *cds,
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 128)}m",
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            self._classpath(),
            main_class,
            *args,
        ]

    def _format(self, config: Path) -> None:
        """Format the log dir, from a cached formatted copy when there is one.

        A freshly formatted KRaft log dir holds no ports or paths (the voters are static in
        server.properties), so one formatted per Kafka version under ``var/kafka`` is copied into
        every new data folder: that saves a JVM start (~2 s) per test session.
        """
        logs = self.data_dir / "logs"
        if (logs / "meta.properties").exists():
            return
        jars = sorted(self.lib_dir.glob("kafka_2.13-*.jar"))
        version = jars[0].stem.removeprefix("kafka_2.13-") if jars else "unknown"
        template = self.lib_dir.parent / f"formatted-{version}"
        if not (template / "meta.properties").exists():
            staging = self.lib_dir.parent / f".formatting-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            cluster_id = new_cluster_id()  # made here: saves a JVM start (`kafka-storage random-uuid`)
            staging_config = self.data_dir / "format.properties"
            staging_config.write_text(config.read_text().replace(f"log.dirs={logs}", f"log.dirs={staging}"))
            result = subprocess.run(
                self._jvm("kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(staging_config)),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            staging_config.unlink()
            if result.returncode != 0:
                shutil.rmtree(staging, ignore_errors=True)
                raise LocalKafkaError(f"formatting Kafka storage failed: {result.stderr.strip() or result.stdout.strip()}")
            try:
                staging.rename(template)  # atomic: a concurrent session either wins or finds it there
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(template, logs)

    # -- life cycle -----------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> Self:
        """Format (first time), launch and wait until the broker answers; returns self."""
        began = time.monotonic()
        running = self.running_pid()
        if running is not None:
            raise LocalKafkaError(f"a broker from {self.data_dir} already runs (pid {running}); stop it first")
        if port_open(self.port):
            raise LocalKafkaError(f"port {self.port} on 127.0.0.1 is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.controller_port:
            self.controller_port = free_port()
        config = self._write_config()
        self._format(config)
        if self._dump_classes_to is not None:
            cds = [f"-XX:ArchiveClassesAtExit={self._dump_classes_to}"]
        else:
            cds = [f"-XX:SharedArchiveFile={self.class_archive}"] if self.class_archive.exists() else []
        with open(self.data_dir / "stdout.log", "ab") as out:
            # Own session: a Ctrl-C in the terminal that started the demo does not reach the broker
            # half-way; stop() is what ends it, and the CLI keeps it running between commands.
            self._process = subprocess.Popen(
                self._parent_death_signal() + self._jvm("kafka.Kafka", str(config), cds=cds),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._state_file.write_text(
            json.dumps({"pid": self._process.pid, "port": self.port, "controller_port": self.controller_port})
        )
        try:
            self._wait_until_ready(began + timeout_s)
            if self.create_topics:
                from streamrec.kafka_topics import ensure_topics, topic_specs

                ensure_topics(self.bootstrap, topic_specs(local=True))
        except BaseException:
            self.stop()
            raise
        self.started_in_s = time.monotonic() - began
        return self

    def _wait_until_ready(self, deadline: float) -> None:
        from confluent_kafka.admin import AdminClient

        assert self._process is not None
        while not port_open(self.port):
            if self._process.poll() is not None:
                raise LocalKafkaError(f"broker exited with {self._process.returncode}:\n{self.tail_log()}")
            if time.monotonic() > deadline:
                raise LocalKafkaError(f"broker did not open port {self.port} in time:\n{self.tail_log()}")
            time.sleep(0.1)
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": 2000})
        while True:
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except Exception as exc:  # noqa: BLE001 - any failure here means "not yet"
                last_error: Exception | None = exc
            else:
                last_error = None
            if self._process.poll() is not None:
                raise LocalKafkaError(f"broker exited with {self._process.returncode}:\n{self.tail_log()}")
            if time.monotonic() > deadline:
                raise LocalKafkaError(f"broker did not answer in time ({last_error}):\n{self.tail_log()}")
            time.sleep(0.1)

    def running_pid(self) -> int | None:
        """The pid of this data folder's broker if it still runs (also one started by another process)."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            state = json.loads(self._state_file.read_text())
        except (OSError, ValueError):
            return None
        pid = int(state["pid"])
        if not pid_alive(pid):
            return None
        # A recycled pid must not be mistaken for our broker: check it runs Kafka on our config.
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return None
        if "kafka.Kafka" not in cmdline or str(self.data_dir) not in cmdline:
            return None
        return pid

    def attach(self) -> bool:
        """Adopt the port of a broker already running from this data folder; True when one runs."""
        if self.running_pid() is None:
            return False
        state = json.loads(self._state_file.read_text())
        self.port, self.controller_port = int(state["port"]), int(state["controller_port"])
        return True

    def stop(self, timeout_s: float = 20.0) -> bool:
        """SIGTERM (Kafka shuts down cleanly on it), wait up to ``timeout_s``, then SIGKILL.

        Returns False when it had to kill; True when the broker exited by itself or was not running.
        """
        pid = self.running_pid()
        if pid is None:
            self._process = None
            return True
        os.kill(pid, signal.SIGTERM)
        killed = False
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                if self._process.poll() is not None:
                    break
            elif not pid_alive(pid):
                break
            time.sleep(0.1)
        else:
            killed = True
            os.kill(pid, signal.SIGKILL)
            if self._process is not None and self._process.pid == pid:
                self._process.wait(timeout=10)
            else:  # not our child: wait until the kernel has it gone, so the port is free again
                gone_by = time.monotonic() + 10
                while pid_alive(pid) and time.monotonic() < gone_by:
                    time.sleep(0.05)
        self._process = None
        self._state_file.unlink(missing_ok=True)
        return not killed

    def tail_log(self, lines: int = 30) -> str:
        texts = []
        for path in (self.data_dir / "stdout.log", self.log_file):
            if path.exists():
                texts.extend(path.read_text(errors="replace").splitlines()[-lines:])
        return "\n".join(texts)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def detach(self) -> None:
        """Forget the process without stopping it: it keeps running after this Python exits."""
        self._process = None
