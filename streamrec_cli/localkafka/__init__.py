"""A real single-node Apache Kafka (KRaft, combined broker+controller) on 127.0.0.1.

For tests, the demo and hand work on one machine. The jars come from Maven Central through
``infra/local/fetch-kafka.sh`` (``make jars``) into ``var/kafka/lib``; the broker's data, its
generated ``server.properties``, log4j2 config, log and pid file live in one data folder (by
default ``var/kafka/data``, git-ignored).

From Python::

    with LocalKafka(data_dir=tmp, port=free_port()) as broker:   # formats, starts, waits, makes topics
        produce_to(broker.bootstrap)
                                                                   # leaving the block stops it

From a shell (the broker keeps running after the command returns)::

    python -m streamrec_cli.localkafka start [--port 9092] [--data-dir var/kafka/data]
    python -m streamrec_cli.localkafka status
    python -m streamrec_cli.localkafka stop
    python -m streamrec_cli.localkafka prepare    # once, at install: storage template + JVM class archive

Locally each topic gets at most ``LOCAL_MAX_PARTITIONS`` partitions and replication factor 1 (see
``streamrec.kafka.topic_specs``): one broker on two cores does not need twelve partitions, and
keying by user keeps per-user order at any partition count.
"""

from streamrec_cli.localkafka.broker import (
    DEFAULT_DATA_DIR,
    DEFAULT_LIB_DIR,
    DEFAULT_PORT,
    LocalKafka,
    LocalKafkaError,
)
from streamrec_cli.localkafka.processes import free_port, pid_alive, port_open

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_LIB_DIR",
    "DEFAULT_PORT",
    "LocalKafka",
    "LocalKafkaError",
    "free_port",
    "pid_alive",
    "port_open",
]
