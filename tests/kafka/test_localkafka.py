"""The local broker's life cycle as the demo uses it: `python -m streamrec_cli.localkafka start|status|stop`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamrec.events.codec import default_codec
from streamrec.events.model import EventType
from streamrec.kafka import EventProducer
from streamrec.kafka_topics import TopicSpec, ensure_topics
from streamrec_cli.localkafka import (
    DEFAULT_LIB_DIR,
    LocalKafka,
    LocalKafkaError,
    free_port,
    pid_alive,
    port_open,
)
from tests.events.samples import sample_event
from tests.fixtures.kafka import read_records

pytestmark = pytest.mark.kafka


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamrec_cli.localkafka", *args], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    if not (DEFAULT_LIB_DIR / ".installed").exists():
        pytest.fail("Kafka jars missing: run `make jars`", pytrace=False)
    return tmp_path / "kafka"


def test_cli_starts_a_broker_that_outlives_it_keeps_data_across_restarts_and_stops(data_dir: Path) -> None:
    port = free_port()
    where = ["--port", str(port), "--data-dir", str(data_dir)]
    started = cli("start", *where)
    assert started.returncode == 0, started.stderr
    assert f"started: 127.0.0.1:{port}" in started.stdout
    broker = LocalKafka(data_dir=data_dir, port=port)
    try:
        status = cli("status", *where)
        assert status.returncode == 0 and f"running: 127.0.0.1:{port}" in status.stdout
        assert cli("start", *where).stdout.startswith("already running")

        codec = default_codec()
        event = sample_event(EventType.COMPLETE)
        ensure_topics(broker.bootstrap, [TopicSpec("restart.check", 1, 1)])
        with EventProducer(broker.bootstrap) as producer:
            producer.send_many_blocking("restart.check", [(event.user_id, codec.encode(event))])

        pid = broker.running_pid()
        assert pid is not None
        stopped = cli("stop", *where)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not pid_alive(pid) and not port_open(port)
        assert cli("status", *where).returncode == 1

        # The demo restarts on the same folder: the broker comes back with its data.
        assert cli("start", *where).returncode == 0
        [record] = read_records(broker.bootstrap, "restart.check", expected=1)
        assert codec.decode(record.value or b"") == event
    finally:
        broker.stop()
    assert broker.running_pid() is None


def test_start_refuses_a_port_in_use(data_dir: Path, kafka_broker: object) -> None:
    taken = int(kafka_broker.bootstrap.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    with pytest.raises(LocalKafkaError, match=f"port {taken} on 127.0.0.1 is already in use"):
        LocalKafka(data_dir=data_dir, port=taken).start()


def test_a_broker_that_cannot_start_reports_its_log(data_dir: Path) -> None:
    broker = LocalKafka(data_dir=data_dir, port=free_port(), heap_mb=384)
    broker.data_dir.mkdir(parents=True)
    # A broken config the JVM rejects at once: the error must carry the broker's own words.
    broker.log_level = "INFO"
    broker.controller_port = broker.port  # both listeners on one port: Kafka refuses to start
    with pytest.raises(LocalKafkaError, match="broker exited"):
        broker.start(timeout_s=60)
    assert broker.running_pid() is None


def test_a_broker_started_for_tests_ends_when_its_starter_is_killed(data_dir: Path) -> None:
    port = free_port()
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
            "from streamrec_cli.localkafka import LocalKafka\n"
            f"b = LocalKafka(data_dir={str(data_dir)!r}, port={port}, create_topics=False, die_with_parent=True)\n"
            "b.start()\n"
            "print(b.running_pid(), flush=True)\n"
                "time.sleep(600)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert starter.stdout is not None
        broker_pid = int(starter.stdout.readline())
        assert pid_alive(broker_pid)
    finally:
        starter.kill()  # SIGKILL: no cleanup code of the starter runs
        starter.wait(timeout=10)
    deadline = time.monotonic() + 30
    while pid_alive(broker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(broker_pid), "the broker outlived the test run that started it"
    assert not port_open(port)
