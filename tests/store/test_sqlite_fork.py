"""The embedded store across a fork: a child process opens its own SQLite connection."""

from __future__ import annotations

import os
from pathlib import Path

from streamrec.model import UserState
from streamrec.store.sqlite import SqliteStore


def test_a_forked_child_reads_through_its_own_connection(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        store.put_users([UserState("u", seen=["a"])])
        assert store.get_user_versions(["u"]) == {"u": 1}
        parents = store._local.conn
        reader, writer = os.pipe()
        child = os.fork()
        if child == 0:  # the child: a connection of its own, and the same answers
            try:
                answer = store.get_user_versions(["u"])
                own = store._local.conn is not parents
                os.write(writer, f"{answer == {'u': 1}} {own}".encode())
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        said = os.read(reader, 64).decode()
        os.close(reader)
        os.close(writer)
        assert said == "True True"
        assert store._local.conn is parents  # the parent keeps its own
    finally:
        store.close()
