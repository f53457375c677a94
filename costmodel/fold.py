"""Fold ops whose results are known when the model is read.

- Static shape arithmetic: TF 2.x converts ``Flatten`` on an input with a dynamic batch dimension into
  SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE. On an MCU the batch is 1 and every shape is static, so these
  ops compute constants: evaluate them and drop them, leaving a plain RESHAPE.
- Constant DEQUANTIZE: float models with float16 (or int8) weights dequantize them with a DEQUANTIZE op on
  the constant; the result is a float32 constant, computed here once, so the graph that is analysed is the
  graph the runtime runs (no DEQUANTIZE layers for weights).
"""

from __future__ import annotations

import numpy as np

from costmodel.graph import NUMPY_TYPES, Graph, Op, Tensor

FOLDABLE = ("SHAPE", "STRIDED_SLICE", "PACK", "CONCATENATION", "CAST", "EXPAND_DIMS", "SQUEEZE")


def _strided_slice(op: Op, x: np.ndarray, begin, end, strides) -> np.ndarray | None:
    o = op.options
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or o.get("offset"):
        return None
    slices = []
    for axis in range(len(begin)):
        b = None if o.get("begin_mask", 0) >> axis & 1 else int(begin[axis])
        e = None if o.get("end_mask", 0) >> axis & 1 else int(end[axis])
        s = int(strides[axis])
        if o.get("shrink_axis_mask", 0) >> axis & 1:
            slices.append(int(begin[axis]))
        else:
            slices.append(slice(b, e, s))
    return np.asarray(x[tuple(slices)])


def _evaluate(graph: Graph, op: Op) -> np.ndarray | None:
    """The constant value of ``op``'s single output, or None when it cannot be folded."""
    tensors = graph.tensors
    if op.type == "SHAPE":
        return np.array(tensors[op.inputs[0]].shape, dtype=np.int32)
    values = [tensors[i].data for i in op.inputs if i >= 0]
    if any(v is None for v in values):
        return None
    if op.type == "STRIDED_SLICE" and len(values) == 4:
        return _strided_slice(op, *values)
    if op.type == "PACK":
        return np.stack(values, axis=op.options.get("axis", 0))
    if op.type == "CONCATENATION" and op.options.get("fused_activation_function", "NONE") == "NONE":
        return np.concatenate(values, axis=op.options.get("axis", 0))
    if op.type in ("CAST", "EXPAND_DIMS", "SQUEEZE"):
        return np.asarray(values[0]).reshape(tensors[op.outputs[0]].shape)
    return None


def fold_static_shapes(graph: Graph) -> Graph:
    """Evaluate ops whose results are static and remove them; returns the same graph object."""
    kept = []
    for op in graph.ops:
        if op.type in FOLDABLE and len(op.outputs) == 1:
            out = graph.tensors[op.outputs[0]]
            reads_values = op.type != "SHAPE"  # SHAPE reads only the static shape of its input
            if op.outputs[0] not in graph.outputs and not (reads_values and any(
                    graph.tensors[i].quant is not None for i in op.inputs if i >= 0)):
                value = _evaluate(graph, op)
                if value is not None:
                    dtype = NUMPY_TYPES.get(out.dtype, value.dtype)
                    out.data = np.asarray(value).astype(dtype).reshape(out.shape or value.shape)
                    continue
        kept.append(op)
    for i, op in enumerate(kept):
        op.index = i
    graph.ops = kept
    return graph


def fold_constant_dequantize(graph: Graph) -> Graph:
    """Evaluate DEQUANTIZE ops of constant tensors (float16, or int8/uint8/int16 with quantization) and remove
    them; their outputs become float32 constants. A source constant that nothing reads any more loses its
    data (it is no longer part of the model). Returns the same graph object, ops renumbered."""
    kept = []
    folded_sources = set()
    for op in graph.ops:
        src = graph.tensors[op.inputs[0]] if op.inputs else None
        if op.type == "DEQUANTIZE" and src is not None and src.is_constant and len(op.outputs) == 1:
            value = _dequantize(src)
            out = graph.tensors[op.outputs[0]]
            if value is not None and op.outputs[0] not in graph.outputs:
                out.data = value.reshape(out.shape)
                out.quant = None
                folded_sources.add(src.index)
                continue
        kept.append(op)
    still_read = {t for op in kept for t in op.inputs} | set(graph.outputs)
    for t in folded_sources - still_read:
        graph.tensors[t].data = None
    for i, op in enumerate(kept):
        op.index = i
    graph.ops = kept
    return graph


def _dequantize(src: Tensor) -> np.ndarray | None:
    """The float32 value of constant ``src``, or None when it cannot be dequantized."""
    data = np.asarray(src.data)
    if src.dtype == "float16":
        return data.astype(np.float32)
    if src.dtype in ("int8", "uint8", "int16") and src.quant is not None:
        q = src.quant
        shape = [1] * data.ndim
        if q.scale.size > 1:
            shape[q.axis] = -1
        scale = np.asarray(q.scale, np.float64).reshape(shape)
        zp = np.asarray(q.zero_point, np.float64).reshape(shape)
        return (scale * (data.astype(np.float64) - zp)).astype(np.float32)
    return None
