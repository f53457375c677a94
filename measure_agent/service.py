"""The agent: journal + board pool behind the gRPC contract of ``protos/agent.proto``."""

from __future__ import annotations

import queue
import secrets
import threading
from concurrent import futures
from pathlib import Path

import grpc

from measure_agent.auth import TokenAuth, current_client
from measure_agent.backends import Backend, BoardSpec, make_backend
from measure_agent.config import AgentConfig
from measure_agent.errors import (BoardNotAnswering, DoesNotFit, InvalidModel, MeasureError, ModelTooLarge, NoBoard,
                                   StillRunning, UnknownRequest, UnsupportedModel, from_kind)
from measure_agent.journal import DONE, FAILED, Journal
from measure_agent.measurement import measure
from measure_agent.scheduler import BoardPool, Job
from protos import agent_pb2 as pb
from protos import agent_pb2_grpc as pb_grpc

AGENT_VERSION = "1"
MAX_REQUEST_ID = 128

#: The gRPC status each measurement error travels as (the contract in protos/agent.proto).
STATUS_CODES: dict[type[MeasureError], grpc.StatusCode] = {
    MeasureError: grpc.StatusCode.INTERNAL,
    InvalidModel: grpc.StatusCode.INVALID_ARGUMENT,
    UnsupportedModel: grpc.StatusCode.UNIMPLEMENTED,
    DoesNotFit: grpc.StatusCode.FAILED_PRECONDITION,
    NoBoard: grpc.StatusCode.UNAVAILABLE,
    BoardNotAnswering: grpc.StatusCode.DEADLINE_EXCEEDED,
    ModelTooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    UnknownRequest: grpc.StatusCode.NOT_FOUND,
    StillRunning: grpc.StatusCode.UNAVAILABLE,
}


def status_code(exc: MeasureError) -> grpc.StatusCode:
    return STATUS_CODES.get(type(exc), grpc.StatusCode.INTERNAL)


def _abort(context, exc: MeasureError):
    context.abort(status_code(exc), exc.message)


class Agent:
    """Accepts measurement requests, journals them, runs them on its boards, answers from the journal."""

    def __init__(self, config: AgentConfig, backends: list[Backend] | None = None):
        self.config = config
        self.journal = Journal(config.journal)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.pool = BoardPool(backends or [make_backend(b) for b in config.boards], self._run)
        for entry in self.journal.unfinished():  # left behind by an agent that stopped
            try:
                self._enqueue(pb.MeasureRequest.FromString(entry.request))
            except MeasureError:
                pass  # e.g. its board is no longer configured: journaled as failed, retried on request

    def close(self) -> None:
        self.pool.stop()
        self.journal.close()

    def submit(self, request: pb.MeasureRequest, client: str) -> Job:
        """Accept a request (or find it): a Job whose future holds the result or a MeasureError."""
        if not request.request_id or len(request.request_id) > MAX_REQUEST_ID:
            raise InvalidModel(f"request_id must be 1 to {MAX_REQUEST_ID} characters")
        if len(request.model) > self.config.max_model_bytes:
            raise ModelTooLarge(f"model is {len(request.model)} bytes; this agent accepts at most "
                                f"{self.config.max_model_bytes}")
        if not request.model:
            raise InvalidModel("the request has no model")
        with self._lock:
            if request.request_id in self._jobs:
                return self._jobs[request.request_id]
            entry, new = self.journal.accept(request.request_id, client, request.SerializeToString())
            if not new:
                return self._finished_job(entry)
            return self._enqueue(request)

    def _enqueue(self, request: pb.MeasureRequest) -> Job:
        job = Job(request)
        self._jobs[request.request_id] = job
        try:
            self.pool.submit(job)
        except MeasureError as exc:
            self._jobs.pop(request.request_id, None)
            self.journal.fail(request.request_id, exc.kind, exc.message, exc.transient)
            raise
        return job

    def _finished_job(self, entry) -> Job:
        job = Job(pb.MeasureRequest.FromString(entry.request))
        if entry.state == DONE:
            job.future.set_result(pb.MeasureResult.FromString(entry.result))
        elif entry.state == FAILED:
            job.future.set_exception(from_kind(entry.error_kind, entry.error_message))
        else:  # journaled as queued or running but not in memory: run it (cannot happen after start-up)
            return self._enqueue(job.request)
        return job

    def _run(self, backend: Backend, job: Job) -> pb.MeasureResult:
        request_id = job.request.request_id
        self.journal.mark_running(request_id, backend.board_id)
        try:
            result = measure(backend, job.request, progress=job.emit)
        except MeasureError as exc:
            self.journal.fail(request_id, exc.kind, exc.message, exc.transient)
            with self._lock:
                self._jobs.pop(request_id, None)
            raise
        self.journal.finish(request_id, result.SerializeToString())  # journaled before anyone is told
        with self._lock:
            self._jobs.pop(request_id, None)
        job.emit(pb.MeasureEvent.DONE, "done", result)
        return result

    def result(self, request_id: str) -> pb.MeasureResult:
        entry = self.journal.get(request_id)
        if entry is None:
            raise UnknownRequest(f"no request {request_id!r} on this agent")
        if entry.state == DONE:
            return pb.MeasureResult.FromString(entry.result)
        if entry.state == FAILED:
            raise from_kind(entry.error_kind, entry.error_message)
        raise StillRunning(f"request {request_id!r} is {entry.state}")

    def boards(self) -> list[pb.BoardInfo]:
        infos = []
        for worker in self.pool.workers.values():
            b = worker.backend
            infos.append(pb.BoardInfo(
                board_id=b.board_id, target=b.board.name, core=b.board.core, clock_hz=b.board.default_clock_hz,
                runtime_variants=list(b.board.runtime_variants()), float_abis=list(b.board.float_abis()),
                kind=b.kind, state=b.state, queue_length=worker.load, energy_source=b.energy_source))
        return infos


class MeasureAgentServicer(pb_grpc.MeasureAgentServicer):
    """The RPCs of protos/agent.proto; callers are authenticated by :class:`~measure_agent.auth.TokenAuth`."""

    def __init__(self, agent: Agent):
        self.agent = agent

    def ListBoards(self, request, context):
        return pb.ListBoardsResponse(boards=self.agent.boards(), agent_version=AGENT_VERSION)

    def Health(self, request, context):
        boards = self.agent.boards()
        return pb.HealthResponse(serving=True, boards=len(boards),
                                 boards_online=sum(b.state != "offline" for b in boards),
                                 requests_done=self.agent.journal.count(DONE),
                                 queued=sum(b.queue_length for b in boards))

    def Measure(self, request, context):
        try:
            return self.agent.submit(request, current_client()).future.result()
        except MeasureError as exc:
            _abort(context, exc)

    def MeasureStream(self, request, context):
        try:
            job = self.agent.submit(request, current_client())
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
            _abort(context, exc)
        yield pb.MeasureEvent(request_id=request.request_id, stage=pb.MeasureEvent.DONE, message="done",
                              result=result)

    def GetResult(self, request, context):
        try:
            return self.agent.result(request.request_id)
        except MeasureError as exc:
            _abort(context, exc)


def serve(config: AgentConfig, backends: list[Backend] | None = None) -> tuple[grpc.Server, Agent, int]:
    """Start the agent's server (non-blocking). Returns the server, the agent and the bound port."""
    agent = Agent(config, backends)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max(16, 4 * len(agent.pool.workers))),
        interceptors=[TokenAuth(config.clients)],
        options=[("grpc.max_receive_message_length", config.max_model_bytes + 64 * 1024),
                 ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    pb_grpc.add_MeasureAgentServicer_to_server(MeasureAgentServicer(agent), server)
    if config.tls_cert:
        creds = grpc.ssl_server_credentials([(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())])
        port = server.add_secure_port(config.listen, creds)
    else:
        port = server.add_insecure_port(config.listen)
    if port == 0:
        agent.close()
        raise OSError(f"cannot listen on {config.listen}")
    server.start()
    return server, agent, port


def local_config(target: str, journal: Path, count: int = 1) -> AgentConfig:
    """A loopback agent with ``count`` virtual boards of ``target`` and one random client token."""
    boards = tuple(BoardSpec(id=f"vb-{target.lower()}-{i}", kind="virtual", target=target) for i in range(count))
    return AgentConfig(listen="127.0.0.1:0", journal=journal, clients={"local": secrets.token_hex(16)},
                       boards=boards)
