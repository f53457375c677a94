"""Layout-only ops: RESHAPE / SQUEEZE / EXPAND_DIMS (COPY), PAD, CONCATENATION."""

from __future__ import annotations

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import Malformed, Unsupported, dtypes, fused_activation, io, lowering, quant



@lowering("RESHAPE", "SQUEEZE", "EXPAND_DIMS", constant_first_input=True)
def lower_reshape(b: Builder, g: Graph, op: Op) -> None:
    """A byte copy, or nothing when the arena planner aliased output and input."""
    x, out = io(g, op)
    if x.dtype != out.dtype or x.nbytes != out.nbytes:
        raise Malformed(f"a reshape keeps type and size: {x.dtype} {list(x.shape)} -> {out.dtype} {list(out.shape)}")
    b.emit(op, "COPY", [b.tensor(x.index)], b.tensor(out.index), kernel=K.reference_only("copy_any_ref"))


@lowering("PAD", "PADV2")
def lower_pad(b: Builder, g: Graph, op: Op) -> None:
    """PAD pads with zero (the zero point of int8); PADV2 with its constant third input."""
    x, out = io(g, op)
    pads_t = g.tensors[op.inputs[1]]
    value_t = g.tensors[op.inputs[2]] if op.type == "PADV2" and op.input(2) >= 0 else None
    if value_t is not None and (not value_t.is_constant or np.asarray(value_t.data).size != 1):
        raise Unsupported("the pad value must be a constant scalar")
    if not pads_t.is_constant:
        raise Unsupported("non-constant paddings")
    pads = np.asarray(pads_t.data).reshape(-1, 2)
    if len(x.shape) > 4 or pads.shape[0] != len(x.shape) or np.any(pads < 0):
        raise Unsupported("paddings do not match the input rank")
    before = [0] * (4 - len(x.shape)) + [int(v) for v in pads[:, 0]]
    if x.dtype == out.dtype and x.dtype in ("int8", "int16"):
        if quant(x) != quant(out):
            raise Unsupported(f"{x.dtype} pad needs equal input and output quantization")
        if value_t is not None:
            if value_t.dtype != x.dtype:
                raise Unsupported(f"pad value of type {value_t.dtype}")
            value = int(np.asarray(value_t.data).reshape(-1)[0])  # quantized like the output (the reference's rule)
        else:
            value = quant(out)[1]
        value &= 0xFF if x.dtype == "int8" else 0xFFFF
    elif x.dtype == "float32" and out.dtype == "float32":
        v = 0.0 if value_t is None else float(np.asarray(value_t.data, np.float32).reshape(-1)[0])
        value = Q.float_bits(v)
    else:
        raise Unsupported(f"dtypes {dtypes(x, out)}")
    b.emit(op, "PAD", [b.tensor(x.index)], b.tensor(out.index), kernel=K.reference_only("pad_any_ref"),
           before_n=before[0], before_h=before[1], before_w=before[2], before_c=before[3], value=value)


@lowering("CONCATENATION")
def lower_concatenation(b: Builder, g: Graph, op: Op) -> None:
    out = g.tensors[op.outputs[0]]
    act = fused_activation(op)
    if act != "NONE":
        raise Unsupported(f"fused activation {act}")
    rank = len(out.shape)
    if rank > 4:
        raise Unsupported("rank > 4")
    axis = int(op.options.get("axis", 0)) % rank
    ins = [g.tensors[i] for i in op.inputs]
    for t in ins:
        if t.dtype != out.dtype or len(t.shape) != rank:
            raise Unsupported("inputs differ in dtype or rank from the output")
        if out.dtype in ("int8", "int16") and quant(t) != quant(out):
            raise Unsupported(f"{out.dtype} inputs must share the output quantization")
        if out.dtype not in ("int8", "int16", "float32"):
            raise Unsupported(f"dtype {out.dtype}")
    b.emit(op, "CONCAT", [b.tensor(t.index) for t in ins], b.tensor(out.index),
           kernel=K.reference_only("concatenation_any_ref"), axis=axis + 4 - rank)
