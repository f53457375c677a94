"""On-target validation (the paper's stage F): a labelled dataset through the board and through the host
interpreter, with both accuracies and their agreement."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
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
    """An .npz with arrays ``x`` (numbers, samples first) and ``y`` (integer class labels, one per sample, or
    one-hot rows); InvalidModel naming the problem for anything else. Returns x and integer labels."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = "the file is empty" if isinstance(exc, EOFError) else str(exc) or type(exc).__name__
        raise InvalidModel(f"{path}: not a readable .npz file ({reason})") from None
    if isinstance(loaded, np.ndarray):
        raise InvalidModel(f"{path}: a single .npy array; the dataset is an .npz with arrays 'x' and 'y' "
                           "(numpy.savez(path, x=samples, y=labels))")
    try:
        with loaded as data:
            if "x" not in data.files or "y" not in data.files:
                raise InvalidModel(f"{path}: the dataset needs arrays 'x' and 'y', it has {sorted(data.files)}")
            x, y = data["x"], data["y"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InvalidModel(f"{path}: not a readable .npz file ({exc})") from None
    if x.dtype.kind not in "biuf":
        raise InvalidModel(f"{path}: x holds {x.dtype} values; samples must be numbers")
    if x.ndim == 0:
        raise InvalidModel(f"{path}: x is a single number; it must hold the samples along its first axis")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise InvalidModel(f"{path}: x has NaN or infinite values")
    labels = _labels(path, y)
    if len(x) != len(labels) or len(x) == 0:
        raise InvalidModel(f"{path}: x has {len(x)} samples and y {len(labels)}")
    return x, labels


def _labels(path: Path, y: np.ndarray) -> np.ndarray:
    if y.dtype.kind in "USO":
        raise InvalidModel(f"{path}: y holds {'strings' if y.dtype.kind in 'US' else y.dtype}; labels must be "
                           "integer class indices (or one-hot rows)")
    if y.dtype.kind not in "biuf" or y.dtype.kind == "b" and y.ndim == 1:
        raise InvalidModel(f"{path}: y holds {y.dtype} values; labels must be integer class indices")
    if y.ndim == 0:
        raise InvalidModel(f"{path}: y is a single number; it must hold one label per sample")
    if y.ndim == 2 and y.shape[1] == 1 and y.dtype.kind in "iu":
        y = y[:, 0]
    if y.ndim == 2:  # one-hot rows: exactly one 1 per row, the rest 0
        if not (np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1)):
            raise InvalidModel(f"{path}: y has shape {list(y.shape)} but its rows are not one-hot (one 1 per row, "
                               "zeros elsewhere); give integer class indices or one-hot rows")
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim != 1:
        raise InvalidModel(f"{path}: y has shape {list(y.shape)}; labels are one integer per sample or one-hot rows")
    if y.dtype.kind == "f":
        raise InvalidModel(f"{path}: y holds float values; labels must be integer class indices")
    return y.astype(np.int64)


def check_dataset(model: bytes, x: np.ndarray, y: np.ndarray, path="dataset") -> None:
    """InvalidModel unless every sample has the size of the model's one input (the batch dimension may be
    left out), integer samples fit the input type, and every label is a class of the model's output."""
    from costmodel.errors import ModelError
    from costmodel.tflite import read_model

    try:
        graph = read_model(model)
    except ModelError as exc:
        raise InvalidModel(f"malformed model: {exc}") from None
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise InvalidModel("validation needs a model with one input and one output")
    inp, out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    need = int(np.prod(inp.shape)) if inp.shape else 1
    sample = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if sample != need:
        raise InvalidModel(f"{path}: x has samples of shape {list(x.shape[1:])} ({sample} values); the model's "
                           f"input {inp.name!r} is {inp.dtype} {list(inp.shape)} ({need} values)")
    dtype = np.dtype(NUMPY_TYPES.get(inp.dtype, np.float32))
    if x.dtype.kind in "iu" and dtype.kind in "iu" and x.size:
        info = np.iinfo(dtype)
        if x.min() < info.min or x.max() > info.max:
            raise InvalidModel(f"{path}: x has values from {x.min()} to {x.max()}, outside the model's {inp.dtype} input")
    classes = int(out.shape[-1]) if out.shape else 1
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise InvalidModel(f"{path}: y has labels from {y.min()} to {y.max()}; the model has {classes} classes "
                           f"(labels 0 to {classes - 1})")


def _quantize(sample: np.ndarray, spec) -> np.ndarray:
    dtype = np.dtype(NUMPY_TYPES[spec.dtype])
    sample = np.asarray(sample).reshape(spec.shape)
    if dtype.kind == "f" or sample.dtype == dtype or sample.dtype.kind in "biu":  # integer samples are raw values
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
