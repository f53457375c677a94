"""Client of a measurement agent: what searches and the ``measure-agent measure`` command use.

Requests are idempotent by request id, so the client retries a dropped connection (or an agent
restart) with the same id, and falls back to GetResult: a result is never lost nor measured twice.
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


class AgentError(RuntimeError):
    """The agent answered with an error status."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message


class AgentClient:
    def __init__(self, address: str, token: str, root_certificate: str | Path | None = None,
                 retry_for_s: float = 60.0):
        if root_certificate:
            creds = grpc.ssl_channel_credentials(Path(root_certificate).read_bytes())
            self.channel = grpc.secure_channel(address, creds)
        else:
            self.channel = grpc.insecure_channel(address)
        self.stub = pb_grpc.MeasureAgentStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self.retry_for_s = retry_for_s

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method, request, timeout: float | None = None):
        try:
            return method(request, metadata=self.metadata, timeout=timeout)
        except grpc.RpcError as exc:
            raise AgentError(exc.code(), exc.details() or "") from None

    def boards(self) -> list[pb.BoardInfo]:
        return list(self._call(self.stub.ListBoards, pb.ListBoardsRequest(), timeout=30).boards)

    def health(self) -> pb.HealthResponse:
        return self._call(self.stub.Health, pb.HealthRequest(), timeout=30)

    def result(self, request_id: str) -> pb.MeasureResult:
        return self._call(self.stub.GetResult, pb.GetResultRequest(request_id=request_id), timeout=30)

    def measure(self, model: bytes, target: str = "", *, board_id: str = "", runtime_variant: str = "",
                float_abi: str = "", opt_level: str = "", repetitions: int = 0, inputs: list[pb.Tensor] = (),
                request_id: str | None = None, timeout: float | None = None,
                on_event: Callable[[pb.MeasureEvent], None] | None = None) -> pb.MeasureResult:
        """Measure a model; retries with the same request id while the agent is unreachable."""
        request = pb.MeasureRequest(
            request_id=request_id or uuid.uuid4().hex, model=model, target=target, board_id=board_id,
            runtime_variant=runtime_variant, float_abi=float_abi, opt_level=opt_level,
            repetitions=repetitions, inputs=list(inputs))
        give_up = time.monotonic() + self.retry_for_s
        delay = 0.2
        while True:
            try:
                if on_event is None:
                    return self._call(self.stub.Measure, request, timeout=timeout)
                return self._stream(request, timeout, on_event)
            except AgentError as exc:
                if exc.code not in RETRYABLE or time.monotonic() > give_up:
                    raise
                if exc.code == grpc.StatusCode.UNAVAILABLE and "no board" in exc.message:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _stream(self, request, timeout, on_event) -> pb.MeasureResult:
        try:
            for event in self.stub.MeasureStream(request, metadata=self.metadata, timeout=timeout):
                on_event(event)
                if event.stage == pb.MeasureEvent.DONE:
                    return event.result
        except grpc.RpcError as exc:
            raise AgentError(exc.code(), exc.details() or "") from None
        raise AgentError(grpc.StatusCode.UNAVAILABLE, "stream ended without a result")
