"""The result journal: every accepted request and every result, in SQLite, written before it is acknowledged.

A request id is the client's idempotency key. A request the journal holds as done is answered from
the journal and never run again; one left queued or running by an agent that stopped is run again
when the agent starts.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    state TEXT NOT NULL,            -- queued | running | done | failed
    request BLOB NOT NULL,          -- serialized MeasureRequest
    result BLOB,                    -- serialized MeasureResult, when done
    error_kind TEXT,                -- measure_agent.errors kind, when failed
    error_message TEXT,
    transient INTEGER NOT NULL DEFAULT 0,
    board_id TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
"""

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
SCHEMA_VERSION = 1


class JournalError(RuntimeError):
    """The journal file cannot be used (written by another version, or not a journal)."""


@dataclass(frozen=True)
class Entry:
    request_id: str
    client: str
    state: str
    request: bytes
    result: bytes | None
    error_kind: str | None
    error_message: str | None
    transient: bool
    board_id: str | None


class Journal:
    """A SQLite file shared by the agent's threads (one connection, serialized by a lock)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        has_table = self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone()
        if has_table and version != SCHEMA_VERSION:
            self._db.close()
            raise JournalError(f"{self.path}: journal schema {version}, this agent writes schema {SCHEMA_VERSION}; "
                               "move the file away (its results stay readable with the agent that wrote it)")
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, request_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(
                "SELECT request_id, client, state, request, result, error_kind, error_message, transient, board_id "
                "FROM requests WHERE request_id = ?", (request_id,)).fetchone()
        return Entry(*row[:7], bool(row[7]), row[8]) if row else None

    def accept(self, request_id: str, client: str, request: bytes) -> tuple[Entry, bool]:
        """Record a new request as queued. Returns the entry and whether it was new.

        A request that failed transiently is queued again; any other known request is returned as it is.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT state, transient FROM requests WHERE request_id = ?",
                                       (request_id,)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO requests (request_id, client, state, request, created, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?)", (request_id, client, QUEUED, request, now, now))
                    new = True
                elif row[0] == FAILED and row[1]:
                    self._db.execute(
                        "UPDATE requests SET state = ?, request = ?, error_kind = NULL, error_message = NULL, "
                        "transient = 0, updated = ? WHERE request_id = ?", (QUEUED, request, now, request_id))
                    new = True
                else:
                    new = False
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return self.get(request_id), new

    def mark_running(self, request_id: str, board_id: str) -> None:
        self._update(request_id, "state = ?, board_id = ?", (RUNNING, board_id))

    def finish(self, request_id: str, result: bytes) -> None:
        self._update(request_id, "state = ?, result = ?", (DONE, result))

    def fail(self, request_id: str, kind: str, message: str, transient: bool) -> None:
        self._update(request_id, "state = ?, error_kind = ?, error_message = ?, transient = ?",
                     (FAILED, kind, message, int(transient)))

    def unfinished(self) -> list[Entry]:
        """Requests accepted but not finished, oldest first: to run again after a restart."""
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT request_id FROM requests WHERE state IN (?, ?) ORDER BY created", (QUEUED, RUNNING))]
        return [self.get(i) for i in ids]

    def count(self, state: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ?", (state,)).fetchone()[0]

    def _update(self, request_id: str, assignments: str, values: tuple) -> None:
        with self._lock:
            self._db.execute(f"UPDATE requests SET {assignments}, updated = ? WHERE request_id = ?",
                             (*values, time.time(), request_id))
