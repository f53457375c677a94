"""The journal writer: the boards' reports journaled in order, several per commit, off the boards' threads."""

from __future__ import annotations

import sqlite3
import threading

from measure_agent.journal import DONE, FAILED, RUNNING, Journal
from measure_agent.journal_writer import JournalWriter


def _journal_with(tmp_path, n: int) -> Journal:
    journal = Journal(tmp_path / "journal.sqlite")
    for i in range(n):
        journal.accept("ci", f"r{i}", f"digest-{i}", "model", b"model bytes", b"request")
    return journal


def _commits(journal: Journal) -> list[int]:
    """Counts the journal's commits from now on (SQLite's commit hook is not in Python: wrap execute)."""
    counted = [0]
    db = journal._db

    class Counting:
        def execute(self, sql, *args):
            if sql.strip().upper() == "COMMIT":
                counted[0] += 1
            return db.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(db, name)

    journal._db = Counting()
    return counted


def test_reports_are_journaled_in_order_and_then_followed_up(tmp_path):
    journal = _journal_with(tmp_path, 2)
    writer = JournalWriter(journal)
    told: list[tuple[str, object]] = []
    writer.put(lambda j: j.mark_running("ci", "r0", "vb-0"))
    writer.put(lambda j: j.finish("ci", "r0", b"result"), lambda failed: told.append(("r0", failed)))
    writer.put(lambda j: j.mark_running("ci", "r1", "vb-0"))
    writer.put(lambda j: j.fail("ci", "r1", "board", "DEADLINE_EXCEEDED", "no answer", False),
               lambda failed: told.append(("r1", failed)))
    writer.stop()
    assert told == [("r0", None), ("r1", None)]
    assert journal.get("ci", "r0").state == DONE and journal.get("ci", "r0").result == b"result"
    assert journal.get("ci", "r0").attempts == 1
    assert journal.get("ci", "r1").state == FAILED and journal.get("ci", "r1").error_message == "no answer"
    journal.close()


def test_waiting_reports_share_one_commit(tmp_path):
    journal = _journal_with(tmp_path, 10)
    commits = _commits(journal)
    writer = JournalWriter(journal)
    gate, inside = threading.Event(), threading.Event()

    def held(j: Journal) -> None:  # the first write holds the writer until the other nine are waiting
        inside.set()
        gate.wait(10)
        j.mark_running("ci", "r0", "vb-0")

    writer.put(held)
    inside.wait(10)
    for i in range(1, 10):
        writer.put(lambda j, i=i: j.mark_running("ci", f"r{i}", "vb-0"))
    gate.set()
    writer.stop()
    assert commits[0] == 2  # the held write's, then the nine waiting ones together
    assert all(journal.get("ci", f"r{i}").state == RUNNING for i in range(10))
    journal.close()


def test_a_failing_write_fails_alone(tmp_path):
    journal = _journal_with(tmp_path, 2)
    writer = JournalWriter(journal)
    gate = threading.Event()
    writer.put(lambda j: gate.wait(10))
    told: dict[str, object] = {}

    def broken(j: Journal) -> None:
        raise OSError("disk full")

    writer.put(lambda j: j.finish("ci", "r0", b"zero"), lambda failed: told.__setitem__("r0", failed))
    writer.put(broken, lambda failed: told.__setitem__("broken", failed))
    writer.put(lambda j: j.finish("ci", "r1", b"one"), lambda failed: told.__setitem__("r1", failed))
    gate.set()
    writer.stop()
    assert told["r0"] is None and told["r1"] is None
    assert isinstance(told["broken"], OSError) and "disk full" in str(told["broken"])
    assert journal.get("ci", "r0").result == b"zero" and journal.get("ci", "r1").result == b"one"
    journal.close()


def test_a_board_is_not_held_by_the_journal(tmp_path):
    """While a result is being made durable the board's thread is free: put() returns at once."""
    journal = _journal_with(tmp_path, 1)
    writer = JournalWriter(journal)
    gate = threading.Event()
    writer.put(lambda j: gate.wait(10))
    returned = threading.Event()

    def board() -> None:
        writer.put(lambda j: j.finish("ci", "r0", b"result"))
        returned.set()

    threading.Thread(target=board).start()
    assert returned.wait(5)
    reader = sqlite3.connect(tmp_path / "journal.sqlite")  # (the writer holds the journal's own connection)
    assert reader.execute("SELECT state FROM requests WHERE request_id = 'r0'").fetchone()[0] != DONE
    reader.close()
    gate.set()
    writer.stop()
    assert journal.get("ci", "r0").state == DONE
    journal.close()
