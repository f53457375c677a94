"""Bearer-token authentication of the agent's clients, as a gRPC server interceptor.

Every call carries ``authorization: Bearer <token>``; the interceptor answers UNAUTHENTICATED for a
missing or unknown token before any handler runs, and makes the caller's client name available to
the handler through :func:`current_client`.
"""

from __future__ import annotations

import contextvars
from typing import Callable

import grpc

_client: contextvars.ContextVar[str | None] = contextvars.ContextVar("measure_agent_client", default=None)


def current_client() -> str:
    """The authenticated client of the call being handled."""
    name = _client.get()
    if name is None:
        raise RuntimeError("current_client() outside an authenticated call")
    return name


def bearer_token(metadata) -> str:
    """The bearer token of gRPC invocation metadata, or ''."""
    header = dict(metadata or ()).get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else ""


class TokenAuth(grpc.ServerInterceptor):
    """Admit calls whose bearer token belongs to one of ``clients`` (client name -> token)."""

    def __init__(self, clients: dict[str, str]):
        self._names = {token: name for name, token in clients.items()}
        self._denial = "missing or unknown bearer token" if clients else "this agent has no clients configured"

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        name = self._names.get(bearer_token(handler_call_details.invocation_metadata))
        if name is None:
            def deny(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, self._denial)
            return _rebuild(handler, lambda _behaviour: deny)
        return _rebuild(handler, lambda behaviour: _as_client(name, behaviour, handler.response_streaming))


def _as_client(name: str, behaviour: Callable, streaming: bool) -> Callable:
    if streaming:
        def stream(request, context):
            token = _client.set(name)
            try:
                yield from behaviour(request, context)
            finally:
                _client.reset(token)
        return stream

    def unary(request, context):
        token = _client.set(name)
        try:
            return behaviour(request, context)
        finally:
            _client.reset(token)
    return unary


def _rebuild(handler, wrap: Callable[[Callable], Callable]):
    """The same method handler with its behaviour wrapped (the agent has unary requests only)."""
    if handler.request_streaming:
        raise NotImplementedError("client-streaming methods are not part of the agent's contract")
    make = grpc.unary_stream_rpc_method_handler if handler.response_streaming else grpc.unary_unary_rpc_method_handler
    behaviour = handler.unary_stream if handler.response_streaming else handler.unary_unary
    return make(wrap(behaviour), request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
