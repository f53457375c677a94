"""Errors of a measurement, each tied to the gRPC status code the agent answers with."""

from __future__ import annotations

import grpc


class MeasureError(Exception):
    """A measurement failed; ``code`` is the gRPC status the client receives."""

    code = grpc.StatusCode.INTERNAL
    #: Whether retrying the same request could succeed (a board that hung, no board free).
    transient = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidModel(MeasureError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class UnsupportedModel(MeasureError):
    code = grpc.StatusCode.UNIMPLEMENTED


class DoesNotFit(MeasureError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class NoBoard(MeasureError):
    code = grpc.StatusCode.UNAVAILABLE
    transient = True


class BoardNotAnswering(MeasureError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    transient = True


class ModelTooLarge(MeasureError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class UnknownRequest(MeasureError):
    code = grpc.StatusCode.NOT_FOUND


class StillRunning(MeasureError):
    """GetResult for a request that is queued or running."""

    code = grpc.StatusCode.UNAVAILABLE


BY_CODE_NAME = {cls.code.name: cls for cls in
                (MeasureError, InvalidModel, UnsupportedModel, DoesNotFit, NoBoard, BoardNotAnswering, ModelTooLarge)}


def from_code_name(name: str, message: str) -> MeasureError:
    return BY_CODE_NAME.get(name, MeasureError)(message)
