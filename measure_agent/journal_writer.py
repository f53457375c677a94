"""The boards' journal writes, off the boards' threads.

A board reports that it started a request and, later, its result or error. Each report is journaled (made
durable) before anybody is told, but the board need not wait for that: it hands the write to the
:class:`JournalWriter` and takes its next request. The writer journals the reports in the order they came,
as many as are waiting in one transaction (one disk flush for all of them), then runs each report's
follow-up with the outcome of its write.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable

from measure_agent.journal import Journal

Write = Callable[[Journal], None]
#: called with None once the write is durable, or with the exception that made it fail
FollowUp = Callable[[Exception | None], None]

#: reports journaled in one transaction at most
MAX_BATCH = 64


class JournalWriter:
    """A thread journaling :meth:`put` writes in order, several per commit (see the module docstring)."""

    def __init__(self, journal: Journal, name: str = "journal-writer"):
        self.journal = journal
        self._queue: queue.Queue[tuple[Write, FollowUp | None] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, write: Write, then: FollowUp | None = None) -> None:
        """Journal ``write`` after the writes put before it, then call ``then`` with its outcome."""
        self._queue.put((write, then))

    def stop(self, timeout: float = 30.0) -> None:
        """Journal what was put so far, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch, stopping = [self._queue.get()], False
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                stopping = True
                batch = [item for item in batch if item is not None]
            for then, outcome in zip((t for _, t in batch), self._journal(batch)):
                if then is not None:
                    then(outcome)
            if stopping:
                return

    def _journal(self, batch: list[tuple[Write, FollowUp | None]]) -> list[Exception | None]:
        try:
            with self.journal.transaction():
                for write, _ in batch:
                    write(self.journal)
            return [None] * len(batch)
        except Exception:  # noqa: BLE001 (one failing write must not fail the others: each on its own)
            outcomes: list[Exception | None] = []
            for write, _ in batch:
                try:
                    write(self.journal)
                    outcomes.append(None)
                except Exception as exc:  # noqa: BLE001 (handed to the follow-up)
                    outcomes.append(exc)
            return outcomes
