"""FULLY_CONNECTED: int8 (FC_S8), 16x8 (FC_S16), float32 (FC_F32) and dynamic-range hybrid (FC_HYBRID)."""

from __future__ import annotations

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.format import MAX_TAPS
from measure_agent.plan.lower.registry import (Unsupported, check_symmetric_weights, dtypes,
                                               fused_activation, io, lowering, quant, requant_arrays)



@lowering("FULLY_CONNECTED")
def lower_fully_connected(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    w = g.tensors[op.inputs[1]]
    bias_i = op.input(2)
    act = fused_activation(op)
    if not w.is_constant or len(w.shape) != 2:
        raise Unsupported("weights must be a constant 2-D tensor")
    in_len, units = w.shape[1], w.shape[0]
    if in_len > MAX_TAPS:
        raise Unsupported(f"input length {in_len} (the runtime's limit is {MAX_TAPS})")
    if x.size % in_len != 0 or (x.size // in_len) * units != out.size:
        raise Unsupported("input size does not match weights")

    if x.dtype == "int8" and w.dtype == "int8" and out.dtype == "int8":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        check_symmetric_weights(w)
        if bias_i >= 0 and g.tensors[bias_i].dtype != "int32":
            raise Unsupported(f"bias dtype {g.tensors[bias_i].dtype}")
        mults, shifts = Q.conv_multipliers(s_in, w.quant.scale, s_out, units)
        lo, hi = Q.activation_range_int8(act, s_out, zp_out)
        mi, si = requant_arrays(b, mults, shifts)
        ins = [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), mi, si]
        b.emit(op, "FC_S8", ins, b.tensor(out.index),
               kernel=K.fully_connected_s8(in_len), input_offset=-zp_in, output_zp=zp_out, act_min=lo,
               act_max=hi)
        return
    if x.dtype == "int16" and w.dtype == "int8" and out.dtype == "int16":
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        check_symmetric_weights(w)
        if zp_in or zp_out:
            raise Unsupported("16x8 activations must have zero point 0")
        if bias_i >= 0 and g.tensors[bias_i].dtype != "int64":
            raise Unsupported(f"bias dtype {g.tensors[bias_i].dtype}")
        mults, shifts = Q.conv_multipliers(s_in, w.quant.scale, s_out, units)
        lo, hi = Q.activation_range_int16(act, s_out)
        mi, si = requant_arrays(b, mults, shifts)
        ins = [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), mi, si]
        b.emit(op, "FC_S16", ins, b.tensor(out.index), kernel=K.reference_only("fully_connected_s16_ref"),
               input_offset=0, output_zp=0, act_min=lo, act_max=hi)
        return
    if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "float32":
        lo, hi = Q.activation_range_float(act)
        ins = [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i)]
        b.emit(op, "FC_F32", ins, b.tensor(out.index),
               kernel=K.reference_only("fully_connected_f32_ref"), act_min=Q.float_bits(lo),
               act_max=Q.float_bits(hi))
        return
    if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "int8":
        check_symmetric_weights(w)
        lo, hi = Q.activation_range_float(act)
        scales = b.add_const(np.asarray(w.quant.scale, dtype=np.float32).reshape(-1), "float32")
        ins = [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), scales]
        b.emit(op, "FC_HYBRID", ins, b.tensor(out.index),
               kernel=K.reference_only("fully_connected_hybrid_ref", scratch=in_len),  # quantized input row
               per_channel=int(w.quant.scale.size > 1),
               asymmetric_inputs=int(bool(op.options.get("asymmetric_quantize_inputs", False))),
               act_min=Q.float_bits(lo), act_max=Q.float_bits(hi))
        return
    raise Unsupported(f"dtypes {dtypes(x, out)} with {w.dtype} weights")
