"""CONV_2D and DEPTHWISE_CONV_2D: int8 (CONV_S8, DWCONV_S8), 16x8 (CONV_S16, DWCONV_S16), float32 (CONV_F32,
DWCONV_F32) and dynamic-range hybrid (CONV_HYBRID, DWCONV_HYBRID)."""

from __future__ import annotations

import numpy as np

from costmodel.graph import Graph, Op
from measure_agent.plan.builder import Builder
from measure_agent.plan import kernels as K
from measure_agent.plan import quantize as Q
from measure_agent.plan.format import FILTER_LAYOUTS, MAX_TAPS
from measure_agent.plan.lower.registry import (Unsupported, check_symmetric_weights, dtypes, fused_activation, io,
                                               lowering, pad_before, quant, requant_arrays)


def pair_filter(w: np.ndarray) -> np.ndarray:
    """An OHWI int8 filter (OC, KH, KW, IC), IC a multiple of 4, in the int16 pair layout conv2d_s8_simd's dot
    products read with plain word loads: per pair of output channels (a zero channel pads an odd count), per
    group of 4 taps t0..t3 of the KH x KW x IC row, the words (t0, t2) of the even channel, (t0, t2) of the odd
    one, (t1, t3) of the even, (t1, t3) of the odd (each word low half first, as SXTB16 of the input gives):
    shape (ceil(OC / 2), KH, KW, 2 x IC)."""
    oc, kh, kw, ic = w.shape
    assert ic % 4 == 0
    rows = w.reshape(oc, -1).astype(np.int16)
    if oc % 2:
        rows = np.vstack([rows, np.zeros((1, rows.shape[1]), np.int16)])
    pairs = rows.shape[0] // 2
    g = rows.reshape(pairs, 2, -1, 4)[..., [0, 2, 1, 3]]   # pair, channel, group, (t0, t2, t1, t3)
    g = g.reshape(pairs, 2, -1, 2, 2).transpose(0, 2, 3, 1, 4)  # pair, group, word (A, B), channel, half
    return np.ascontiguousarray(g).reshape(pairs, kh, kw, 2 * ic)


@lowering("CONV_2D", "DEPTHWISE_CONV_2D")
def lower_conv(b: Builder, g: Graph, op: Op) -> None:
    x, out = io(g, op)
    w = g.tensors[op.inputs[1]]
    bias_i = op.input(2)
    opts = op.options
    act = fused_activation(op)
    if not w.is_constant:
        raise Unsupported("non-constant filter")
    if len(x.shape) != 4 or len(out.shape) != 4 or len(w.shape) != 4:
        raise Unsupported("conv tensors must be 4-D")
    dw = op.type == "DEPTHWISE_CONV_2D"
    sw, sh = int(opts.get("stride_w", 1)), int(opts.get("stride_h", 1))
    dlw, dlh = int(opts.get("dilation_w_factor", 1)), int(opts.get("dilation_h_factor", 1))
    kh, kw, ic = w.shape[1], w.shape[2], x.shape[3]
    if not dw and w.shape[3] != ic:
        raise Unsupported(f"grouped convolution ({ic} input channels, filter depth {w.shape[3]})")
    padding = opts.get("padding", "SAME")
    geometry = dict(stride_w=sw, stride_h=sh,
                    pad_w=pad_before(x.shape[2], kw, sw, dlw, padding, out.shape[2]),
                    pad_h=pad_before(x.shape[1], kh, sh, dlh, padding, out.shape[1]), dil_w=dlw, dil_h=dlh)
    dm = out.shape[3] // ic if dw else 1
    if dw and ic * dm != out.shape[3]:
        raise Unsupported("output channels are not a multiple of input channels")
    depthwise = dict(depth_multiplier=dm) if dw else {}
    taps = kh * kw * (1 if dw else ic)
    if taps > MAX_TAPS:
        raise Unsupported(f"{taps} taps per output (the runtime's limit is {MAX_TAPS})")
    bias_t = g.tensors[bias_i] if bias_i >= 0 else None

    if x.dtype == out.dtype and x.dtype in ("int8", "int16") and w.dtype == "int8":
        int16 = x.dtype == "int16"
        s_in, zp_in = quant(x)
        s_out, zp_out = quant(out)
        check_symmetric_weights(w)
        mults, shifts = Q.conv_multipliers(s_in, w.quant.scale, s_out, out.shape[3])
        if int16:
            if zp_in or zp_out:
                raise Unsupported("16x8 activations must have zero point 0")
            lo, hi = Q.activation_range_int16(act, s_out)
        else:
            lo, hi = Q.activation_range_int8(act, s_out, zp_out)
        if bias_t is not None and bias_t.dtype != ("int64" if int16 else "int32"):
            raise Unsupported(f"bias dtype {bias_t.dtype}")
        bias = b.tensor(bias_i)
        mi, si = requant_arrays(b, mults, shifts)
        filt, layout = None, {}
        if int16:
            kind = "DWCONV_S16" if dw else "CONV_S16"
            kernel = K.reference_only("depthwise_conv2d_s16_ref" if dw else "conv2d_s16_ref")
        else:
            kind = "DWCONV_S8" if dw else "CONV_S8"
            kernel = (K.depthwise_conv2d_s8(kh, kw, sw, dlw, out.shape[2], out.shape[3]) if dw
                      else K.conv2d_s8(kh, kw, ic, out.shape[3], dlw, sw, out.shape[2], dlh,
                                      padded=geometry["pad_w"] > 0 or geometry["pad_h"] > 0))
            if not dw:
                layout = dict(filter_layout=FILTER_LAYOUTS["ohwi"])
                if b.pair_filters and ic % 4 == 0:
                    filt = b.add_const(pair_filter(np.asarray(w.data).reshape(w.shape)), "int16")
                    layout = dict(filter_layout=FILTER_LAYOUTS["s16_pairs"])
                    b.paired_filters += 1
        b.emit(op, kind, [b.tensor(x.index), b.tensor(w.index) if filt is None else filt, bias, mi, si],
               b.tensor(out.index), kernel=kernel, **geometry, input_offset=-zp_in, output_zp=zp_out,
               act_min=lo, act_max=hi, **depthwise, **layout)
        return
    if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "float32":
        lo, hi = Q.activation_range_float(act)
        kernel = K.reference_only("depthwise_conv2d_f32_ref" if dw else "conv2d_f32_ref")
        ins = [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i)]
        b.emit(op, "DWCONV_F32" if dw else "CONV_F32", ins, b.tensor(out.index), kernel=kernel, **geometry,
               act_min=Q.float_bits(lo), act_max=Q.float_bits(hi), **depthwise)
        return
    if x.dtype == "float32" and out.dtype == "float32" and w.dtype == "int8":
        check_symmetric_weights(w)
        lo, hi = Q.activation_range_float(act)
        scales = b.add_const(np.asarray(w.quant.scale, dtype=np.float32).reshape(-1), "float32")
        name = "depthwise_conv2d_hybrid_ref" if dw else "conv2d_hybrid_ref"
        kernel = K.reference_only(name, scratch=int(np.prod(x.shape)))  # the quantized input
        b.emit(op, "DWCONV_HYBRID" if dw else "CONV_HYBRID",
               [b.tensor(x.index), b.tensor(w.index), b.tensor(bias_i), scales], b.tensor(out.index),
               kernel=kernel, **geometry, act_min=Q.float_bits(lo), act_max=Q.float_bits(hi),
               per_channel=int(w.quant.scale.size > 1), **depthwise)
        return
    raise Unsupported(f"dtypes {dtypes(x, out)} with {w.dtype} weights")
