"""SOFTMAX over the last axis: int8 (gemmlowp fixed point, output scale 1/256) and float32."""

from __future__ import annotations

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.format import SOFTMAX_S8_MAX_DEPTH
from measure_agent.plan.lower.registry import Unsupported, dtypes, io, lowering, quant



@lowering("SOFTMAX")
def lower_softmax(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    beta = float(op.options.get("beta", 1.0))
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, _ = quant(x)
        s_out, zp_out = quant(out)
        if zp_out != -128 or abs(s_out - 1.0 / 256) > 1e-9:
            raise Unsupported("int8 softmax output must have scale 1/256 and zero point -128")
        if x.shape[-1] > SOFTMAX_S8_MAX_DEPTH:
            raise Unsupported(f"int8 softmax depth > {SOFTMAX_S8_MAX_DEPTH}")
        m, sh, diff_min = Q.softmax_params(s_in, beta)
        b.emit(op, "SOFTMAX_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("softmax_s8_ref"), input_mult=m, input_left_shift=sh,
               diff_min=diff_min)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "SOFTMAX_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("softmax_f32_ref"), beta=Q.float_bits(beta))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
