"""Durable, bounded, ordered store of events waiting for the broker's acknowledgement.

Every event is written here before it is published and deleted only after PUBACK, so a
broker outage, a network cut or a killed agent loses nothing: after a restart the publisher
resends what is still pending, in order (at least once; receivers dedup by ``event_id``).

SQLite in WAL mode, one connection guarded by a lock (the agent loop adds, the MQTT network
thread acks). ``locking_mode=EXCLUSIVE`` makes the agent the only user of its file: a second
agent pointed at the same outbox gets a clear error instead of interleaving sequence numbers.

Durability: ``synchronous=NORMAL`` by default. In WAL mode a commit is in the operating
system's hands when ``add`` returns, so an agent crash or SIGKILL loses nothing; only a power
loss or kernel crash can lose the last few commits (never corrupt the file). ``FULL`` closes
that gap with an fsync per commit. Measured with ``bench/edge_delivery.py --outbox-only``
(add → pending → ack, 760-byte events, 2-core VM, virtio disk): NORMAL about 15,000 events/s,
FULL about 2,600 — barely above the 2,000 target here and far below it on an SD card, where
an fsync costs milliseconds. Lifts come a few per minute, but a reconnect drains a backlog,
so NORMAL it is; pass ``synchronous="FULL"`` where power cuts are common.

Disk space: ``add`` refuses (``OutboxError``, "disk full") while less than
``reserve_bytes`` are free (on the file system, plus free pages inside the file, which new
entries reuse), so the outbox never fills the disk itself: stored entries can still be
acknowledged and deleted (a delete needs room in the WAL, a checkpoint room in the main
file), so the outbox drains once the broker is back and then takes new events again.
Without the reserve an outbox that grew to the last byte stayed stuck for good, every ack
and every add refused. The WAL is checkpointed every ``WAL_CHECKPOINT_PAGES`` pages, which
keeps what a checkpoint needs well inside the reserve. If something else fills the disk to
the last byte, ``ack`` may fail too until space is freed; an entry whose ack failed is
simply sent again later (receivers dedup).

Bounded: past ``max_events`` the oldest entries are dropped in the same transaction as the
insert, and the number dropped is kept in the file, like the sequence counter, so both
survive restarts.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_RESERVE_BYTES = 4 * 1024 * 1024
WAL_CHECKPOINT_PAGES = 256
"""1 MiB of 4 KiB pages: a checkpoint never needs more room than the reserve leaves."""
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq INTEGER NOT NULL,
    dropped INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, next_seq, dropped) VALUES (1, 0, 0);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
"""

_CAUSES = {
    "SQLITE_FULL": "disk full",
    "SQLITE_READONLY": "read-only",
    "SQLITE_CANTOPEN": "cannot open the file",
    "SQLITE_NOTADB": "not a SQLite database (corrupt?)",
    "SQLITE_CORRUPT": "corrupt database",
    "SQLITE_BUSY": "in use by another process",
    "SQLITE_LOCKED": "in use by another process",
    "SQLITE_IOERR": "I/O error",
    "SQLITE_PERM": "permission denied",
}


class OutboxError(RuntimeError):
    """The outbox cannot store or read events; the message names the file and the cause.

    A failed ``add`` stores nothing and changes nothing: what was stored before is kept.
    """


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored event; ``id`` orders entries and is what ``ack`` takes."""

    id: int
    seq: int
    topic: str
    payload: bytes
    created: float


class Outbox:
    """SQLite-backed outbox; see the module docstring for the guarantees."""

    def __init__(
        self,
        path: Path,
        max_events: int = DEFAULT_MAX_EVENTS,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, got {max_events}")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, got {synchronous!r}")
        self.path = Path(path)
        self.max_events = max_events
        self.reserve_bytes = reserve_bytes
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutboxError(f"outbox {self.path}: cannot create its folder ({e})") from e
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0.5
            )
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise OutboxError(f"outbox {self.path}: cannot use WAL mode (got {mode})")
            db.execute(f"PRAGMA synchronous = {synchronous}")
            db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
            self._check_schema(db)
            db.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            )
            self._depth = int(db.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
            self._dropped = int(db.execute("SELECT dropped FROM meta").fetchone()[0])
        except sqlite3.Error as e:
            if db is not None:
                db.close()
            raise self._error("cannot open", e) from e
        except OutboxError:
            if db is not None:
                db.close()
            raise
        self._db = db

    def _check_schema(self, db: sqlite3.Connection) -> None:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
        if version != SCHEMA_VERSION and (version != 0 or tables):
            raise OutboxError(
                f"outbox {self.path}: not a liftwatch outbox (schema version {version}, "
                f"expected {SCHEMA_VERSION}); move it aside or point outbox.path elsewhere"
            )

    def _error(self, action: str, e: sqlite3.Error) -> OutboxError:
        name = getattr(e, "sqlite_errorname", "")
        cause = next((c for code, c in _CAUSES.items() if name.startswith(code)), "error")
        return OutboxError(f"outbox {self.path}: {action}: {cause} ({e})")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError(f"outbox {self.path}: closed")
        return self._db

    def add(self, topic: str, make_payload: Callable[[int], bytes]) -> Entry:
        """Store one event with the next ``seq``; ``make_payload(seq)`` builds its bytes.

        Sequence allocation, insert and dropping the oldest beyond ``max_events`` are one
        transaction: if anything fails (disk full, ``make_payload`` raises) nothing changes.
        """
        with self._lock:
            db = self._conn()
            free = self._room(db)
            if free is not None and free < self.reserve_bytes:
                raise OutboxError(
                    f"outbox {self.path}: event not stored ({self._depth} kept): disk full "
                    f"({free // 1024} KiB free, {self.reserve_bytes // 1024} KiB kept in reserve "
                    "so stored events can still be delivered and deleted)"
                )
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    seq = int(db.execute("SELECT next_seq FROM meta").fetchone()[0])
                    payload = make_payload(seq)
                    if not isinstance(payload, bytes):
                        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
                    created = time.time()
                    over = self._depth + 1 - self.max_events
                    if over > 0:
                        db.execute(
                            "DELETE FROM entries WHERE id IN "
                            "(SELECT id FROM entries ORDER BY id LIMIT ?)",
                            (over,),
                        )
                    cur = db.execute(
                        "INSERT INTO entries (seq, topic, payload, created) VALUES (?, ?, ?, ?)",
                        (seq, topic, payload, created),
                    )
                    db.execute(
                        "UPDATE meta SET next_seq = ?, dropped = dropped + ?",
                        (seq + 1, max(over, 0)),
                    )
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise self._error(f"event not stored ({self._depth} kept)", e) from e
            entry_id = cur.lastrowid
            assert entry_id is not None
            if over > 0:
                self._depth -= over
                self._dropped += over
            self._depth += 1
            return Entry(entry_id, seq, topic, payload, created)

    def _room(self, db: sqlite3.Connection) -> int | None:
        """Free bytes on the file system plus free pages inside the file (deleted entries
        leave those, and new ones reuse them); None when it cannot be told."""
        try:
            st = os.statvfs(self.path.parent)
            pages = db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = db.execute("PRAGMA page_size").fetchone()[0]
        except (OSError, sqlite3.Error):
            return None
        return int(st.f_bavail * st.f_frsize + pages * page_size)

    def pending(self, limit: int = 100, after_id: int = 0) -> list[Entry]:
        """Up to ``limit`` stored entries with ``id > after_id``, oldest first."""
        with self._lock:
            try:
                rows = (
                    self._conn()
                    .execute(
                        "SELECT id, seq, topic, payload, created FROM entries "
                        "WHERE id > ? ORDER BY id LIMIT ?",
                        (after_id, limit),
                    )
                    .fetchall()
                )
            except sqlite3.Error as e:
                raise self._error("cannot read", e) from e
        return [Entry(int(i), int(s), t, bytes(p), float(c)) for i, s, t, p, c in rows]

    def ack(self, entry_id: int) -> None:
        """Delete an entry the broker acknowledged; unknown or dropped ids are ignored."""
        with self._lock:
            try:
                cur = self._conn().execute("DELETE FROM entries WHERE id = ?", (entry_id,))
            except sqlite3.Error as e:
                raise self._error(f"cannot delete entry {entry_id}", e) from e
            self._depth -= cur.rowcount

    def depth(self) -> int:
        """Entries stored and not yet acknowledged."""
        with self._lock:
            self._conn()
            return self._depth

    @property
    def dropped(self) -> int:
        """Entries dropped (oldest first) because the outbox was full, over its lifetime."""
        with self._lock:
            return self._dropped

    def close(self) -> None:
        """Checkpoint and close; further calls raise ``OutboxError``. Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
