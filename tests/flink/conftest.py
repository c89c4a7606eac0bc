"""Fixtures of the Flink suite: a local standalone cluster (JobManager + TaskManager from the
PyFlink wheel in var/flink/venv, ``make flink``) on private ports in a temporary folder.

Every test here is marked ``flink`` (``-m "not flink"`` leaves them out). Without the Flink
virtualenv or the connector jar the tests fail and say so (``make test`` installs both first).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamrec_cli.localflink import (
    DEFAULT_LIB_DIR,
    DEFAULT_VENV,
    LocalFlink,
    LocalFlinkError,
)
from streamrec_cli.localkafka import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.flink)


def start_cluster(work_dir: Path) -> LocalFlink:
    if not (DEFAULT_VENV / "bin" / "python").exists() or not (DEFAULT_LIB_DIR / ".installed").exists():
        pytest.fail("the Flink virtualenv or connector is missing: run `make flink` (or `make test`)", pytrace=False)
    for attempt in range(3):  # a port the OS called free may be taken before the JVM binds it
        cluster = LocalFlink(work_dir=work_dir / f"try{attempt}", rest_port=free_port(), die_with_parent=True)
        try:
            return cluster.start(timeout_s=180)
        except LocalFlinkError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def flink_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFlink]:
    """One cluster per test module; stopped (no process left) at its end."""
    cluster = start_cluster(tmp_path_factory.mktemp("flink"))
    try:
        yield cluster
    finally:
        cluster.stop()
