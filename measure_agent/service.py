"""The agent: journal + board pool behind the gRPC contract of ``protos/agent.proto``.

Every request belongs to the client that sent it (``auth.current_client()``): it is journaled under
(client, request id), its result is answered to that client only (and to admin clients), and a request
id reused with another model or setting is refused. A request always ends journaled with one result or
one error (its kind and status code), whatever failed; one the agent did not finish is run again when
it starts (given up after ``MAX_ATTEMPTS`` starts, so a request that brings the agent down cannot do it
for ever).
"""

from __future__ import annotations

import errno
import hashlib
import queue
import secrets
import socket
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc

from measure_agent.auth import TokenAuth, current_client
from measure_agent.backends import Backend, BoardSpec, make_backend
from measure_agent.config import AgentConfig
from measure_agent.errors import (BoardNotAnswering, BoardOffline, DoesNotFit, InvalidModel, MeasureError,
                                   ModelTooLarge, NoBoard, RequestConflict, StillRunning, UnknownRequest,
                                   UnsupportedModel, as_measure_error, from_kind)
from measure_agent.journal import DONE, FAILED, Journal
from measure_agent.journal_writer import JournalWriter
from measure_agent.scheduler import BoardPool, Job
from measure_agent.worker import LocalRunner, ProcessRunner
from protos import agent_pb2 as pb
from protos import agent_pb2_grpc as pb_grpc

AGENT_VERSION = "2"
MAX_REQUEST_ID = 128
#: a request the agent started this many times without finishing (it stopped each time) is given up
MAX_ATTEMPTS = 5
#: trailing metadata key of an error's kind: tells the agent's own errors from transport errors
ERROR_KIND_KEY = "mcunas-error-kind"

#: The gRPC status each measurement error travels as (the contract in protos/agent.proto).
STATUS_CODES: dict[type[MeasureError], grpc.StatusCode] = {
    MeasureError: grpc.StatusCode.INTERNAL,
    InvalidModel: grpc.StatusCode.INVALID_ARGUMENT,
    RequestConflict: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedModel: grpc.StatusCode.UNIMPLEMENTED,
    DoesNotFit: grpc.StatusCode.FAILED_PRECONDITION,
    NoBoard: grpc.StatusCode.UNAVAILABLE,
    BoardOffline: grpc.StatusCode.UNAVAILABLE,
    BoardNotAnswering: grpc.StatusCode.DEADLINE_EXCEEDED,
    ModelTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnknownRequest: grpc.StatusCode.NOT_FOUND,
    StillRunning: grpc.StatusCode.UNAVAILABLE,
}


def status_code(exc: MeasureError) -> grpc.StatusCode:
    return STATUS_CODES.get(type(exc), grpc.StatusCode.INTERNAL)


def _abort(context, exc: MeasureError):
    context.set_trailing_metadata(((ERROR_KIND_KEY, exc.kind),))
    context.abort(status_code(exc), exc.message)


def request_digest(request: pb.MeasureRequest) -> tuple[str, str]:
    """(digest of the whole request but its id, digest of its model): what makes two requests the same."""
    model = hashlib.sha256(request.model).hexdigest()
    rest = pb.MeasureRequest()
    rest.CopyFrom(request)
    rest.ClearField("request_id")
    rest.ClearField("model")
    digest = hashlib.sha256(model.encode() + b"\0" + rest.SerializeToString(deterministic=True)).hexdigest()
    return digest, model


def _without_model(request: pb.MeasureRequest) -> bytes:
    rest = pb.MeasureRequest()
    rest.CopyFrom(request)
    rest.ClearField("model")
    return rest.SerializeToString(deterministic=True)


class Agent:
    """Accepts measurement requests, journals them, runs them on its boards, answers from the journal."""

    def __init__(self, config: AgentConfig, backends: list[Backend] | None = None):
        self.config = config
        self.journal = Journal(config.journal, exclusive=True)
        self._jobs: dict[tuple[str, str], Job] = {}
        self._lock = threading.Lock()
        self._fetched: set[tuple[str, str]] = set()
        self._flash: dict[str, tuple] = {}  # board id -> (slots, endurance) of its latest flash-placed result
        self._stop = threading.Event()
        self._writer = JournalWriter(self.journal)  # the boards' reports, journaled off their threads
        try:
            if backends:
                runners = [LocalRunner(b) for b in backends]
            elif config.workers == "thread":
                runners = [LocalRunner(make_backend(b)) for b in config.boards]
            else:
                runners = [ProcessRunner(b) for b in config.boards]
            self.pool = BoardPool(runners, self._started, self._finished)
        except BaseException:
            self._writer.stop()
            self.journal.close()
            raise
        self._recover()
        self._housekeeper = threading.Thread(target=self._housekeeping, name="journal-housekeeping", daemon=True)
        self._housekeeper.start()

    def close(self) -> None:
        self._stop.set()
        self.pool.stop()
        self._writer.stop()
        self._flush_fetched()
        self.journal.close()

    # ------------------------------------------------------------ start-up and housekeeping
    def _recover(self) -> None:
        """Run again what an agent that stopped left queued or running (or give it up, journaled as failed)."""
        for entry in self.journal.unfinished():
            if entry.attempts >= MAX_ATTEMPTS:
                exc = MeasureError(f"given up: the agent stopped {entry.attempts} times while measuring this request")
                self._journal_failure(entry.client, entry.request_id, exc)
                continue
            try:
                request = pb.MeasureRequest.FromString(entry.request)
                request.model = self.journal.model(entry.model)
                with self._lock:
                    self._enqueue(Job(request, entry.client, entry.digest))
            except MeasureError:
                pass  # journaled as failed by _enqueue (e.g. its board is no longer configured)
            except Exception as exc:  # noqa: BLE001 (an unreadable entry must not stop the agent)
                self._journal_failure(entry.client, entry.request_id, as_measure_error(exc))

    def _housekeeping(self) -> None:
        retention = self.config.retention_max_age_s is not None or self.config.retention_max_bytes is not None
        interval = self.config.retention_interval_s
        next_prune = 0.0
        while not self._stop.wait(1.0 if not retention else min(1.0, interval)):
            self._flush_fetched()
            if retention and time.monotonic() >= next_prune:
                self.prune()
                next_prune = time.monotonic() + interval

    def prune(self):
        """Apply the retention of the configuration now (results not yet fetched are kept)."""
        self._flush_fetched()
        return self.journal.prune(self.config.retention_max_age_s, self.config.retention_max_bytes)

    def fetched(self, client: str, request_id: str) -> None:
        """The final answer of a request reached its client (recorded in the journal within a second)."""
        with self._lock:
            self._fetched.add((client, request_id))

    def _flush_fetched(self) -> None:
        with self._lock:
            done, self._fetched = self._fetched, set()
        try:
            self.journal.mark_fetched_many(sorted(done))
        except Exception:  # noqa: BLE001 (the journal is closing; the results stay, as unfetched)
            pass

    # ------------------------------------------------------------ requests
    def submit(self, request: pb.MeasureRequest, client: str) -> Job:
        """Accept a request (or find it): a Job whose future holds the result or a MeasureError."""
        rid = request.request_id
        if not rid or len(rid) > MAX_REQUEST_ID or not rid.isprintable():
            raise InvalidModel(f"request_id must be 1 to {MAX_REQUEST_ID} printable characters")
        if len(request.model) > self.config.max_model_bytes:
            raise ModelTooLarge(f"model is {len(request.model)} bytes; this agent accepts at most "
                                f"{self.config.max_model_bytes} bytes (max_model_bytes)")
        if not request.model:
            raise InvalidModel("the request has no model")
        digest, model_digest = request_digest(request)
        with self._lock:
            job = self._jobs.get((client, rid))
            if job is not None:
                if job.digest != digest:
                    raise RequestConflict(f"request id {rid!r} reused with a different request (another model or "
                                          "settings); use a new request id")
                return job
            entry, new = self.journal.accept(client, rid, digest, model_digest, request.model,
                                             _without_model(request))
            if not new:
                return self._finished_job(entry, request)
            return self._enqueue(Job(request, client, digest))

    def _enqueue(self, job: Job) -> Job:
        self._jobs[job.key] = job
        try:
            self.pool.submit(job)
        except MeasureError as exc:
            self._jobs.pop(job.key, None)
            self._journal_failure(job.client, job.request.request_id, exc)
            raise
        return job

    def _finished_job(self, entry, request: pb.MeasureRequest) -> Job:
        job = Job(request, entry.client, entry.digest)
        if entry.state == DONE:
            job.future.set_result(pb.MeasureResult.FromString(entry.result))
        elif entry.state == FAILED:
            job.future.set_exception(from_kind(entry.error_kind, entry.error_message))
        else:  # journaled as queued or running but not in memory (cannot happen after start-up): run it
            return self._enqueue(job)
        return job

    def _journal_failure(self, client: str, request_id: str, exc: MeasureError) -> None:
        self.journal.fail(client, request_id, exc.kind, status_code(exc).name, exc.message, exc.transient)

    def _started(self, job: Job, board_id: str) -> None:
        client, rid = job.client, job.request.request_id
        self._writer.put(lambda journal: journal.mark_running(client, rid, board_id))

    def _finished(self, job: Job, board_id: str, result: pb.MeasureResult | None, error: MeasureError | None) -> None:
        """A board is done with a job: its result or error is journaled first, then whoever waits is told
        (by the journal writer: the board goes on with its next job meanwhile)."""
        client, rid = job.client, job.request.request_id
        if error is None:
            if result.flash_slots:
                self._flash[board_id] = (list(result.flash_slots), result.flash_endurance)
            data = result.SerializeToString()
            self._writer.put(lambda journal: journal.finish(client, rid, data),
                             lambda failed: self._complete(job, result, error, failed))
        else:
            code = status_code(error).name
            self._writer.put(lambda journal: journal.fail(client, rid, error.kind, code, error.message,
                                                          error.transient),
                             lambda failed: self._complete(job, result, error, failed))

    def _complete(self, job: Job, result: pb.MeasureResult | None, error: MeasureError | None,
                  journal_error: Exception | None) -> None:
        if journal_error is not None:  # the request is run again at restart
            result, error = None, MeasureError(f"internal error: the journal could not record the result: "
                                               f"{journal_error}")
        with self._lock:
            self._jobs.pop(job.key, None)
        if error is None:
            job.emit(pb.MeasureEvent.DONE, "done", result)
            job.future.set_result(result)
        else:
            job.future.set_exception(error)

    def entry(self, client: str, request_id: str):
        entry = self.journal.get(client, request_id)
        if entry is None and client in self.config.admins:
            found = self.journal.find(request_id)
            entry = found[0] if found else None
        if entry is None:
            raise UnknownRequest(f"no request {request_id!r} of client {client!r} on this agent")
        return entry

    def result(self, client: str, request_id: str) -> pb.MeasureResult:
        entry = self.entry(client, request_id)
        if entry.state == DONE:
            return pb.MeasureResult.FromString(entry.result)
        if entry.state == FAILED:
            raise from_kind(entry.error_kind, entry.error_message)
        raise StillRunning(f"request {request_id!r} is {entry.state}")

    # ------------------------------------------------------------ the bench
    def boards(self) -> list[pb.BoardInfo]:
        infos = []
        for worker in self.pool.workers.values():
            runner, b = worker.runner, worker.board
            infos.append(pb.BoardInfo(
                board_id=worker.board_id, target=b.name, core=b.core, clock_hz=b.default_clock_hz,
                runtime_variants=list(b.runtime_variants()), float_abis=list(b.float_abis()),
                kind=runner.kind, state=worker.state, queue_length=worker.load, energy_source=runner.energy_source,
                state_reason=runner.status.reason if worker.offline else "",
                retry_in_s=runner.status.retry_in(),
                flash_slots=self._flash.get(worker.board_id, ((), 0))[0],
                flash_endurance=self._flash.get(worker.board_id, ((), 0))[1]))
        return infos

    def health(self) -> pb.HealthResponse:
        boards = self.boards()
        return pb.HealthResponse(
            serving=True, boards=len(boards), boards_online=sum(b.state != "offline" for b in boards),
            requests_done=self.journal.count(DONE), queued=sum(b.queue_length for b in boards),
            max_model_bytes=self.config.max_model_bytes, requests_failed=self.journal.count(FAILED),
            problems=[f"{b.board_id}: {b.state_reason}" for b in boards if b.state == "offline"],
            agent_version=AGENT_VERSION)


def _guarded(method):
    """A handler whose unexpected exceptions are one INTERNAL status line (and never a hung call)."""
    def handler(self, request, context):
        try:
            return method(self, request, context)
        except MeasureError as exc:
            _abort(context, exc)  # (what abort raises leaves the handler: sibling clauses do not catch it)
        except Exception as exc:  # noqa: BLE001
            _abort(context, as_measure_error(exc))
    handler.__name__ = method.__name__
    return handler


class MeasureAgentServicer(pb_grpc.MeasureAgentServicer):
    """The RPCs of protos/agent.proto; callers are authenticated by :class:`~measure_agent.auth.TokenAuth`."""

    def __init__(self, agent: Agent | None = None):
        self.agent = agent

    @_guarded
    def ListBoards(self, request, context):
        return pb.ListBoardsResponse(boards=self.agent.boards(), agent_version=AGENT_VERSION)

    @_guarded
    def Health(self, request, context):
        return self.agent.health()

    def _delivered(self, context, client: str, request_id: str) -> None:
        if context.is_active():
            self.agent.fetched(client, request_id)

    @_guarded
    def Measure(self, request, context):
        client = current_client()
        job = self.agent.submit(request, client)
        try:
            result = job.future.result()
        except MeasureError:
            self._delivered(context, client, request.request_id)
            raise
        self._delivered(context, client, request.request_id)
        return result

    def MeasureStream(self, request, context):
        client = current_client()
        try:
            job = self.agent.submit(request, client)
        except MeasureError as exc:
            _abort(context, exc)
        events: queue.Queue = queue.Queue()
        job.subscribe(events.put)
        job.future.add_done_callback(lambda f: events.put(None))
        while True:
            event = events.get()
            if event is None:
                break
            if event.stage != pb.MeasureEvent.DONE:
                yield event
        try:
            result = job.future.result()
        except MeasureError as exc:
            self._delivered(context, client, request.request_id)
            _abort(context, exc)
        self._delivered(context, client, request.request_id)
        yield pb.MeasureEvent(request_id=request.request_id, stage=pb.MeasureEvent.DONE, message="done",
                              result=result)

    @_guarded
    def GetResult(self, request, context):
        client = current_client()
        try:
            result = self.agent.result(client, request.request_id)
        except (StillRunning, UnknownRequest):
            raise
        except MeasureError:
            self._delivered(context, client, request.request_id)
            raise
        self._delivered(context, client, request.request_id)
        return result


def _address_taken(address: str) -> str:
    """Why ``address`` is (partly) in use ("" when it is free), checked before gRPC binds it.

    gRPC binds every address a host name resolves to that it can, and is content with one: ``localhost:PORT``
    would listen on ``[::1]:PORT`` alone beside an agent on ``127.0.0.1:PORT``, and clients of ``localhost``
    would reach one agent or the other. So each resolved address is tried first; one in use refuses it all.
    """
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        if number == 0:
            return ""  # a port of the system's choice is never in use
        infos = socket.getaddrinfo(host or None, number, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, ValueError, UnicodeError, OverflowError):
        return ""  # gRPC says what is wrong with it
    if host.lower() == "localhost":  # gRPC listens on both loopbacks for it, whatever /etc/hosts says
        for loopback in ("::1", "127.0.0.1"):
            try:
                infos += socket.getaddrinfo(loopback, number, type=socket.SOCK_STREAM)
            except socket.gaierror:
                pass
        infos = list(dict.fromkeys(infos))
    for family, kind, proto, _, sockaddr in infos:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue  # e.g. no IPv6 on this host: gRPC skips that address too
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # (TIME_WAIT connections do not count)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    where = sockaddr[0] if family == socket.AF_INET else f"[{sockaddr[0]}]"
                    part = f"{where}:{number} of {len(infos)} addresses is taken; " if len(infos) > 1 else ""
                    return f"cannot listen on {address}: address in use ({part}is another agent running?)"
    return ""


def _bind_error(address: str) -> str:
    """Why ``address`` cannot be listened on, in words (after gRPC refused it)."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (socket.gaierror, ValueError) as exc:
        return f"cannot listen on {address}: {exc}"
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return f"cannot listen on {address}: address in use (is another agent running?)"
                return f"cannot listen on {address}: {exc.strerror}"
    return f"cannot listen on {address}"


def serve(config: AgentConfig, backends: list[Backend] | None = None) -> tuple[grpc.Server, Agent, int]:
    """Start the agent's server (non-blocking). Returns the server, the agent and the bound port.

    The address is taken first, exclusively (gRPC would otherwise share a port with another agent through
    SO_REUSEPORT): OSError "address in use" before anything else is started, also when only one of the
    addresses a host name resolves to is taken.
    """
    taken = _address_taken(config.listen)
    if taken:
        raise OSError(taken)
    servicer = MeasureAgentServicer()
    # a Measure call holds its thread until the result: enough threads that Health and GetResult still answer
    workers = max(64, 8 * max(1, len(backends) if backends else len(config.boards)))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers),
        interceptors=[TokenAuth(config.clients)],
        options=[("grpc.so_reuseport", 0),
                 ("grpc.max_receive_message_length", config.max_model_bytes + 64 * 1024),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    pb_grpc.add_MeasureAgentServicer_to_server(servicer, server)
    try:
        if config.tls_cert:
            creds = grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(),
                                                  Path(config.tls_cert).read_bytes())])
            port = server.add_secure_port(config.listen, creds)
        else:
            port = server.add_insecure_port(config.listen)
    except RuntimeError:
        port = 0
    if port == 0:
        server.stop(None)
        raise OSError(_bind_error(config.listen))
    try:
        agent = Agent(config, backends)
    except BaseException:
        server.stop(None)
        raise
    servicer.agent = agent
    server.start()
    return server, agent, port


def local_config(target: str, journal: Path, count: int = 1, workers: str = "process") -> AgentConfig:
    """A loopback agent with ``count`` virtual boards of ``target`` and one random client token."""
    boards = tuple(BoardSpec(id=f"vb-{target.lower()}-{i}", kind="virtual", target=target) for i in range(count))
    return AgentConfig(listen="127.0.0.1:0", journal=journal, clients={"local": secrets.token_hex(16)},
                       boards=boards, workers=workers)
