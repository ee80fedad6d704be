"""Outbox: durable across SIGKILL, ordered, bounded, thread-safe, clear errors."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edge.outbox import Entry, Outbox, OutboxError

REPO = Path(__file__).resolve().parents[2]
TOPIC = "liftwatch/v1/site/cam/lift"


def payload(seq: int) -> bytes:
    return b'{"seq":%d}' % seq


def test_add_assigns_consecutive_seq_and_pending_is_oldest_first(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        added = [outbox.add(TOPIC, payload) for _ in range(5)]
        assert [e.seq for e in added] == [0, 1, 2, 3, 4]
        assert outbox.pending() == added
        assert outbox.pending(limit=2) == added[:2]
        assert outbox.pending(limit=2, after_id=added[1].id) == added[2:4]
        assert added[3].payload == b'{"seq":3}' and added[3].topic == TOPIC
        assert outbox.depth() == 5


def test_ack_deletes_only_that_entry_and_ignores_unknown_ids(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite") as outbox:
        a, b, c = (outbox.add(TOPIC, payload) for _ in range(3))
        outbox.ack(b.id)
        outbox.ack(b.id)
        outbox.ack(10_000)
        assert outbox.pending() == [a, c]
        assert outbox.depth() == 2


def test_seq_dropped_and_entries_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path, max_events=2) as outbox:
        for _ in range(4):
            outbox.add(TOPIC, payload)
        outbox.ack(outbox.pending()[0].id)
    with Outbox(path, max_events=2) as outbox:
        assert [e.seq for e in outbox.pending()] == [3]
        assert outbox.dropped == 2
        assert outbox.depth() == 1
        assert outbox.add(TOPIC, payload).seq == 4


def test_seq_is_not_reused_after_everything_is_acked(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        for _ in range(3):
            outbox.ack(outbox.add(TOPIC, payload).id)
    with Outbox(path) as outbox:
        entry = outbox.add(TOPIC, payload)
        assert entry.seq == 3
        assert entry.id > 3


def test_full_outbox_drops_oldest_keeps_order_and_counts(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.sqlite", max_events=10) as outbox:
        for _ in range(10 + 7):
            outbox.add(TOPIC, payload)
        assert outbox.depth() == 10
        assert outbox.dropped == 7
        assert [e.seq for e in outbox.pending(limit=100)] == list(range(7, 17))


def test_smaller_max_events_at_reopen_trims_on_next_add(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        for _ in range(10):
            outbox.add(TOPIC, payload)
    with Outbox(path, max_events=4) as outbox:
        outbox.add(TOPIC, payload)
        assert outbox.depth() == 4
        assert outbox.dropped == 7
        assert [e.seq for e in outbox.pending()] == [7, 8, 9, 10]


def test_failing_payload_builder_stores_nothing_and_consumes_no_seq(tmp_path: Path) -> None:
    def broken(seq: int) -> bytes:
        raise ValueError("bad event")

    with Outbox(tmp_path / "o.sqlite") as outbox:
        outbox.add(TOPIC, payload)
        with pytest.raises(ValueError, match="bad event"):
            outbox.add(TOPIC, broken)
        with pytest.raises(TypeError):
            outbox.add(TOPIC, lambda seq: "not bytes")  # type: ignore[arg-type,return-value]
        assert outbox.depth() == 1
        assert outbox.add(TOPIC, payload).seq == 1


_KILLER = """
import os, signal, sys
from pathlib import Path
from edge.outbox import Outbox
outbox = Outbox(Path(sys.argv[1]))
for _ in range(int(sys.argv[2])):
    outbox.add("t", lambda seq: b"event %d" % seq)
first = outbox.pending(limit=1)[0]
outbox.ack(first.id)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_events_added_before_sigkill_are_there_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, str(path), "200"], cwd=REPO, capture_output=True
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    with Outbox(path) as outbox:
        entries = outbox.pending(limit=1000)
        assert [e.seq for e in entries] == list(range(1, 200))
        assert entries[-1].payload == b"event 199"
        assert outbox.add("t", payload).seq == 200


_WRITER = """
import sys
from pathlib import Path
from edge.outbox import Outbox
outbox = Outbox(Path(sys.argv[1]))
while True:
    entry = outbox.add("t", lambda seq: b"%d" % seq * 100)
    print(entry.seq, flush=True)
"""


def test_sigkill_at_any_moment_keeps_every_add_that_returned(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    reported = [int(child.stdout.readline()) for _ in range(300)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    reported += [int(line) for line in child.stdout.read().split()]
    with Outbox(path) as outbox:
        stored = [e.seq for e in outbox.pending(limit=len(reported) + 10)]
        assert stored[: len(reported)] == reported == list(range(len(reported)))
        assert len(stored) <= len(reported) + 1
        assert outbox.add("t", payload).seq == len(stored)


def test_concurrent_add_and_ack_lose_nothing(tmp_path: Path) -> None:
    n = 2000
    acked: list[int] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def acker(outbox: Outbox) -> None:
        try:
            after = 0
            while len(acked) < n:
                batch = outbox.pending(limit=50, after_id=after)
                if not batch and done.is_set() and not outbox.pending(after_id=after):
                    break
                for entry in batch:
                    outbox.ack(entry.id)
                    acked.append(entry.seq)
                    after = entry.id
        except BaseException as e:
            errors.append(e)

    with Outbox(tmp_path / "o.sqlite") as outbox:
        thread = threading.Thread(target=acker, args=(outbox,))
        thread.start()
        for _ in range(n):
            outbox.add(TOPIC, payload)
        done.set()
        thread.join(timeout=60)
        assert not thread.is_alive()
        assert not errors
        assert acked == list(range(n))
        assert outbox.depth() == 0


def test_many_threads_adding_get_distinct_ordered_seqs(tmp_path: Path) -> None:
    threads, per_thread = 4, 300
    errors: list[BaseException] = []
    path = tmp_path / "o.sqlite"

    def adder(outbox: Outbox) -> None:
        try:
            for _ in range(per_thread):
                outbox.add(TOPIC, payload)
                outbox.depth()
        except BaseException as e:
            errors.append(e)

    with Outbox(path) as outbox:
        workers = [threading.Thread(target=adder, args=(outbox,)) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not errors
        entries = outbox.pending(limit=threads * per_thread + 1)
        assert [e.seq for e in entries] == list(range(threads * per_thread))
        assert [e.payload for e in entries] == [payload(e.seq) for e in entries]
        assert outbox.depth() == threads * per_thread


def test_disk_full_raises_clear_error_and_keeps_what_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        db = outbox._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages + 3}")
        big = os.urandom(700)
        stored: list[Entry] = []
        with pytest.raises(OutboxError) as raised:
            for _ in range(1000):
                stored.append(outbox.add(TOPIC, lambda seq: big))
        message = str(raised.value)
        assert "disk full" in message and str(path) in message
        assert stored, "the cap should leave room for a few events"
        assert outbox.depth() == len(stored)
        assert outbox.pending(limit=1000) == stored
        outbox.ack(stored[0].id)
        db.execute("PRAGMA max_page_count = 1073741823")
        assert outbox.add(TOPIC, payload).seq == len(stored)
    with Outbox(path) as outbox:
        assert [e.seq for e in outbox.pending(limit=1000)] == list(range(1, len(stored) + 1))


def test_corrupt_file_raises_naming_it_and_is_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    garbage = b"this is not sqlite " * 500
    path.write_bytes(garbage)
    with pytest.raises(OutboxError, match=str(path)):
        Outbox(path)
    assert path.read_bytes() == garbage


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (name TEXT)")
    db.close()
    with pytest.raises(OutboxError, match="not a liftwatch outbox"):
        Outbox(path)


def test_unwritable_path_raises_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    path = blocker / "o.sqlite"
    with pytest.raises(OutboxError, match=str(path)):
        Outbox(path)


def test_second_agent_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    with Outbox(path) as outbox:
        outbox.add(TOPIC, payload)
        with pytest.raises(OutboxError, match="in use by another process"):
            Outbox(path)
        assert outbox.add(TOPIC, payload).seq == 1


def test_missing_folder_is_created(tmp_path: Path) -> None:
    with Outbox(tmp_path / "a" / "b" / "o.sqlite") as outbox:
        assert outbox.add(TOPIC, payload).seq == 0


def test_closed_outbox_raises(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite")
    outbox.close()
    outbox.close()
    with pytest.raises(OutboxError, match="closed"):
        outbox.add(TOPIC, payload)


def test_low_disk_refuses_adds_but_keeps_acks_working(tmp_path: Path) -> None:
    """Below the reserve the outbox stops growing, so what it holds can still be deleted;
    the free pages a drained outbox leaves inside its file count as room again."""
    with Outbox(tmp_path / "o.sqlite") as outbox:
        stored = [outbox.add(TOPIC, payload) for _ in range(300)]
        outbox.reserve_bytes = shutil.disk_usage(tmp_path).free + 2**30
        with pytest.raises(OutboxError) as raised:
            outbox.add(TOPIC, payload)
        assert "disk full" in str(raised.value) and "kept in reserve" in str(raised.value)
        assert outbox.depth() == 300
        for entry in stored:
            outbox.ack(entry.id)
        assert outbox.depth() == 0
        outbox.reserve_bytes = shutil.disk_usage(tmp_path).free + 16 * 1024
        assert outbox.add(TOPIC, payload).seq == 300, "the emptied pages make room"
