"""Conformance: one writer and many readers at once, in threads and in separate processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path

from streamrec.model import HistoryEntry, UserState
from streamrec.store.base import Store

WRITES = 150

# The writer process: what a pipeline worker does (whole-state puts and co-watch increments).
WRITER = textwrap.dedent("""
    import sys
    from streamrec.store import open_store
    from streamrec.model import HistoryEntry, UserState
    url, uid, a, b, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
    with open_store(url) as store:
        for i in range(n):
            store.put_users([UserState(uid, history=[HistoryEntry(a, i)], seen=[str(i)])])
            store.add_cowatch({(a, b): 1})
""")

# A reader process: what a serving worker does; checks it never sees state go backwards.
READER = textwrap.dedent("""
    import sys, time
    from streamrec.store import open_store
    url, uid, a, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    deadline, last, reads = time.monotonic() + 60, -1, 0
    with open_store(url) as store:
        while time.monotonic() < deadline:
            user = store.get_users([uid])[uid]
            assert user.version >= last, (user.version, last)
            assert user.seen == [str(user.history[0].ts)], "a torn read"
            last, reads = user.version, reads + 1
            store.get_neighbours([a], 10)
            if last >= target:
                print(reads)
                sys.exit(0)
    sys.exit(f"reader stopped at version {last}, wanted {target}")
""")


def test_one_writer_thread_and_many_reader_threads(store: Store, key: Callable[[str], str]) -> None:
    uid, a, b = key("u"), key("a"), key("b")
    store.put_users([UserState(uid, history=[HistoryEntry(a, -1)], seen=["-1"])])
    base = store.get_users([uid])[uid].version
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for i in range(WRITES):
                store.put_users([UserState(uid, history=[HistoryEntry(a, i)], seen=[str(i)])])
                store.add_cowatch({(a, b): 1, (b, a): 1})
        except BaseException as exc:  # noqa: BLE001 -- a thread hands whatever it hit to the test
            errors.append(exc)
        finally:
            done.set()

    def read() -> None:
        last_version, last_count = -1, 0
        try:
            while not done.is_set():
                user = store.get_users([uid])[uid]
                assert user.version >= last_version
                assert user.seen == [str(user.history[0].ts)]  # never half of one write
                count = dict(store.get_neighbours([a], 5).get(a, [])).get(b, 0)
                assert count >= last_count
                last_version, last_count = user.version, count
        except BaseException as exc:  # noqa: BLE001 -- as above
            errors.append(exc)

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert store.get_users([uid])[uid].version == base + WRITES
    assert store.get_neighbours([a, b], 5) == {a: [(b, WRITES)], b: [(a, WRITES)]}


def test_one_writer_process_and_reader_processes(store: Store, store_url: str, key: Callable[[str], str],
                                                 repo_root: Path) -> None:
    uid, a, b = key("u"), key("a"), key("b")
    store.put_users([UserState(uid, history=[HistoryEntry(a, -1)], seen=["-1"])])
    target = store.get_users([uid])[uid].version + WRITES

    def spawn(script: str, *args: object) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", script, store_url, *map(str, args)], cwd=repo_root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    readers = [spawn(READER, uid, a, target) for _ in range(2)]
    writer = spawn(WRITER, uid, a, b, WRITES)
    # this process reads too, while the others run
    while writer.poll() is None:
        user = store.get_users([uid])[uid]
        assert user.seen == [str(user.history[0].ts)]
    for proc in [writer, *readers]:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert store.get_users([uid])[uid].version == target
    assert store.get_neighbours([a], 5) == {a: [(b, WRITES)]}
