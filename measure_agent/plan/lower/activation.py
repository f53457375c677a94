"""Elementwise activations: LOGISTIC, TANH (int8: the reference's lookup table) and the RELU family (int8
requantize-and-clamp, float32 clamp)."""

from __future__ import annotations

import math

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.lower.registry import Unsupported, dtypes, io, lowering, quant



@lowering("LOGISTIC")
def lower_logistic(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        if zp_out != -128 or abs(s_out - 1.0 / 256) > 1e-9:
            raise Unsupported("int8 logistic output must have scale 1/256 and zero point -128")
        m, sh, radius = Q.logistic_params(s_in)
        b.emit(op, "LOGISTIC_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("logistic_s8_ref"), input_zp=zp_in, input_range_radius=radius,
               input_mult=m, input_left_shift=sh)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "LOGISTIC_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("logistic_f32_ref"))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")


@lowering("RELU", "RELU6", "RELU_N1_TO_1")
def lower_relu(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        lo, hi = Q.activation_range_int8(op.type, s_out, zp_out)
        m, s = Q.quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        b.emit(op, "REQUANT_S8", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("requantize_s8_ref"), input_zp=zp_in, output_zp=zp_out, mult=m,
               shift=s, act_min=lo, act_max=hi)
        return
    if x.dtype == "float32" and out.dtype == "float32":
        lo, hi = Q.activation_range_float(op.type)
        b.emit(op, "CLAMP_F32", [b.tensor(x.index)], b.tensor(out.index),
               kernel=K.reference_only("clamp_f32_ref"), lo=Q.float_bits(lo), hi=Q.float_bits(hi))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")


@lowering("TANH")
def lower_tanh(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    if x.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        table = Q.int8_function_table(math.tanh, s_in, zp_in, s_out, zp_out)
        b.emit(op, "LUT_S8", [b.tensor(x.index), b.add_const(table, "int8")], b.tensor(out.index),
               kernel=K.reference_only("lut_s8_ref"))
        return
    if x.dtype == "float32" and out.dtype == "float32":
        b.emit(op, "TANH_F32", [b.tensor(x.index)], b.tensor(out.index), kernel=K.reference_only("tanh_f32_ref"))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)}")
