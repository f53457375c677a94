"""FULLY_CONNECTED: int8 (FC_S8), 16x8 (FC_S16), float32 (FC_F32) and dynamic-range hybrid (FC_HYBRID)."""

from __future__ import annotations

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.format import FC_WEIGHTS_LAYOUTS, MAX_TAPS
from measure_agent.plan.lower.registry import (Unsupported, check_symmetric_weights, dtypes,
                                               fused_activation, io, lowering, quant, requant_arrays)


def quads_requant_ok(shifts: np.ndarray, zp_out: int) -> bool:
    """fully_connected_s8_simd's requantization (nn_quant.h nn_requantize_single_hi) is exact for every shift in
    [-31, -2] whose constant (2 zp + 1) 2^(-shift - 2) stays within +-2^30 (nn_requantize_single_hi_ok)."""
    s = np.asarray(shifts, dtype=np.int64).reshape(-1)
    if s.size == 0 or s.min() < -31 or s.max() > -2:
        return False
    c = (2 * int(zp_out) + 1) * (np.int64(1) << (-s - 2))
    return bool(np.all(np.abs(c) < (1 << 30)))


def quad_weights(w: np.ndarray) -> np.ndarray | None:
    """TFLite's (O, I) int8 weights in the stream fully_connected_s8_simd reads ("quads", FORMAT.md), the same
    number of bytes: per quad of rows (r0..r3) int16 lanes v = 256 q + p, p a weight of row r0 (r2) and q of row
    r1 (r3) for the same input: first one word per input of the I % 4 tail (lanes (r0, r1), (r2, r3)), then per
    group of 4 inputs k..k+3 four words, lanes (k, k+2) then (k+1, k+3), for (r0, r1) then (r2, r3); then the
    O % 4 rows left as they are. None when a lane does not fit int16 (q = -128 with p < 0)."""
    w = np.asarray(w, dtype=np.int8)
    o, k = w.shape
    quads, k4 = o // 4, k // 4 * 4
    wq = w[:4 * quads].astype(np.int32).reshape(quads, 2, 2, k)   # quad, pair, (p, q), input
    v = 256 * wq[:, :, 1] + wq[:, :, 0]                           # quad, pair, input
    if v.size and v.min() < -32768:
        return None
    tail = v[:, :, k4:].transpose(0, 2, 1).reshape(quads, -1)      # quad, input, pair
    groups = v[:, :, :k4].reshape(quads, 2, k4 // 4, 4)[..., [0, 2, 1, 3]]
    # quad, group, pair, word, lane
    groups = groups.reshape(quads, 2, k4 // 4, 2, 2).transpose(0, 2, 1, 3, 4).reshape(quads, -1)
    head = np.ascontiguousarray(np.concatenate([tail, groups], axis=1).astype("<i2")).view(np.int8).reshape(-1)
    return np.concatenate([head, w[4 * quads:].reshape(-1)]).reshape(o, k)



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
        xi, quads = b.tensor(x.index), None
        if b.variant == "simd" and units >= 4 and -127 <= -zp_in <= 128 and \
                quads_requant_ok(shifts, zp_out):
            quads = quad_weights(np.asarray(w.data).reshape(units, in_len))
        if quads is not None:
            zp, scale = 0, 0.0
            if w.quant is not None and w.quant.scale.size >= 1 and not w.quant.per_channel:
                zp, scale = int(w.quant.zero_point.reshape(-1)[0]), float(w.quant.scale.reshape(-1)[0])
            wi, layout = b.add_const(quads, "int8", (units, in_len), zp, scale), FC_WEIGHTS_LAYOUTS["quads"]
        else:
            wi, layout = b.tensor(w.index), FC_WEIGHTS_LAYOUTS["oi"]
        ins = [xi, wi, b.tensor(bias_i), mi, si]
        b.emit(op, "FC_S8", ins, b.tensor(out.index),
               kernel=K.fully_connected_s8(in_len), input_offset=-zp_in, output_zp=zp_out, act_min=lo,
               act_max=hi, weights_layout=layout)
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
