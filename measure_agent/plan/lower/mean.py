"""MEAN over height and width of a 4-D tensor (global average pooling), int8 and float32."""

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
    axes = sorted(int(a) % len(x.shape) for a in np.asarray(axes_t.data).reshape(-1))
    if len(x.shape) != 4 or axes != [1, 2]:
        raise Unsupported(f"only the mean over height and width of a 4-D tensor is supported (axes {axes})")
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        m, s = Q.mean_params(s_in, s_out, x.shape[1] * x.shape[2])
        b.emit(op, "MEAN_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("mean_hw_s8_ref"), input_zp=zp_in, output_zp=zp_out, mult=m, shift=s)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "MEAN_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("mean_hw_f32_ref"))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
