"""Host accuracy of a ``.tflite`` classifier with the TFLite interpreter (the paper's stage B), and the
sizes and accuracies of one Keras model converted three ways (float32, dynamic-range, full int8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """Class indices of ``x`` (samples first) by the interpreter's reference kernels (what the firmware matches)."""
    from measure_agent.plan.reference import Reference

    return Reference(model).classify(x)


def accuracy(model: bytes, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(model, x) == y))


@dataclass(frozen=True)
class Converted:
    quantization: str
    tflite: bytes
    accuracy: float | None = None

    @property
    def bytes(self) -> int:
        return len(self.tflite)


def convert_three_ways(keras_model, x_calibration: np.ndarray | None = None) -> list[Converted]:
    """The model as float32, dynamic-range and full int8 (calibrated on ``x_calibration``, else random)."""
    from nas.convert import data_representative, to_tflite

    rep = data_representative(x_calibration) if x_calibration is not None else None
    return [Converted(q, to_tflite(keras_model, q, rep if q == "int8" else None))
            for q in ("float32", "dynamic", "int8")]
