"""One queue and one worker thread per board; a request goes to the least-loaded board of its target."""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from measure_agent.backends import Backend
from measure_agent.errors import MeasureError, NoBoard
from protos import agent_pb2 as pb

Listener = Callable[[pb.MeasureEvent], None]


@dataclass
class Job:
    request: pb.MeasureRequest
    future: Future = field(default_factory=Future)
    listeners: list[Listener] = field(default_factory=list)
    events: list[pb.MeasureEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, stage: int, message: str = "", result: pb.MeasureResult | None = None) -> None:
        event = pb.MeasureEvent(request_id=self.request.request_id, stage=stage, message=message)
        if result is not None:
            event.result.CopyFrom(result)
        with self._lock:
            self.events.append(event)
            listeners = list(self.listeners)
        for listener in listeners:
            listener(event)

    def subscribe(self, listener: Listener) -> None:
        """Receive the events so far and all later ones."""
        with self._lock:
            past = list(self.events)
            self.listeners.append(listener)
        for event in past:
            listener(event)


RunFn = Callable[[Backend, Job], pb.MeasureResult]


class BoardWorker(threading.Thread):
    def __init__(self, backend: Backend, run: RunFn):
        super().__init__(name=f"board-{backend.board_id}", daemon=True)
        self.backend = backend
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.busy = False
        self._run = run

    @property
    def load(self) -> int:
        return self.queue.qsize() + int(self.busy)

    def run(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            self.busy = True
            self.backend.state = "busy"
            try:
                job.future.set_result(self._run(self.backend, job))
            except MeasureError as exc:
                job.future.set_exception(exc)
            except Exception as exc:  # a bug must fail one request, not the board's worker
                job.future.set_exception(MeasureError(f"internal error: {type(exc).__name__}: {exc}"))
            finally:
                self.busy = False
                if self.backend.state == "busy":
                    self.backend.state = "idle"


class BoardPool:
    def __init__(self, backends: list[Backend], run: RunFn):
        self.workers = {b.board_id: BoardWorker(b, run) for b in backends}
        for worker in self.workers.values():
            worker.start()

    def pick(self, request: pb.MeasureRequest) -> BoardWorker:
        """The least-loaded board matching the request's board id or target."""
        if request.board_id:
            worker = self.workers.get(request.board_id)
            if worker is None:
                raise NoBoard(f"no board {request.board_id!r} on this agent; boards: {', '.join(self.workers)}")
            return worker
        target = request.target.lower()
        matching = [w for w in self.workers.values() if not target or w.backend.board.name.lower() == target]
        if not matching:
            targets = sorted({w.backend.board.name for w in self.workers.values()})
            raise NoBoard(f"no board of target {request.target!r} on this agent; targets: {', '.join(targets)}")
        return min(matching, key=lambda w: w.load)

    def submit(self, job: Job) -> BoardWorker:
        worker = self.pick(job.request)
        job.emit(pb.MeasureEvent.QUEUED, f"board {worker.backend.board_id}, {worker.load} ahead")
        worker.queue.put(job)
        return worker

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.queue.put(None)
        for worker in self.workers.values():
            worker.join(timeout=5)
            worker.backend.close()
