"""QUANTIZE (float32 -> int8, or int8 -> int8 requantization) and DEQUANTIZE (int8 -> float32).

Constant DEQUANTIZE ops (float16 / int8 weights of float models) never get here:
``costmodel.tflite.read_model`` folds them (:func:`costmodel.fold.fold_constant_dequantize`).
"""

from __future__ import annotations

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import Unsupported, dtypes, io, lowering, quant



@lowering("QUANTIZE", constant_first_input=True)
def lower_quantize(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    if x.dtype == "float32" and out.dtype == "int8":
        s_out, zp_out = quant(out)
        b.emit(op, "QUANTIZE_F32_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("quantize_f32_s8_ref"), scale=Q.float_bits(s_out), zero_point=zp_out)
        return
    if x.dtype == "float32" and out.dtype == "int16":
        s_out, zp_out = quant(out)
        b.emit(op, "QUANTIZE_F32_S16", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("quantize_f32_s16_ref"), scale=Q.float_bits(s_out), zero_point=zp_out)
        return
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        m, s = Q.quantize_multiplier(float(s_in) / float(s_out))
        b.emit(op, "REQUANT_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("requantize_s8_ref"), input_zp=zp_in, output_zp=zp_out, mult=m,
               shift=s, act_min=-128, act_max=127)
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")


@lowering("DEQUANTIZE", constant_first_input=True)
def lower_dequantize(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    if x.dtype == "int8" and out.dtype == "float32":
        s_in, zp_in = quant(x)
        table = b.add_const(Q.dequantize_table(s_in, zp_in), "float32")
        b.emit(op, "DEQUANTIZE_S8_F32", [b.tensor(x.index), table], b.tensor(out.index),
               kernel=K.reference_only("dequantize_s8_f32_ref"), scale=Q.float_bits(s_in), zero_point=zp_in)
        return
    if x.dtype == "int16" and out.dtype == "float32":
        s_in, zp_in = quant(x)
        if abs(zp_in) > 1 << 23:  # the kernel's single-precision product is exact only below this
            raise Unsupported(f"int16 zero point {zp_in}")
        b.emit(op, "DEQUANTIZE_S16_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("dequantize_s16_f32_ref"), scale=Q.float_bits(s_in), zero_point=zp_in)
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
