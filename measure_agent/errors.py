"""Errors of a measurement: plain exceptions, shared by the board layer, the measurement and the agent.

Only the service knows how they travel (``measure_agent.service.STATUS_CODES`` maps each kind to a
gRPC status code); the journal stores the ``kind`` of a failed request so that GetResult can raise
the same error again.
"""

from __future__ import annotations


class MeasureError(Exception):
    """A measurement failed. ``kind`` names the failure; ``transient``: retrying the request may succeed."""

    kind = "internal"
    transient = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidModel(MeasureError):
    """The model or a request field is malformed."""

    kind = "invalid"


class UnsupportedModel(MeasureError):
    """An op (or op/dtype combination) the runtime has no kernel for."""

    kind = "unsupported"


class DoesNotFit(MeasureError):
    """The model does not fit the board's memory."""

    kind = "does_not_fit"


class NoBoard(MeasureError):
    """No board of the requested target or id on this agent."""

    kind = "no_board"
    transient = True


class BoardNotAnswering(MeasureError):
    """The board stopped answering (it has been reset; the request may be retried)."""

    kind = "board_not_answering"
    transient = True


class BoardOffline(MeasureError):
    """Every board that could take the request is offline (e.g. its serial port cannot be opened); the agent
    retries them with backoff, so a later request may succeed."""

    kind = "board_offline"
    transient = True


class RequestConflict(MeasureError):
    """A request id the client used before, now with a different request (model or settings)."""

    kind = "conflict"


class ModelTooLarge(MeasureError):
    """The model is larger than the agent accepts."""

    kind = "too_large"


class UnknownRequest(MeasureError):
    """GetResult for a request id the agent never saw."""

    kind = "unknown_request"


class StillRunning(MeasureError):
    """GetResult for a request that is queued or running."""

    kind = "still_running"


BY_KIND = {cls.kind: cls for cls in (MeasureError, InvalidModel, UnsupportedModel, DoesNotFit, NoBoard,
                                      BoardNotAnswering, BoardOffline, RequestConflict, ModelTooLarge,
                                      UnknownRequest, StillRunning)}


def from_kind(kind: str, message: str) -> MeasureError:
    """The error a journal entry recorded (an unknown kind becomes a plain MeasureError)."""
    return BY_KIND.get(kind, MeasureError)(message)


def as_measure_error(exc: BaseException) -> MeasureError:
    """Any exception of a measurement as a MeasureError: a bug fails its request with a one-line message
    (``internal error: TypeError: ...``), it never leaves the request unanswered."""
    if isinstance(exc, MeasureError):
        return exc
    text = " ".join(str(exc).split())[:300]
    return MeasureError(f"internal error: {type(exc).__name__}: {text}" if text else
                        f"internal error: {type(exc).__name__}")
