"""Client of a measurement agent: what searches and the ``measure-agent`` client commands use.

Requests are idempotent by request id, so a client that has reached its agent retries a dropped
connection (an agent restart) with the same id, saying so through ``on_retry``: a result is never lost
nor measured twice. An agent that cannot be reached at all is reported at once (a wrong address is
not an agent restarting). Errors of the agent itself carry their kind (``AgentError.kind``); transport
errors have none.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Callable

import grpc

from protos import agent_pb2 as pb
from protos import agent_pb2_grpc as pb_grpc

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
ERROR_KIND_KEY = "mcunas-error-kind"   # measure_agent.service.ERROR_KIND_KEY
CONNECT_TIMEOUT_S = 10.0


class AgentError(RuntimeError):
    """The agent answered with an error status (``kind`` set), or could not be reached (``kind`` "")."""

    def __init__(self, code: grpc.StatusCode, message: str, kind: str = ""):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.kind = kind


def _transport_reason(details: str) -> str:
    lowered = details.lower()
    for needle, reason in (("connection refused", "connection refused"), ("deadline", "no answer"),
                           ("ssl", "TLS handshake failed"), ("handshake", "TLS handshake failed"),
                           ("dns", "unknown host"), ("name resolution", "unknown host"),
                           ("errors resolving", "unknown host"), ("lookup", "unknown host"),
                           ("socket closed", "connection closed"), ("connection reset", "connection reset")):
        if needle in lowered:
            return reason
    return details.splitlines()[0][:200] if details else "unreachable"


class AgentClient:
    def __init__(self, address: str, token: str, root_certificate: str | Path | None = None,
                 retry_for_s: float = 60.0, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 on_retry: Callable[[str], None] | None = None):
        if root_certificate:
            try:
                root = Path(root_certificate).read_bytes()
            except OSError as exc:
                raise OSError(f"root certificate {root_certificate}: {exc.strerror or exc}") from None
            creds = grpc.ssl_channel_credentials(root)
            self.channel = grpc.secure_channel(address, creds)
        else:
            self.channel = grpc.insecure_channel(address)
        self.address = address
        self.stub = pb_grpc.MeasureAgentStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.retry_for_s = retry_for_s
        self.connect_timeout_s = connect_timeout_s
        self.on_retry = on_retry
        self.reached = False          # this client has had an answer from its agent
        self._max_model_bytes: int | None = None

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _error(self, exc: grpc.RpcError) -> AgentError:
        code, details = exc.code(), exc.details() or ""
        kind = ""
        trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
        for key, value in trailing or ():
            if key == ERROR_KIND_KEY:
                kind = value
        if not kind and not self.reached and code == grpc.StatusCode.UNIMPLEMENTED:
            # something answers HTTP/2 there, but not the agent's service (another server, a proxy)
            first = details.splitlines()[0][:120] if details else "no details"
            return AgentError(code, f"cannot reach the agent at {self.address}: the server there is not a "
                                    f"measurement agent ({first})")
        if kind or code not in (*RETRYABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            self.reached = True
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED and not kind and self._max_model_bytes:
                details = (f"{details} (this agent accepts models of at most {self._max_model_bytes} bytes)")
            return AgentError(code, details, kind)
        if not self.reached:
            reason = _transport_reason(details)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                reason = f"no answer within {self.connect_timeout_s:g} s"
            return AgentError(grpc.StatusCode.UNAVAILABLE, f"cannot reach the agent at {self.address}: {reason}")
        return AgentError(code, details)

    def _call(self, method, request, timeout: float | None = None):
        if not self.reached:
            timeout = self.connect_timeout_s if timeout is None else min(timeout, self.connect_timeout_s)
        try:
            response = method(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        self.reached = True
        return response

    def boards(self) -> list[pb.BoardInfo]:
        return list(self._call(self.stub.ListBoards, pb.ListBoardsRequest(), timeout=30).boards)

    def health(self) -> pb.HealthResponse:
        health = self._call(self.stub.Health, pb.HealthRequest(), timeout=30)
        self._max_model_bytes = health.max_model_bytes or None
        return health

    def max_model_bytes(self) -> int | None:
        """The largest model the agent accepts (asked once)."""
        if self._max_model_bytes is None:
            self.health()
        return self._max_model_bytes

    def result(self, request_id: str) -> pb.MeasureResult:
        return self._call(self.stub.GetResult, pb.GetResultRequest(request_id=request_id), timeout=30)

    def measure(self, model: bytes, target: str = "", *, board_id: str = "", runtime_variant: str = "",
                float_abi: str = "", opt_level: str = "", repetitions: int = 0, inputs: list[pb.Tensor] = (),
                input_seed: int = 0, placement: str = "", request_id: str | None = None, clock_hz: int = 0,
                ops: str = "", timeout: float | None = None,
                on_event: Callable[[pb.MeasureEvent], None] | None = None) -> pb.MeasureResult:
        """Measure a model. Once the agent has answered, retries with the same request id while it is
        unreachable (an agent restart), for up to ``retry_for_s``; an agent never reached fails at once."""
        request = pb.MeasureRequest(
            request_id=request_id or uuid.uuid4().hex, model=model, target=target, board_id=board_id,
            runtime_variant=runtime_variant, float_abi=float_abi, opt_level=opt_level,
            repetitions=repetitions, inputs=list(inputs), input_seed=input_seed, placement=placement,
            clock_hz=clock_hz, ops=ops)
        if not self.reached:
            self.health()  # fail fast on a wrong address, and learn the agent's model size limit
        if self._max_model_bytes and len(model) > self._max_model_bytes:
            raise AgentError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                             f"model is {len(model)} bytes; the agent at {self.address} accepts at most "
                             f"{self._max_model_bytes} bytes (its max_model_bytes)", "too_large")
        give_up = time.monotonic() + self.retry_for_s
        delay, attempt = 0.2, 0
        while True:
            try:
                if on_event is None:
                    return self._call(self.stub.Measure, request, timeout=timeout)
                return self._stream(request, timeout, on_event)
            except AgentError as exc:
                if exc.kind or exc.code not in RETRYABLE or not self.reached or time.monotonic() > give_up:
                    raise
                attempt += 1
                if self.on_retry is not None:
                    self.on_retry(f"agent at {self.address} unreachable ({exc.message.splitlines()[0][:120]}); "
                                  f"retrying request {request.request_id} (attempt {attempt}, for up to "
                                  f"{max(0.0, give_up - time.monotonic()):.0f} s more)")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _stream(self, request, timeout, on_event) -> pb.MeasureResult:
        try:
            for event in self.stub.MeasureStream(request, metadata=self.metadata, timeout=timeout):
                self.reached = True
                on_event(event)
                if event.stage == pb.MeasureEvent.DONE:
                    return event.result
        except grpc.RpcError as exc:
            raise self._error(exc) from None
        raise AgentError(grpc.StatusCode.UNAVAILABLE, "stream ended without a result")
