"""One queue and one feeding thread per board; a request goes to the least-loaded online board of its target.

The measurement itself runs in the board's runner (:mod:`measure_agent.worker`: a worker process of its
own, or the agent's process). The pool tells the agent when a board starts a job and when it is over
(``on_start``, ``on_done``): the agent journals both, so a job always ends with exactly one result or one
error, whatever failed.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable

from measure_agent.errors import BoardOffline, MeasureError, NoBoard, as_measure_error
from protos import agent_pb2 as pb

Listener = Callable[[pb.MeasureEvent], None]


@dataclass
class Job:
    request: pb.MeasureRequest
    client: str = ""
    digest: str = ""
    future: Future = field(default_factory=Future)
    listeners: list[Listener] = field(default_factory=list)
    events: list[pb.MeasureEvent] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def key(self) -> tuple[str, str]:
        return self.client, self.request.request_id

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


OnStart = Callable[[Job, str], None]
OnDone = Callable[[Job, str, "pb.MeasureResult | None", "MeasureError | None"], None]


class BoardWorker(threading.Thread):
    """Feeds one board's runner from its queue; probes the board while it is offline."""

    def __init__(self, runner, on_start: OnStart, on_done: OnDone):
        super().__init__(name=f"board-{runner.spec.id}", daemon=True)
        self.runner = runner
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.busy = False
        self.ready = threading.Event()  # the runner has started and reported the board's state
        self._on_start = on_start
        self._on_done = on_done

    @property
    def board_id(self) -> str:
        return self.runner.spec.id

    @property
    def board(self):
        return self.runner.board

    @property
    def load(self) -> int:
        return self.queue.qsize() + int(self.busy)

    @property
    def state(self) -> str:
        return "busy" if self.busy and not self.runner.status.offline else self.runner.status.state

    @property
    def offline(self) -> bool:
        return self.runner.status.offline

    def control(self, name: str, *args) -> None:
        """Call a fault-injection method of the board's backend (``freeze``, ``inject_line_noise``)."""
        self.runner.call(name, *args)

    def run(self) -> None:
        try:
            self.runner.start()
        finally:
            self.ready.set()
        while True:
            try:
                job = self.queue.get(timeout=max(0.01, self.runner.status.retry_in()) if self.offline else None)
            except queue.Empty:  # an offline board's retry time has come
                try:
                    self.runner.probe()
                except MeasureError:
                    pass
                continue
            if job is None:
                return
            self.busy = True
            result, error = None, None
            try:
                self._on_start(job, self.board_id)
                result = self.runner.measure(job.request, job.emit)
            except BaseException as exc:  # noqa: BLE001 (a bug fails one request, never the board's thread)
                error = as_measure_error(exc)
            finally:
                self.busy = False
            self._on_done(job, self.board_id, result, error)


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(t))


class BoardPool:
    def __init__(self, runners: list, on_start: OnStart, on_done: OnDone, start_timeout_s: float = 120.0):
        """Start a worker per runner and wait (at most ``start_timeout_s``) until each reported its board's
        state, so that the boards' states are known when the agent starts serving."""
        self.workers = {r.spec.id: BoardWorker(r, on_start, on_done) for r in runners}
        for worker in self.workers.values():
            worker.start()
        deadline = time.monotonic() + start_timeout_s
        for worker in self.workers.values():
            worker.ready.wait(max(0.0, deadline - time.monotonic()))

    def pick(self, request: pb.MeasureRequest) -> BoardWorker:
        """The least-loaded online board matching the request's board id or target."""
        if request.board_id:
            worker = self.workers.get(request.board_id)
            if worker is None:
                raise NoBoard(f"no board {request.board_id!r} on this agent; boards: {', '.join(self.workers)}")
            matching = [worker]
        else:
            target = request.target.lower()
            matching = [w for w in self.workers.values() if not target or w.board.name.lower() == target]
            if not matching:
                targets = sorted({w.board.name for w in self.workers.values()})
                raise NoBoard(f"no board of target {request.target!r} on this agent; targets: {', '.join(targets)}")
        online = [w for w in matching if not w.offline]
        if not online:
            # a moment, not a countdown: the message is journaled and may be read long after
            reasons = "; ".join(f"{w.board_id}: {w.runner.status.reason}, next try at "
                                f"{_clock(time.time() + w.runner.status.retry_in())}" for w in matching)
            raise BoardOffline(f"every board for this request is offline ({reasons})")
        return min(online, key=lambda w: w.load)

    def submit(self, job: Job) -> BoardWorker:
        worker = self.pick(job.request)
        job.emit(pb.MeasureEvent.QUEUED, f"board {worker.board_id}, {worker.load} ahead")
        worker.queue.put(job)
        return worker

    @property
    def queued(self) -> list[Job]:
        return [job for w in self.workers.values() for job in list(w.queue.queue) if job is not None]

    def stop(self) -> None:
        for worker in self.workers.values():
            worker.queue.put(None)
        for worker in self.workers.values():
            worker.join(timeout=5)
        for worker in self.workers.values():
            worker.runner.close()
