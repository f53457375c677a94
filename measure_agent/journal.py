"""The result journal: every accepted request and every result, in SQLite, written before it is acknowledged.

A request is the client's: it is keyed by (client, request id), and a client sees only its own requests
(an admin client may read any). The request id is the idempotency key and ``digest`` (SHA-256 of the
model and every setting) tells a repeat from a different request under a reused id: a repeat is answered
from the journal and never run again, a different request is refused (:class:`RequestConflict`).

Models are stored once, content-addressed (``models``, keyed by their SHA-256), whatever the number of
requests that measure them. A request left queued or running by an agent that stopped is run again when
the agent starts (``attempts`` counts the boards that started it, so a request that brings the agent down
is given up rather than run forever). ``fetched`` records that a final answer reached the client at
least once: retention (:meth:`Journal.prune`) only ever drops requests that are final and fetched.

The journal has one writer, the agent (``exclusive=True`` takes a lock beside the file, so a second agent
on the same journal is refused); readers such as tests may open it too.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from measure_agent.errors import RequestConflict

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    digest TEXT PRIMARY KEY,        -- SHA-256 of the model bytes
    data BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    client TEXT NOT NULL,           -- the client that asked: the request and its result are its own
    request_id TEXT NOT NULL,
    digest TEXT NOT NULL,           -- SHA-256 of the request but its id (model and every setting)
    model TEXT NOT NULL,            -- models.digest
    request BLOB NOT NULL,          -- serialized MeasureRequest without its model
    state TEXT NOT NULL,            -- queued | running | done | failed
    result BLOB,                    -- serialized MeasureResult, when done
    error_kind TEXT,                -- measure_agent.errors kind, when failed
    error_code TEXT,                -- the gRPC status code it was answered with
    error_message TEXT,
    transient INTEGER NOT NULL DEFAULT 0,
    board_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,   -- times a board started it
    fetched INTEGER NOT NULL DEFAULT 0,    -- its final answer reached the client
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (client, request_id)
);
CREATE INDEX IF NOT EXISTS requests_state ON requests(state);
CREATE INDEX IF NOT EXISTS requests_model ON requests(model);
CREATE INDEX IF NOT EXISTS requests_id ON requests(request_id);
"""

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
FINAL = (DONE, FAILED)
SCHEMA_VERSION = 2

_COLUMNS = ("client, request_id, state, digest, model, request, result, error_kind, error_code, error_message, "
            "transient, board_id, attempts, fetched, created, updated")


class JournalError(RuntimeError):
    """The journal file cannot be used (written by another version, not a journal, or in use)."""


@dataclass(frozen=True)
class Entry:
    client: str
    request_id: str
    state: str
    digest: str
    model: str                      # the model's digest (Journal.model() has its bytes)
    request: bytes                  # the request without its model
    result: bytes | None
    error_kind: str | None
    error_code: str | None
    error_message: str | None
    transient: bool
    board_id: str | None
    attempts: int
    fetched: bool
    created: float
    updated: float

    @property
    def final(self) -> bool:
        return self.state in FINAL


def _entry(row) -> Entry:
    values = list(row)
    values[10] = bool(values[10])
    values[13] = bool(values[13])
    return Entry(*values)


@dataclass(frozen=True)
class PruneReport:
    requests: int                   # requests dropped
    models: int                     # models no request refers to any more, dropped
    stored_bytes: int               # models, requests and results kept


class Journal:
    """A SQLite file shared by the agent's threads (one connection, serialized by a lock)."""

    def __init__(self, path: str | Path, *, exclusive: bool = False):
        self.path = str(path)
        self._lock_fd: int | None = None
        memory = self.path == ":memory:"
        if not memory:
            file = Path(self.path)
            if file.is_dir():
                raise JournalError(f"{self.path} is a directory, not a journal file")
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JournalError(f"cannot create the journal's folder {file.parent}: {exc.strerror}") from None
            if exclusive:
                self._lock_fd = self._take_lock(file)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._open()
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise JournalError(f"{self.path}: not a usable journal ({exc})") from None
        except JournalError:
            self._release_lock()
            raise
        self._lock = threading.RLock()  # re-entered by the writes of a transaction()

    @staticmethod
    def _take_lock(file: Path) -> int:
        lock_path = f"{file}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise JournalError(f"cannot create the journal lock {lock_path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(f"{file} is in use by another running agent (lock {lock_path})") from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _open(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        has_table = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'requests'").fetchone()
        if has_table and version != SCHEMA_VERSION:
            db.close()
            raise JournalError(f"{self.path}: journal schema {version}, this agent writes schema {SCHEMA_VERSION}; "
                               "move the file away (its results stay readable with the agent that wrote it)")
        if not has_table:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # only takes effect before the first table
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(SCHEMA)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("SELECT COUNT(*) FROM requests").fetchone()  # a corrupt file fails here, not later

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._release_lock()

    # ------------------------------------------------------------ reading
    def get(self, client: str, request_id: str) -> Entry | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM requests WHERE client = ? AND request_id = ?",
                                   (client, request_id)).fetchone()
        return _entry(row) if row else None

    def find(self, request_id: str) -> list[Entry]:
        """Every client's request of this id, newest first (for an admin client)."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM requests WHERE request_id = ? ORDER BY created DESC",
                                    (request_id,)).fetchall()
        return [_entry(r) for r in rows]

    def model(self, digest: str) -> bytes:
        with self._lock:
            row = self._db.execute("SELECT data FROM models WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise JournalError(f"{self.path}: model {digest} is missing (the journal is inconsistent)")
        return bytes(row[0])

    def unfinished(self) -> list[Entry]:
        """Requests accepted but not finished, oldest first: to run again after a restart."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM requests WHERE state IN (?, ?) ORDER BY created",
                                    (QUEUED, RUNNING)).fetchall()
        return [_entry(r) for r in rows]

    def count(self, state: str) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ?", (state,)).fetchone()[0]

    def stored_bytes(self) -> int:
        """Bytes of models, requests and results the journal holds (its file has some overhead on top)."""
        with self._lock:
            return self._stored_bytes()

    def _stored_bytes(self) -> int:
        models = self._db.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM models").fetchone()[0]
        requests = self._db.execute("SELECT COALESCE(SUM(LENGTH(request) + COALESCE(LENGTH(result), 0)), 0) "
                                    "FROM requests").fetchone()[0]
        return int(models + requests)

    def check(self) -> list[str]:
        """Problems of the journal's consistency ([] when consistent): SQLite's integrity check, requests whose
        model is missing, done requests without a result, failed ones without an error."""
        with self._lock:
            problems = [r[0] for r in self._db.execute("PRAGMA integrity_check").fetchall() if r[0] != "ok"]
            missing = self._db.execute("SELECT COUNT(*) FROM requests WHERE model NOT IN (SELECT digest FROM models)"
                                       ).fetchone()[0]
            no_result = self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ? AND result IS NULL",
                                         (DONE,)).fetchone()[0]
            no_error = self._db.execute("SELECT COUNT(*) FROM requests WHERE state = ? AND error_kind IS NULL",
                                        (FAILED,)).fetchone()[0]
        problems += [f"{n} {what}" for n, what in ((missing, "requests without their model"),
                                                    (no_result, "done requests without a result"),
                                                    (no_error, "failed requests without an error")) if n]
        return problems

    # ------------------------------------------------------------ writing
    def accept(self, client: str, request_id: str, digest: str, model_digest: str, model: bytes,
               request: bytes) -> tuple[Entry, bool]:
        """Record a new request as queued (its model stored once). Returns the entry and whether it is new.

        A request that failed transiently is queued again; any other known request is returned as it is;
        a known request id with another ``digest`` raises :class:`RequestConflict`.
        """
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT state, transient, digest FROM requests WHERE client = ? AND "
                                       "request_id = ?", (client, request_id)).fetchone()
                if row is not None and row[2] != digest:
                    raise RequestConflict(f"request id {request_id!r} reused with a different request (another "
                                          "model or settings); use a new request id")
                if row is None:
                    self._db.execute("INSERT OR IGNORE INTO models (digest, data, created) VALUES (?, ?, ?)",
                                     (model_digest, model, now))
                    self._db.execute(
                        "INSERT INTO requests (client, request_id, digest, model, request, state, created, updated) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (client, request_id, digest, model_digest, request, QUEUED, now, now))
                    new = True
                elif row[0] == FAILED and row[1]:
                    self._db.execute(
                        "UPDATE requests SET state = ?, error_kind = NULL, error_code = NULL, error_message = NULL, "
                        "transient = 0, attempts = 0, fetched = 0, updated = ? WHERE client = ? AND request_id = ?",
                        (QUEUED, now, client, request_id))
                    new = True
                else:
                    new = False
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            row = self._db.execute(f"SELECT {_COLUMNS} FROM requests WHERE client = ? AND request_id = ?",
                                   (client, request_id)).fetchone()
        return _entry(row), new

    @contextmanager
    def transaction(self):
        """Several writes made durable together (one commit): ``with journal.transaction(): ...``.
        Nothing of them is kept when one raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def mark_running(self, client: str, request_id: str, board_id: str) -> None:
        self._update(client, request_id, "state = ?, board_id = ?, attempts = attempts + 1", (RUNNING, board_id))

    def finish(self, client: str, request_id: str, result: bytes) -> None:
        self._update(client, request_id, "state = ?, result = ?", (DONE, result))

    def fail(self, client: str, request_id: str, kind: str, code: str, message: str, transient: bool) -> None:
        self._update(client, request_id, "state = ?, error_kind = ?, error_code = ?, error_message = ?, transient = ?",
                     (FAILED, kind, code, message, int(transient)))

    def mark_fetched(self, client: str, request_id: str) -> None:
        self.mark_fetched_many([(client, request_id)])

    def mark_fetched_many(self, keys: list[tuple[str, str]]) -> None:
        """Record that the final answers of these (client, request id) reached their clients (one transaction)."""
        if not keys:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("UPDATE requests SET fetched = 1 WHERE client = ? AND request_id = ? AND "
                                     f"fetched = 0 AND state IN ('{DONE}', '{FAILED}')", keys)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _update(self, client: str, request_id: str, assignments: str, values: tuple) -> None:
        with self._lock:
            self._db.execute(f"UPDATE requests SET {assignments}, updated = ? WHERE client = ? AND request_id = ?",
                             (*values, time.time(), client, request_id))

    def prune(self, max_age_s: float | None = None, max_bytes: int | None = None,
              now: float | None = None) -> PruneReport:
        """Drop final, fetched requests older than ``max_age_s``, then the oldest final, fetched ones while the
        journal holds more than ``max_bytes``; then the models no request refers to. A request that is not
        final, or whose answer its client has not fetched yet, is never dropped."""
        now = time.time() if now is None else now
        dropped = models = 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if max_age_s is not None:
                    dropped += self._db.execute(
                        "DELETE FROM requests WHERE fetched = 1 AND state IN (?, ?) AND updated < ?",
                        (DONE, FAILED, now - max_age_s)).rowcount
                if max_bytes is not None:
                    while self._stored_bytes() > max_bytes:
                        victims = self._db.execute(
                            "SELECT client, request_id FROM requests WHERE fetched = 1 AND state IN (?, ?) "
                            "ORDER BY updated LIMIT 64", (DONE, FAILED)).fetchall()
                        if not victims:
                            break
                        self._db.executemany("DELETE FROM requests WHERE client = ? AND request_id = ?", victims)
                        dropped += len(victims)
                        models += self._drop_orphan_models()
                models += self._drop_orphan_models()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("PRAGMA incremental_vacuum")
            stored = self._stored_bytes()
        return PruneReport(dropped, models, stored)

    def _drop_orphan_models(self) -> int:
        return self._db.execute("DELETE FROM models WHERE digest NOT IN (SELECT DISTINCT model FROM requests)").rowcount
