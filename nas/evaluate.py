"""Host accuracy of a ``.tflite`` classifier with the TFLite interpreter (the paper's stage B), and the
sizes and accuracies of one Keras model converted three ways (float32, dynamic-range, full int8)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    dtype = detail["dtype"]
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / (scale or 1.0)) + zero_point, info.min, info.max).astype(dtype)


def predict(model: bytes, x: np.ndarray) -> np.ndarray:
    """Class indices of ``x`` (samples first) by the interpreter's reference kernels (what the firmware matches)."""
    from measure_agent.plan.reference import Reference

    ref = Reference(model)
    if len(ref.inputs) != 1 or len(ref.outputs) != 1:
        raise ValueError(f"a classifier has one input and one output; this model has {len(ref.inputs)} and "
                         f"{len(ref.outputs)}")
    detail = ref.inputs[0]
    shape = tuple(int(d) for d in detail["shape"])
    if int(np.prod(shape[1:])) != int(np.prod(x.shape[1:])):
        raise ValueError(f"the model takes inputs of shape {list(shape[1:])}, the dataset has {list(x.shape[1:])}")
    out = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        (y,) = ref.run([_quantize(x[i].reshape(shape), detail)])
        out[i] = int(np.argmax(y))
    return out


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
