"""MEAN over any axes of a tensor of rank <= 4 (global average pooling and the like), int8 and float32."""

from __future__ import annotations

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import Unsupported, dtypes, io, lowering, quant


@lowering("MEAN")
def lower_mean(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    axes_t = g.tensors[op.inputs[1]]
    if not axes_t.is_constant:
        raise Unsupported("non-constant axes")
    rank = len(x.shape)
    if rank > 4 or rank == 0:
        raise Unsupported(f"rank {rank}")
    axes = sorted({int(a) % rank for a in np.asarray(axes_t.data).reshape(-1)})
    mask = 0
    for a in axes:
        mask |= 1 << (a + 4 - rank)  # the executor right-aligns shapes into 4-D
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    if int(np.prod(out.shape)) * count != int(np.prod(x.shape)):
        raise Unsupported("output size does not match the reduced axes")
    if x.dtype == out.dtype and x.dtype in ("int8", "int16"):
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        if x.dtype == "int16" and (zp_in or zp_out):
            raise Unsupported("16x8 activations must have zero point 0")
        m, s = Q.mean_params(s_in, s_out, count)
        suffix = "s16" if x.dtype == "int16" else "s8"
        b.emit(op, f"MEAN_{suffix.upper()}", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only(f"mean_{suffix}_ref"), input_zp=zp_in, output_zp=zp_out, mult=m, shift=s,
               axes=mask)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "MEAN_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("mean_f32_ref"), axes=mask)
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
