"""``python -m streamrec_cli.localkafka start|stop|status|prepare`` (see the package doc)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from streamrec_cli.localkafka.broker import (
    DEFAULT_DATA_DIR,
    DEFAULT_LIB_DIR,
    DEFAULT_PORT,
    LocalKafka,
    LocalKafkaError,
)
from streamrec_cli.localkafka.processes import free_port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamrec_cli.localkafka", description="Start, stop or prepare the local Kafka broker.")
    parser.add_argument("command", choices=["start", "stop", "status", "prepare"])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--lib-dir", type=Path, default=DEFAULT_LIB_DIR)
    parser.add_argument("--heap-mb", type=int, default=384)
    args = parser.parse_args(argv)
    broker = LocalKafka(data_dir=args.data_dir, port=args.port, lib_dir=args.lib_dir, heap_mb=args.heap_mb)
    try:
        if args.command == "prepare":
            with tempfile.TemporaryDirectory(prefix="kafka-prepare-", dir=args.lib_dir.parent) as scratch:
                warmup = LocalKafka(data_dir=Path(scratch), port=free_port(), lib_dir=args.lib_dir)
                print(f"prepared: {warmup.prepare()}")
        elif args.command == "start":
            if broker.attach():
                print(f"already running: {broker.bootstrap} (pid {broker.running_pid()})")
                return 0
            broker.start()
            broker.detach()
            print(f"started: {broker.bootstrap} in {broker.started_in_s:.1f}s (data in {broker.data_dir})")
        elif args.command == "stop":
            if broker.running_pid() is None:
                print("not running")
            else:
                broker.stop()
                print("stopped")
        else:
            if broker.attach():
                print(f"running: {broker.bootstrap} (pid {broker.running_pid()})")
            else:
                print("not running")
                return 1
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
