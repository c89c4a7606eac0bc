"""The local broker's life cycle as the demo uses it: `python -m streamrec.localkafka start|status|stop`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from streamrec.events.codec import default_codec
from streamrec.events.model import EventType
from streamrec.kafka import EventProducer, TopicSpec, ensure_topics, read_records
from streamrec.localkafka import (
    DEFAULT_LIB_DIR,
    LocalKafka,
    LocalKafkaError,
    _pid_alive,
    _port_open,
    free_port,
)
from tests.events.samples import sample_event

pytestmark = pytest.mark.kafka


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamrec.localkafka", *args], capture_output=True, text=True, timeout=120, check=False
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
        assert not _pid_alive(pid) and not _port_open(port)
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
