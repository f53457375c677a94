"""SOFTMAX over the last axis: int8 (gemmlowp fixed point, output scale 1/256), 16x8 (the reference's
interpolation tables, output scale 1/32768) and float32."""

from __future__ import annotations

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
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
        m, sh, diff_min = Q.softmax_params(s_in, beta)
        b.emit(op, "SOFTMAX_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("softmax_s8_ref"), input_mult=m, input_left_shift=sh,
               diff_min=diff_min)
        return
    if x.dtype == "int16" and out.dtype == "int16":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        if zp_in or zp_out or abs(s_out - 1.0 / 32768) > 1e-12:
            raise Unsupported("16x8 softmax needs zero points 0 and output scale 1/32768")
        exp_lut, one_over = Q.softmax_int16_tables()
        m, sh = Q.softmax_int16_params(s_in, beta)
        ins = [b.tensor(x.index), b.add_const(exp_lut, "int16"), b.add_const(one_over, "int16")]
        b.emit(op, "SOFTMAX_S16", ins, b.tensor(out.index), kernel=K.reference_only("softmax_s16_ref"),
               input_mult=m, input_left_shift=sh)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "SOFTMAX_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("softmax_f32_ref"), beta=Q.float_bits(beta))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
