"""On-target validation (the paper's stage F): a labelled dataset through the board and through the host
interpreter, with both accuracies and their agreement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from costmodel.graph import NUMPY_TYPES
from measure_agent.backends import Backend
from measure_agent.errors import InvalidModel
from measure_agent.measurement import compile_model
from measure_agent.plan.reference import Reference
from measure_agent.settings import FirmwareSettings


@dataclass
class ValidationReport:
    samples: int
    board_accuracy: float
    host_accuracy: float
    agreement: float            # share of samples where board and host predict the same class
    identical_outputs: float    # share of samples whose raw outputs are bit-identical
    max_abs_difference: float   # largest difference of dequantized outputs


def load_dataset(path) -> tuple[np.ndarray, np.ndarray]:
    """An .npz with arrays ``x`` (samples first) and ``y`` (integer labels)."""
    try:
        with np.load(path) as data:
            if "x" not in data or "y" not in data:
                raise InvalidModel(f"{path}: the dataset needs arrays 'x' and 'y', it has {sorted(data.files)}")
            x, y = data["x"], data["y"]
    except (OSError, ValueError) as exc:
        raise InvalidModel(f"{path}: not a readable .npz file ({exc})") from None
    if len(x) != len(y) or len(x) == 0:
        raise InvalidModel(f"{path}: x has {len(x)} samples and y {len(y)}")
    return x, np.asarray(y).astype(np.int64).reshape(len(y), -1)[:, 0]


def _quantize(sample: np.ndarray, spec) -> np.ndarray:
    dtype = np.dtype(NUMPY_TYPES[spec.dtype])
    sample = np.asarray(sample).reshape(spec.shape)
    if dtype.kind == "f" or sample.dtype == dtype:
        return sample.astype(dtype)
    scale, zero_point = spec.scale, spec.zero_point
    info = np.iinfo(dtype)
    return np.clip(np.round(sample / scale) + zero_point, info.min, info.max).astype(dtype)


def _dequantize(raw: np.ndarray, spec) -> np.ndarray:
    if np.dtype(NUMPY_TYPES[spec.dtype]).kind == "f":
        return raw.astype(np.float64)
    return (raw.astype(np.float64) - spec.zero_point) * spec.scale


def validate(backend: Backend, model: bytes, x: np.ndarray, y: np.ndarray, settings: FirmwareSettings,
             progress: Callable[[int, int], None] = lambda done, total: None) -> ValidationReport:
    """Run every sample on the board (model uploaded once) and on the host interpreter."""
    plan = compile_model(model).plan
    if len(plan.inputs) != 1 or len(plan.outputs) != 1:
        raise InvalidModel("validation needs a model with one input and one output")
    in_spec, out_spec = plan.inputs[0], plan.outputs[0]
    host = Reference(model)
    out_dtype = np.dtype(NUMPY_TYPES[out_spec.dtype])

    image = backend.firmware(settings)
    board_hits = host_hits = agree = identical = 0
    max_diff = 0.0
    for i, (sample, label) in enumerate(zip(x, y)):
        q = _quantize(sample, in_spec)
        run = backend.run_plan(image, plan.blob, [q.tobytes()], 1, measure_energy=False)
        board_raw = np.frombuffer(run.outputs[0], dtype=out_dtype).reshape(out_spec.shape)
        (host_raw,) = host.run([q])
        board_class, host_class = int(np.argmax(board_raw)), int(np.argmax(host_raw))
        board_hits += board_class == label
        host_hits += host_class == label
        agree += board_class == host_class
        identical += bool(np.array_equal(board_raw, host_raw))
        diff = np.abs(_dequantize(board_raw, out_spec) - _dequantize(host_raw, out_spec)).max()
        max_diff = max(max_diff, float(diff))
        progress(i + 1, len(x))
    n = len(x)
    return ValidationReport(n, board_hits / n, host_hits / n, agree / n, identical / n, max_diff)
