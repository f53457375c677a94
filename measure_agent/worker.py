"""Board runners: where one board's measurements run. The agent's scheduler feeds each board from one
thread; the runner behind it does the work.

* :class:`ProcessRunner` (the default of ``measure-agent serve``): the board's :class:`Backend` lives in a
  worker process of its own (``python -m measure_agent.worker``, a fresh interpreter), so compiling plans and driving the simulator of
  one board never waits for the GIL of another, and throughput grows with the boards up to the cores.
  The process owns its backend; the agent keeps the journal (its single writer) and talks to the
  process over a pipe: requests in, progress events, board state and one result or error out. A
  worker process that dies fails the request it was running (transiently) and is started again.
* :class:`LocalRunner`: the backend in the agent's own process (a local agent with one board, and tests
  that hand the agent backend objects).

Both keep the board's state for ListBoards: "idle", "busy", "recovering" or "offline" with a reason, and
try an offline board again when its backoff has passed (:meth:`Backend.probe`).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Callable

from costmodel.boards import Board, get_board
from measure_agent.backends import Backend, BoardSpec, make_backend
from measure_agent.energy import MODELLED, MONITORED
from measure_agent.errors import BoardNotAnswering, MeasureError, as_measure_error, from_kind
from protos import agent_pb2 as pb

#: progress(stage, message) of a measurement
Emit = Callable[[int, str], None]

#: methods of a backend the agent may call in its worker (fault injection in tests)
CONTROLS = ("freeze", "inject_line_noise")
#: a worker process silent this long while measuring is killed (the board's own deadlines come first)
WATCHDOG_S = 900.0
START_TIMEOUT_S = 120.0


class BoardStatus:
    """What the agent shows of a board: state, the reason it is offline, when it is tried again."""

    def __init__(self) -> None:
        self.state = "idle"
        self.reason = ""
        self.retry_at = 0.0

    def update(self, state: str, reason: str, retry_in: float) -> None:
        self.state, self.reason = state, reason
        self.retry_at = time.monotonic() + retry_in if retry_in > 0 else 0.0

    @property
    def offline(self) -> bool:
        return self.state == "offline"

    def retry_in(self) -> float:
        return max(0.0, self.retry_at - time.monotonic()) if self.offline else 0.0


def _status_of(backend: Backend) -> tuple[str, str, float]:
    retry_in = max(0.0, backend.retry_at - time.monotonic()) if backend.offline else 0.0
    return backend.state, backend.state_reason, retry_in


def _probe_if_due(backend: Backend) -> None:
    if backend.offline and time.monotonic() >= backend.retry_at:
        backend.probe()


def _run(backend: Backend, request: pb.MeasureRequest, emit: Emit) -> pb.MeasureResult:
    from measure_agent.measurement import measure  # (the agent's own process needs it only for local boards)

    _probe_if_due(backend)
    if not backend.offline:
        backend.state = "busy"
    try:
        return measure(backend, request, progress=emit)
    finally:
        if backend.state == "busy":
            backend.state = "idle"


class LocalRunner:
    """The board's backend in this process."""

    def __init__(self, backend: Backend):
        self.backend = backend
        self.spec = backend.spec
        self.board: Board = backend.board
        self.kind = backend.kind
        self.energy_source = backend.energy_source
        self.status = BoardStatus()

    def start(self) -> None:
        self.backend.probe()
        self.status.update(*_status_of(self.backend))

    def measure(self, request: pb.MeasureRequest, emit: Emit) -> pb.MeasureResult:
        try:
            return _run(self.backend, request, emit)
        finally:
            self.status.update(*_status_of(self.backend))

    def probe(self) -> None:
        _probe_if_due(self.backend)
        self.status.update(*_status_of(self.backend))

    def call(self, name: str, *args) -> None:
        if name not in CONTROLS:
            raise ValueError(f"{name} is not a board control")
        getattr(self.backend, name)(*args)

    def close(self) -> None:
        self.backend.close()


class ProcessRunner:
    """The board's backend in a worker process of its own."""

    def __init__(self, spec: BoardSpec):
        self.spec = spec
        self.board: Board = get_board(spec.target)
        self.kind = spec.kind
        self.energy_source = MONITORED if spec.kind == "serial" and spec.energy_monitor else MODELLED
        self.status = BoardStatus()
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._conn = None
        self._lock = threading.Lock()  # one exchange with the process at a time
        self._closed = False
        self._spawn()

    # ------------------------------------------------------------ the process
    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "measure_agent.worker", str(theirs.fileno())],
                                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, close_fds=True)
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        conn.send(self.spec)
        self._proc, self._conn, self._started = proc, conn, False

    def _await_start(self) -> None:
        if self._started:
            return
        reply = self._receive(START_TIMEOUT_S)
        if reply[0] == "fatal":
            self.status.update("offline", reply[1], 60.0)
            raise MeasureError(f"board {self.spec.id}: {reply[1]}")
        self._started = True

    def _restart(self, why: str) -> str:
        code = None
        if self._proc is not None:
            _stop(self._proc, 0)
            code = self._proc.returncode
            self._conn.close()
        if self._closed:
            return f"board {self.spec.id}: the agent is stopping"
        self.restarts += 1
        self._spawn()
        return f"board {self.spec.id}: its worker process {why} (exit code {code}); it has been restarted"

    def _receive(self, timeout: float):
        """The next message of the process (state messages are applied on the way)."""
        while True:
            try:
                if not self._conn.poll(timeout):
                    raise BoardNotAnswering(self._restart(f"sent nothing for {timeout:.0f} s"))
                message = self._conn.recv()
            except (EOFError, OSError):
                raise BoardNotAnswering(self._restart("stopped")) from None
            if message[0] == "state":
                self.status.update(*message[1:])
                continue
            return message

    def _exchange(self, message: tuple, on_event: Emit | None = None, timeout: float = WATCHDOG_S):
        with self._lock:
            if self._closed or self._proc is None:
                raise BoardNotAnswering(f"board {self.spec.id}: the agent is stopping")
            if self._proc.poll() is not None:  # died while idle: nothing was lost, start it again quietly
                self._restart("stopped while idle")
            self._await_start()
            try:
                self._conn.send(message)
            except (OSError, ValueError):
                raise BoardNotAnswering(self._restart("stopped")) from None
            while True:
                reply = self._receive(timeout)
                if reply[0] == "event":
                    if on_event is not None:
                        on_event(reply[1], reply[2])
                    continue
                return reply

    # ------------------------------------------------------------ the runner's interface
    def start(self) -> None:
        with self._lock:
            try:
                self._await_start()
            except MeasureError:
                pass  # shown as offline; tried again on the next request

    def measure(self, request: pb.MeasureRequest, emit: Emit) -> pb.MeasureResult:
        reply = self._exchange(("measure", request.SerializeToString()), emit)
        if reply[0] == "result":
            return pb.MeasureResult.FromString(reply[1])
        raise from_kind(reply[1], reply[2])

    def probe(self) -> None:
        self._exchange(("probe",), timeout=START_TIMEOUT_S)

    def call(self, name: str, *args) -> None:
        if name not in CONTROLS:
            raise ValueError(f"{name} is not a board control")
        reply = self._exchange(("call", name, args), timeout=START_TIMEOUT_S)
        if reply[0] == "error":
            raise from_kind(reply[1], reply[2])

    def close(self) -> None:
        """Stop the worker process: asked to stop when it is idle, killed when it is still measuring."""
        self._closed = True
        idle = self._lock.acquire(timeout=2)
        try:
            proc = self._proc
            if proc is None:
                return
            if idle:
                try:
                    self._conn.send(("stop",))
                except (OSError, ValueError):
                    pass
            _stop(proc, 10 if idle else 0)
            self._proc = None
            if idle:
                self._conn.close()
        finally:
            if idle:
                self._lock.release()


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """Wait ``grace`` seconds for the process to end, then kill it."""
    try:
        proc.wait(grace)
        return
    except subprocess.TimeoutExpired:
        pass
    proc.kill()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass


def _die_with_parent() -> None:
    """Linux: the worker gets SIGKILL when the agent dies, however it dies (the agent may be SIGKILLed)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def serve_board(spec: BoardSpec, conn) -> None:
    """The worker process of one board: measurements, probes and controls from the agent, one at a time."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the agent, which stops its workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def send(message) -> None:
        conn.send(message)

    try:
        backend = make_backend(spec)
        backend.probe()
    except Exception as exc:  # noqa: BLE001 (reported to the agent, which shows the board offline)
        send(("fatal", f"cannot set up the board: {as_measure_error(exc).message}"))
        return
    send(("state", *_status_of(backend)))
    send(("ready",))
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            op = message[0]
            if op == "stop":
                break
            if op == "probe":
                _probe_if_due(backend)
                send(("state", *_status_of(backend)))
                send(("ok",))
            elif op == "measure":
                try:
                    result = _run(backend, pb.MeasureRequest.FromString(message[1]),
                                  lambda stage, text: send(("event", stage, text)))
                    reply = ("result", result.SerializeToString())
                except BaseException as exc:  # noqa: BLE001 (every failure is one error reply)
                    error = as_measure_error(exc)
                    reply = ("error", error.kind, error.message)
                send(("state", *_status_of(backend)))
                send(reply)
            elif op == "call" and message[1] in CONTROLS:
                try:
                    getattr(backend, message[1])(*message[2])
                    send(("ok",))
                except Exception as exc:  # noqa: BLE001
                    error = as_measure_error(exc)
                    send(("error", error.kind, error.message))
            else:
                send(("error", MeasureError.kind, f"unknown worker command {op!r}"))
    except (BrokenPipeError, EOFError, OSError):
        pass  # the agent went away
    finally:
        backend.close()


def main(argv: list[str]) -> int:
    """``python -m measure_agent.worker FD``: FD is this worker's end of the agent's socket pair; the agent
    sends the board's BoardSpec first."""
    conn = Connection(int(argv[0]))
    try:
        spec = conn.recv()
    except (EOFError, OSError):
        return 1
    serve_board(spec, conn)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
